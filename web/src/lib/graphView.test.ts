import { describe, expect, it } from "vitest";
import { buildView, checkable, indexGraph, rowOf, type GraphNode, type GraphResponse } from "./graphView";

const node = (id: string, type: GraphNode["type"], layer: number | null, pos: number, influence = 0.1): GraphNode => ({
  id, number: 0, type, layer, pos, index: null, kind: null, activation: null, influence, label: id, probability: null,
});

const g = {
  prompt_tokens: ["a", "b"], tokens: [1, 2], n_layers: 2,
  nodes: [
    node("0_5_1", "latent", 0, 1), node("1_7_1", "latent", 1, 1), node("1_8_0", "latent", 1, 0),
    node("err_1_0", "error", 1, 0), node("err_5_1", "error", 5, 1),
    node("E_1_0", "token", null, 0), node("E_2_1", "token", null, 1), node("3_9_1", "logit", null, 1),
  ],
  links: [
    { source: "E_1_0", target: "1_8_0", weight: 1 },
    { source: "1_8_0", target: "0_5_1", weight: -2 },
    { source: "1_8_0", target: "1_7_1", weight: 3 },
    { source: "0_5_1", target: "1_7_1", weight: 0.5 },
    { source: "1_7_1", target: "3_9_1", weight: 4 },
    { source: "err_1_0", target: "3_9_1", weight: -1 },
  ],
} as unknown as GraphResponse;

describe("graph view", () => {
  it("indexes nodes by id and links strongest first", () => {
    const idx = indexGraph(g);
    expect(idx.byId.get("0_5_1")!.type).toBe("latent");
    expect(idx.byId.get("err_5_1")!.type).toBe("error");
    expect(idx.nodes).toHaveLength(8);
    expect(idx.inputs.get("1_7_1")!.map((l) => l.weight)).toEqual([3, 0.5]);
    expect(idx.outputs.get("1_8_0")!.map((l) => l.weight)).toEqual([3, -2]);
    expect(checkable(idx, ["E_1_0", "err_1_0", "1_7_1", "3_9_1", "9_9_9"])).toEqual(["err_1_0", "1_7_1"]);
  });

  it("rows: embeddings 0, layer L at 1 + L, logits on top", () => {
    expect(rowOf({ type: "token", layer: null }, 2)).toBe(0);
    expect(rowOf({ type: "latent", layer: 1 }, 2)).toBe(2);
    expect(rowOf({ type: "logit", layer: null }, 2)).toBe(3);
  });

  it("draws a supernode as one node with summed edges, and the pinned-only subgraph", () => {
    const idx = indexGraph(g);
    const v = buildView(g, idx, { pinned: ["0_5_1", "1_7_1", "err_1_0"], supernodes: [{ label: "s", ids: ["0_5_1", "1_7_1", "gone_1_1"] }], pinnedOnly: false });
    const sn = v.byKey.get("sn:s")!;
    expect(sn.type).toBe("supernode");
    expect(sn.members.map((m) => m.id)).toEqual(["0_5_1", "1_7_1"]);
    expect(sn.row).toBe(2); // mean of rows 1 and 2, rounded
    expect(v.byKey.has("0_5_1")).toBe(false);
    expect(v.memberOf.get("1_7_1")).toBe("sn:s");
    const e = (s: string, t: string) => v.edges.find((x) => x.source === s && x.target === t);
    expect(e("1_8_0", "sn:s")).toMatchObject({ weight: 1, count: 2 }); // -2 + 3; the internal 0.5 is dropped
    expect(e("sn:s", "3_9_1")).toMatchObject({ weight: 4, count: 1 });
    expect(v.maxWeight).toBe(4);
    expect(v.edges.at(-1)!.weight).toBe(4); // strongest last: drawn on top

    const only = buildView(g, idx, { pinned: ["err_1_0"], supernodes: [{ label: "s", ids: ["1_7_1"] }], pinnedOnly: true });
    expect(only.nodes.map((n) => n.key).sort()).toEqual(["3_9_1", "E_1_0", "E_2_1", "err_1_0", "sn:s"]);
    expect(only.edges.map((x) => x.key).sort()).toEqual(["err_1_0>3_9_1", "sn:s>3_9_1"]);
  });
});
