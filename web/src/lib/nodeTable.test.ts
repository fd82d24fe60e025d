import { describe, expect, it } from "vitest";
import type { KindInfo, NodeRow } from "../client/api";
import kindsFixture from "../test/fixtures/kinds.json";
import { pairedRows, queryRows as query, singleRows, type RowQuery, type TableRow } from "./nodeTable";
import { parseNode } from "./nodes";

const kinds = kindsFixture as KindInfo[];
const queryRows = (r: TableRow[], q: RowQuery) => query(r, q, kinds);

const row = (label: string, total: number, token = " to", activation: number | null = null, key_token: string | null = null): NodeRow => ({
  node: parseNode(label)!,
  label,
  token,
  key_token,
  activation,
  write_norm: Math.abs(total) * 10,
  direct_effect: total / 2,
  total_effect: total,
});

const rows = singleRows([
  row("L0.attn_out@1", 3.6, " Mary"),
  row("embedding@1", -3.7, " Mary"),
  row("L23.attn_head.3@13<-9", 2.98, " to", 0.74, " John"),
  row("L23.attn_head.3@13", 2.99, " to", 12.7),
  row("L9.mlp_neuron.200@0", -1.2, "When", -0.1),
]);
const all = { groups: null, filter: "" };
const labels = (r: { label: string }[]) => r.map((x) => x.label);

describe("node table", () => {
  it("sorts by |total effect| descending by default", () => {
    expect(labels(queryRows(rows, { ...all, sort: "total_effect", desc: true }))).toEqual([
      "embedding@1", "L0.attn_out@1", "L23.attn_head.3@13", "L23.attn_head.3@13<-9", "L9.mlp_neuron.200@0",
    ]);
    expect(labels(queryRows(rows, { ...all, sort: "total_effect", desc: false }))[0]).toBe("L9.mlp_neuron.200@0");
  });

  it("sorts activation by value with nulls last, labels in residual-stream order", () => {
    expect(labels(queryRows(rows, { ...all, sort: "activation", desc: true }))).toEqual([
      "L23.attn_head.3@13", "L23.attn_head.3@13<-9", "L9.mlp_neuron.200@0", "L0.attn_out@1", "embedding@1",
    ]);
    expect(labels(queryRows(rows, { ...all, sort: "label", desc: false }))).toEqual([
      "embedding@1", "L0.attn_out@1", "L9.mlp_neuron.200@0", "L23.attn_head.3@13", "L23.attn_head.3@13<-9",
    ]);
  });

  it("filters by kind group and text (label, token or key token)", () => {
    const q = { sort: "total_effect" as const, desc: true };
    expect(labels(queryRows(rows, { ...q, groups: ["pairs"], filter: "" }))).toEqual(["L23.attn_head.3@13<-9"]);
    expect(labels(queryRows(rows, { ...q, groups: ["heads", "neurons"], filter: "" }))).toEqual([
      "L23.attn_head.3@13", "L9.mlp_neuron.200@0",
    ]);
    expect(labels(queryRows(rows, { ...q, groups: null, filter: "mary" }))).toEqual(["embedding@1", "L0.attn_out@1"]);
    expect(labels(queryRows(rows, { ...q, groups: null, filter: "john" }))).toEqual(["L23.attn_head.3@13<-9"]);
    expect(queryRows(rows, { ...q, groups: [], filter: "" })).toEqual([]);
  });

  it("pairs rows and sorts them by |diff|", () => {
    const a = row("L1.attn_out@2", 1);
    const b = row("L2.attn_out@2", -2);
    const paired = pairedRows([
      { left: a, right: { ...a, total_effect: 1.5 }, total_effect_diff: 0.5 },
      { left: b, right: null, total_effect_diff: null },
      { left: null, right: row("L3.mlp_out@2", 4), total_effect_diff: -3 },
    ]);
    expect(labels(queryRows(paired, { ...all, sort: "diff", desc: true }))).toEqual(["L3.mlp_out@2", "L1.attn_out@2", "L2.attn_out@2"]);
    expect(paired[0]).toMatchObject({ left: 1, right: 1.5, diff: 0.5 });
  });
});
