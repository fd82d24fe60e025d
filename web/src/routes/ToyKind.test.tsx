/** A kind the web app has never heard of (the server's registry gained it) needs no web edit: its
 * nodes get the kind's filter group, its trace choices, the generic ablation and node strings. */
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import type { KindInfo } from "../client/api";
import { formatNode, parseNode } from "../lib/nodes";
import single from "../test/fixtures/debug-single.json";
import kinds from "../test/fixtures/kinds.json";
import { MODEL, mockServer } from "../test/mockServer";

const TOY: KindInfo = {
  name: "toy_dir", label: "toy direction", value_label: "projection", group: "toys", group_label: "toy directions",
  pair_group: null, pair_group_label: null, layered: true, unit: null, size: null, pairs: false,
  through: [{ through: null, label: "trace" }], pair_through: [], weight_tokens: false, prompt_tokens: false,
  collated: false, dataset_mean: false, pattern: false, default: true,
};
const TOY_ROW = {
  node: { kind: "toy_dir", layer: 4, index: null, token: 7, key: null }, label: "L4.toy_dir@7", token: " store",
  key_token: null, activation: 0.5, write_norm: 1.0, direct_effect: 0.2, total_effect: 9.5,
};
const DEMO = "/?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John";

beforeEach(() => window.history.replaceState(null, "", DEMO));
afterEach(() => vi.unstubAllGlobals());

describe("a new node kind", () => {
  it("shows in the node table with its group, can be ablated and traced, with no web edit", async () => {
    const withToy = { ...single, left: { ...single.left, nodes: [TOY_ROW, ...single.left.nodes] } };
    const calls = mockServer((path) => {
      if (path === "/api/model") return { status: 200, body: { ...MODEL, kinds: [...kinds, TOY] } };
      if (path === "/api/debug") return { status: 200, body: withToy };
      return undefined;
    });
    render(<App />);
    await waitFor(() => screen.getByTestId("node-table"));
    await waitFor(() => expect(screen.getByLabelText(/^toy directions/)).toBeInTheDocument());
    const table = screen.getByTestId("node-table");
    const row = within(table).getAllByTestId("node-row").find((r) => r.dataset.kind === "toy_dir")!;
    expect(row).toHaveAttribute("data-label", "L4.toy_dir@7");
    expect(within(row).getByTestId("trace-trace")).toBeInTheDocument();
    expect(parseNode("L4.toy_dir@7", [...(kinds as KindInfo[]), TOY])).toEqual(TOY_ROW.node);
    expect(formatNode(TOY_ROW.node)).toBe("L4.toy_dir@7");

    await userEvent.click(within(row).getByTestId("ablate"));
    await waitFor(() => expect(calls.filter((c) => c.path === "/api/debug")).toHaveLength(2));
    const sent = calls.filter((c) => c.path === "/api/debug")[1]!.body as { interventions: unknown[] };
    expect(sent.interventions).toEqual([{ target: { kind: "toy_dir", layer: 4, positions: [7] }, op: { kind: "zero" } }]);
    expect(new URLSearchParams(window.location.search).getAll("ablate")).toEqual(["L4.toy_dir@7"]);

    // Its filter hides it like any built-in group.
    await userEvent.click(screen.getByLabelText(/^toy directions/));
    const kindsShown = within(screen.getByTestId("node-table")).getAllByTestId("node-row").map((r) => r.dataset.kind);
    expect(kindsShown).not.toContain("toy_dir");
    expect(new URLSearchParams(window.location.search).get("show")).not.toContain("toys");
  });
});
