import { describe, expect, it } from "vitest";
import {
  DEFAULT_GRAPH_STATE, decodeGraphState, encodeGraphState, freeLabel, graphHref, group, togglePin, toGraphRequest, ungroup,
  type GraphState,
} from "./graphState";

describe("graph URL state", () => {
  it("decodes a prompt-only link with the defaults and asks for the default pruning", () => {
    const s = decodeGraphState("?prompt=The+capital+of+France+is");
    expect(s).toEqual({ ...DEFAULT_GRAPH_STATE, prompt: "The capital of France is" });
    expect(toGraphRequest(s)).toEqual({ prompt: "The capital of France is", node_threshold: 0.8, edge_threshold: 0.98 });
    expect(encodeGraphState(s)).toBe("prompt=The+capital+of+France+is");
    expect(graphHref(s)).toBe("/graph?prompt=The+capital+of+France+is");
  });

  it("round-trips every field", () => {
    const s: GraphState = {
      prompt: "a & b = c?\nnext",
      target: " Paris",
      targetId: null,
      nodeThreshold: 0.6,
      edgeThreshold: 0.9,
      maxFeatures: 512,
      pinned: ["3_1234_5", "0_7_2", "E_651_1", "31_7042_4"],
      supernodes: [{ label: "capital, France", ids: ["3_1234_5", "0_7_2"] }],
      clicked: "sn:capital, France",
      edge: { source: "E_651_1", sink: "3_1234_5" },
      pinnedOnly: true,
      check: ["3_1234_5", "0_7_2"],
      factor: 0.5,
    };
    const q = encodeGraphState(s);
    expect(decodeGraphState("?" + q)).toEqual(s);
    // Neuronpedia's forms: comma-separated pinned ids, supernodes as [label, ...ids]
    const p = new URLSearchParams(q);
    expect(p.get("pinned")).toBe("3_1234_5,0_7_2,E_651_1,31_7042_4");
    expect(JSON.parse(p.get("supernodes")!)).toEqual([["capital, France", "3_1234_5", "0_7_2"]]);
    expect(toGraphRequest(s)).toEqual({ prompt: s.prompt, target: " Paris", node_threshold: 0.6, edge_threshold: 0.9, max_features: 512 });
  });

  it("a target id wins over a target text; the default check is 'top'", () => {
    const s = decodeGraphState("?prompt=x&target=+Paris&target_id=7042&check=top");
    expect(s.targetId).toBe(7042);
    expect(s.target).toBeNull();
    expect(s.check).toEqual([]);
    expect(toGraphRequest(s)?.target).toBe(7042);
    expect(encodeGraphState(s)).toBe("prompt=x&target_id=7042&check=top");
  });

  it("drops what a hand edit broke instead of failing", () => {
    const s = decodeGraphState(
      "?prompt=x&node_threshold=2&edge_threshold=abc&max_features=-3&pinned=3_1_2,nonsense,,3_1_2&supernodes=[[&clicked=<b>&edge=3_1_2&factor=-1&only=yes",
    );
    expect(s.nodeThreshold).toBe(0.8);
    expect(s.edgeThreshold).toBe(0.98);
    expect(s.maxFeatures).toBeNull();
    expect(s.pinned).toEqual(["3_1_2"]);
    expect(s.supernodes).toEqual([]);
    expect(s.clicked).toBeNull();
    expect(s.edge).toBeNull();
    expect(s.factor).toBe(0);
    expect(s.pinnedOnly).toBe(false);
    // a node is in one supernode at most; labels are unique; empty groups go
    const sn = JSON.stringify([["a", "1_2_3", "x"], ["a", "4_5_6"], ["b", "1_2_3", "4_5_6"], ["c"], [7, "7_7_7"]]);
    expect(decodeGraphState("?supernodes=" + encodeURIComponent(sn)).supernodes).toEqual([
      { label: "a", ids: ["1_2_3"] },
      { label: "b", ids: ["4_5_6"] },
    ]);
  });

  it("no prompt, no request", () => {
    expect(toGraphRequest(DEFAULT_GRAPH_STATE)).toBeNull();
    expect(graphHref(DEFAULT_GRAPH_STATE)).toBe("/graph");
  });
});

describe("pins and supernodes", () => {
  const base: GraphState = { ...DEFAULT_GRAPH_STATE, prompt: "x", pinned: ["1_1_1", "2_2_2", "3_3_3"] };

  it("groups, names uniquely, ungroups", () => {
    const a = { ...base, ...group(base, "  ", ["1_1_1", "2_2_2"]) };
    expect(a.supernodes).toEqual([{ label: "group", ids: ["1_1_1", "2_2_2"] }]);
    expect(a.clicked).toBe("sn:group");
    const b = { ...a, ...group(a, "group", ["2_2_2", "3_3_3"]) };
    // 2_2_2 moved to the new group
    expect(b.supernodes).toEqual([{ label: "group", ids: ["1_1_1"] }, { label: "group (2)", ids: ["2_2_2", "3_3_3"] }]);
    const c = { ...b, ...ungroup(b, "group (2)") };
    expect(c.supernodes).toEqual([{ label: "group", ids: ["1_1_1"] }]);
    expect(c.clicked).toBeNull();
    expect(freeLabel([{ label: "x", ids: [] }, { label: "x (2)", ids: [] }], "x")).toBe("x (3)");
  });

  it("unpinning a node takes it out of its supernode", () => {
    const s = { ...base, supernodes: [{ label: "g", ids: ["1_1_1"] }, { label: "h", ids: ["2_2_2", "3_3_3"] }] };
    expect(togglePin(s, "1_1_1")).toEqual({ pinned: ["2_2_2", "3_3_3"], supernodes: [{ label: "h", ids: ["2_2_2", "3_3_3"] }] });
    expect(togglePin(s, "9_9_9").pinned).toEqual(["1_1_1", "2_2_2", "3_3_3", "9_9_9"]);
  });
});
