import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { mockServer } from "../test/mockServer";

const DEMO = "/?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John";

beforeEach(() => window.history.replaceState(null, "", DEMO));
afterEach(() => vi.unstubAllGlobals());

describe("Debugger page", () => {
  it("sends the URL's request on load and shows value, pinned candidates and the node table", async () => {
    const calls = mockServer();
    render(<App />);
    await waitFor(() => expect(screen.getByTestId("value-left")).toHaveTextContent("+6.120"));
    const debug = calls.find((c) => c.path === "/api/debug");
    expect(debug?.body).toEqual({
      prompt: "When Mary and John went to the store, John gave a drink to", k: 10, targets: [" Mary"], distractors: [" John"],
    });
    const first = screen.getByTestId("candidates-left").querySelector("tbody tr")!;
    expect(first).toHaveAttribute("data-token", " Mary");
    const rows = within(screen.getByTestId("node-table")).getAllByTestId("node-row");
    expect(rows[0]).toHaveAttribute("data-label", "embedding@1"); // total -3.688: the largest |total effect|
    // Node pages are linked in the canonical form, which names the served model.
    const head = rows.find((r) => r.dataset.kind === "attn_head")!;
    await waitFor(() => expect(within(head).getByTestId("open-node").getAttribute("href")).toMatch(/^\/node\/TestModel\/attn_head\/\d+\/\d+\?prompt=When\+Mary/));
    // The node's label links to the same page.
    const label = within(head).getByTestId("node-link");
    expect(label).toHaveTextContent(head.dataset.label!);
    expect(label.getAttribute("href")).toBe(within(head).getByTestId("open-node").getAttribute("href"));
  });

  it("ablate pushes the intervention to the URL and asks for two runs", async () => {
    const calls = mockServer();
    render(<App />);
    await waitFor(() => screen.getByTestId("node-table"));
    const head = within(screen.getByTestId("node-table")).getAllByTestId("node-row").find((r) => r.dataset.kind === "attn_head")!;
    const label = head.dataset.label!;
    const before = window.history.length;
    await userEvent.click(within(head).getByTestId("ablate"));
    expect(new URLSearchParams(window.location.search).getAll("ablate")).toEqual([label]);
    expect(window.history.length).toBe(before + 1);
    await waitFor(() => expect(calls.filter((c) => c.path === "/api/debug")).toHaveLength(2));
    const last = calls.filter((c) => c.path === "/api/debug")[1]!.body as { interventions: unknown[] };
    expect(last.interventions).toHaveLength(1);
    expect(screen.getByTestId("interventions")).toHaveTextContent(`zero ${label}`);
  });

  it("sorting and filtering only replace the URL", async () => {
    mockServer();
    render(<App />);
    await waitFor(() => screen.getByTestId("node-table"));
    const before = window.history.length;
    await act(async () => {
      await userEvent.click(within(screen.getByTestId("node-table")).getByText("act"));
    });
    expect(new URLSearchParams(window.location.search).get("sort")).toBe("-activation");
    await userEvent.click(screen.getByLabelText(/^neurons/));
    expect(new URLSearchParams(window.location.search).get("show")).toBe("heads,pairs,embeddings,layers"); // the registry's order
    expect(window.history.length).toBe(before);
    const kinds = within(screen.getByTestId("node-table")).getAllByTestId("node-row").map((r) => r.dataset.kind);
    expect(kinds).not.toContain("mlp_neuron");
  });

  it("shows the server's error and highlights the field's editor", async () => {
    mockServer((path) => (path === "/api/debug" ? { status: 422, body: { error: "targets: ' Mary' is not a token", field: "targets" } } : undefined));
    const { container } = render(<App />);
    await waitFor(() => expect(screen.getByRole("alert")).toHaveTextContent("targets: ' Mary' is not a token"));
    expect(container.querySelector('fieldset[data-field="targets"]')).toHaveClass("invalid");
  });
});
