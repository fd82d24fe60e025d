import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { mockServer } from "../test/mockServer";

const DEMO = "/?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John";
const VERIFICATION = { value: 6.12, pearson: 0.9, spearman: 0.8, nodes: [{ label: "L1.mlp_neuron.2@3", estimated: 1, actual: 0.9 }] };
const generated = (ids: number[]) => ({ text: "", elapsed_ms: 3, tokens: ids.map((id) => ({ id, token: ` t${id}` })) });

function server() {
  return mockServer((path, body) => {
    if (path === "/api/verify") return { status: 200, body: VERIFICATION };
    if (path === "/api/generate") {
      const steered = ((body as { interventions?: unknown[] }).interventions ?? []).length > 0;
      return { status: 200, body: generated(steered ? [1, 2, 9, 9] : [1, 2, 3, 4]) };
    }
    return undefined;
  });
}

afterEach(() => vi.unstubAllGlobals());

describe("Debugger: intervention editor, steered generation, verify in the URL", () => {
  it("edit on a node opens the editor; a scale op joins the URL and the generation compares both runs", async () => {
    window.history.replaceState(null, "", DEMO);
    const calls = server();
    render(<App />);
    await waitFor(() => screen.getByTestId("node-table"));
    const row = within(screen.getByTestId("node-table")).getAllByTestId("node-row").find((r) => r.dataset.kind === "mlp_neuron")!;
    await userEvent.click(within(row).getByTestId("edit-iv"));
    const editor = screen.getByTestId("iv-editor");
    expect(within(editor).getByTestId("iv-op")).toHaveValue("scale");
    const factor = within(editor).getByTestId("iv-factor");
    await userEvent.clear(factor);
    await userEvent.type(factor, "x");
    expect(within(editor).getByTestId("iv-error")).toHaveTextContent("factor: a number");
    expect(within(editor).getByTestId("iv-save")).toBeDisabled();
    await userEvent.clear(factor);
    await userEvent.type(factor, "-2");
    await userEvent.click(within(editor).getByTestId("iv-save"));
    const iv = JSON.parse(new URLSearchParams(window.location.search).get("iv")!);
    expect(iv).toEqual([{ target: { kind: "mlp_neuron", layer: expect.any(Number), index: expect.any(Number), positions: [expect.any(Number)] }, op: { kind: "scale", factor: -2 } }]);
    expect(screen.getByTestId("interventions")).toHaveTextContent("scale×-2");
    await waitFor(() => expect(screen.getByTestId("gen-diff")).toHaveTextContent("They part at new token 3"));
    expect(screen.getByTestId("gen-steered").querySelector(".dbg-gen-first-diff")).toHaveTextContent("t9");
    const gens = calls.filter((c) => c.path === "/api/generate").map((c) => c.body as { interventions?: unknown[]; max_new_tokens: number });
    expect(gens.map((g) => (g.interventions ?? []).length).sort()).toEqual([0, 1]);
    expect(gens[0]!.max_new_tokens).toBe(20);
  });

  it("reopens the verify panel from the URL and keeps its top N there", async () => {
    window.history.replaceState(null, "", DEMO + "&verify=7");
    const calls = server();
    render(<App />);
    await waitFor(() => expect(screen.getByTestId("pearson")).toHaveTextContent("0.900"));
    expect((calls.find((c) => c.path === "/api/verify")!.body as { top_n: number }).top_n).toBe(7);
    const n = screen.getByTestId("verify-top-n");
    await userEvent.clear(n);
    await userEvent.type(n, "12");
    expect(new URLSearchParams(window.location.search).get("verify")).toBe("12");
    await userEvent.click(within(screen.getByTestId("verify")).getByText("close"));
    expect(new URLSearchParams(window.location.search).has("verify")).toBe(false);
  });

  it("explains a probe picked in the direction picker, checking the vector's size inline", async () => {
    window.history.replaceState(null, "", DEMO);
    const calls = server();
    render(<App />);
    await waitFor(() => screen.getByTestId("node-table"));
    await userEvent.click(screen.getByTestId("dir-probe"));
    await userEvent.click(screen.getByTestId("dir-source-vector"));
    await userEvent.type(screen.getByTestId("dir-vector"), "1, 2");
    await userEvent.click(screen.getByTestId("submit"));
    expect(screen.getByRole("alert")).toHaveTextContent("direction.vector: 2 entries; the model's d_model is 576");
    await userEvent.clear(screen.getByTestId("dir-vector"));
    await userEvent.click(screen.getByTestId("dir-source-vector").closest("fieldset")!.querySelector("input[type=radio]:not([name])")!);
    await userEvent.type(screen.getByTestId("dir-node"), "L3.mlp_neuron.5@0");
    await userEvent.click(screen.getByTestId("submit"));
    await waitFor(() => expect(calls.filter((c) => c.path === "/api/debug")).toHaveLength(2));
    const body = calls.filter((c) => c.path === "/api/debug")[1]!.body as Record<string, unknown>;
    expect(body.direction).toEqual({ kind: "probe", layer: 29, point: "resid_post", node: { kind: "mlp_neuron", layer: 3, index: 5, token: 0, key: null } });
    expect(body.targets).toBeUndefined();
    expect(new URLSearchParams(window.location.search).get("probe_node")).toBe("L3.mlp_neuron.5@0");
  });
});
