import { describe, expect, it } from "vitest";
import type { KindInfo, Node } from "../client/api";
import kindsFixture from "../test/fixtures/kinds.json";
import { nodeGroup, traceChoices } from "./kinds";
import { ablatedNode, ablation, formatNode, interventionLabel, parseNode } from "./nodes";

const kinds = kindsFixture as KindInfo[];

const n = (p: Partial<Node> & Pick<Node, "kind" | "token">): Node => ({ layer: null, index: null, key: null, ...p });

describe("node strings", () => {
  it.each([
    ["L5.attn_head.2@10<-3", n({ kind: "attn_head", layer: 5, index: 2, token: 10, key: 3 })],
    ["L5.attn_head.2@10", n({ kind: "attn_head", layer: 5, index: 2, token: 10 })],
    ["L3.mlp_neuron.123@5", n({ kind: "mlp_neuron", layer: 3, index: 123, token: 5 })],
    ["L2.attn_out@4", n({ kind: "attn_out", layer: 2, token: 4 })],
    ["L2.mlp_out@4", n({ kind: "mlp_out", layer: 2, token: 4 })],
    ["embedding@4", n({ kind: "embedding", token: 4 })],
  ])("%s parses and formats back", (text, node) => {
    expect(parseNode(text, kinds)).toEqual(node);
    expect(parseNode(text)).toEqual(node); // before the kinds are known: the grammar alone
    expect(formatNode(node)).toBe(text);
  });

  it.each(["", "L5.attn_head@10", "mlp_neuron.3@5", "L1.embedding@2", "L2.attn_out.1@4", "L5.attn_head.2@3<-4", "L2.mlp_out@4<-1", "L5.attn_head.2@x", "L3.neuron.1@2", "L3.mlp_neuron.1536@2"])(
    "rejects %j against the registry",
    (text) => expect(parseNode(text, kinds)).toBeNull(),
  );

  it("reads any kind of the registry, one it has never heard of included", () => {
    const toy = { ...kinds[0]!, name: "sae_l6_resid", label: "latent", layered: false, unit: "latent", size: 4608, group: "latents" };
    const node = parseNode("sae_l6_resid.4000@7", [...kinds, toy]);
    expect(node).toEqual(n({ kind: "sae_l6_resid", index: 4000, token: 7 }));
    expect(nodeGroup(node!, [...kinds, toy])).toBe("latents");
    expect(parseNode("sae_l6_resid.4000@7", kinds)).toBeNull();
  });

  it("groups nodes for the table filter", () => {
    expect(nodeGroup(parseNode("L5.attn_head.2@10<-3")!, kinds)).toBe("pairs");
    expect(nodeGroup(parseNode("L5.attn_head.2@10")!, kinds)).toBe("heads");
    expect(nodeGroup(parseNode("L2.mlp_out@4")!, kinds)).toBe("layers");
    expect(nodeGroup(parseNode("embedding@1")!, kinds)).toBe("embeddings");
    expect(nodeGroup(parseNode("L3.mlp_neuron.1@5")!, kinds)).toBe("neurons");
  });
});

describe("node -> zero ablation (Intervention.on_node)", () => {
  it("maps every kind like the server", () => {
    expect(ablation(parseNode("L3.mlp_neuron.123@5")!)).toEqual({
      target: { kind: "mlp_neuron", layer: 3, index: 123, positions: [5] },
      op: { kind: "zero" },
    });
    expect(ablation(parseNode("L23.attn_head.3@13")!)).toEqual({
      target: { kind: "attn_head", layer: 23, index: 3, positions: [13] },
      op: { kind: "zero" },
    });
    expect(ablation(parseNode("L23.attn_head.3@13<-9")!)).toEqual({
      target: { kind: "attn_head", layer: 23, index: 3, positions: [13], key: 9 },
      op: { kind: "zero" },
    });
    expect(ablation(parseNode("embedding@4")!)).toEqual({ target: { kind: "embedding", positions: [4] }, op: { kind: "zero" } });
    expect(ablation(parseNode("L2.attn_out@4")!)).toEqual({
      target: { kind: "attn_out", layer: 2, positions: [4] },
      op: { kind: "zero" },
    });
  });

  it("recovers the node of a single-node zero ablation, and only of those", () => {
    for (const s of ["L3.mlp_neuron.123@5", "L23.attn_head.3@13<-9", "L23.attn_head.3@13", "embedding@4", "L2.mlp_out@4"]) {
      expect(formatNode(ablatedNode(ablation(parseNode(s)!))!)).toBe(s);
    }
    expect(ablatedNode({ target: { kind: "attn_head", layer: 1, index: 2, positions: [3] }, op: { kind: "scale", factor: 2 } })).toBeNull();
    expect(ablatedNode({ target: { kind: "residual", layer: 1, positions: [3] }, op: { kind: "zero" } })).toBeNull();
    expect(ablatedNode({ target: { kind: "mlp_neuron", layer: 1, index: [1, 2], positions: [3] }, op: { kind: "zero" } })).toBeNull();
    expect(ablatedNode({ target: { kind: "embedding", positions: null }, op: { kind: "zero" } })).toBeNull();
  });

  it("labels interventions readably", () => {
    expect(interventionLabel(ablation(parseNode("L23.attn_head.3@13")!))).toBe("zero L23.attn_head.3@13");
    expect(interventionLabel({ target: { kind: "mlp_neuron", layer: 3, index: [1, 2], positions: null }, op: { kind: "scale", factor: 0.5 } })).toBe(
      "scale×0.5 L3.mlp_neuron.[1,2]@all",
    );
  });

  it("offers the kind's trace choices: Q/K/Q+K for pairs, V for heads, nothing for embeddings", () => {
    expect(traceChoices(parseNode("L5.attn_head.2@10<-3")!, kinds).map((t) => t.through)).toEqual(["query", "key", "query_key"]);
    expect(traceChoices(parseNode("L5.attn_head.2@10")!, kinds).map((t) => t.through)).toEqual(["value"]);
    expect(traceChoices(parseNode("L3.mlp_neuron.1@5")!, kinds).map((t) => t.label)).toEqual(["trace"]);
    expect(traceChoices(parseNode("embedding@4")!, kinds)).toEqual([]);
  });
});
