import { describe, expect, it } from "vitest";
import type { Intervention } from "../../client/api";
import kinds from "../../test/fixtures/kinds.json";
import { parseNode } from "../../lib/nodes";
import { firstDifference } from "./generationDiff";
import { buildIntervention, draftFromIntervention, draftFromNode, EMPTY_DRAFT, type IvDraft } from "./interventionDraft";

const ctx = { kinds, nLayers: 30, dModel: 4, maxBatch: 2 };
const neuron = draftFromNode(parseNode("L3.mlp_neuron.12@5")!);

function error(d: IvDraft): [string, string] {
  const b = buildIntervention(d, ctx);
  if (b.ok) throw new Error("expected an error, built " + JSON.stringify(b.iv));
  return [b.field, b.message];
}

describe("the intervention editor's checks", () => {
  it("builds each op on a node prefilled from the node table", () => {
    const target = { kind: "mlp_neuron", layer: 3, index: 12, positions: [5] };
    const cases: [Partial<IvDraft>, Intervention["op"]][] = [
      [{ op: "scale", factor: "-0.5" }, { kind: "scale", factor: -0.5 }],
      [{ op: "zero" }, { kind: "zero" }],
      [{ op: "set", value: "1.5" }, { kind: "set", value: 1.5 }],
      [{ op: "add", value: "1, 2" }, { kind: "add", value: [1, 2] }],
      [{ op: "mean", reference: "a cat\n\nthe dog\n" }, { kind: "mean", reference: ["a cat", "the dog"] }],
      [{ op: "dataset_mean" }, { kind: "dataset_mean" }],
      [{ op: "resample", prompt: "other text" }, { kind: "resample", prompt: "other text" }],
    ];
    for (const [patch, op] of cases) {
      expect(buildIntervention({ ...neuron, ...patch }, ctx)).toEqual({ ok: true, iv: { target, op } });
    }
  });

  it("builds steering on the residual stream by a node's write or a vector", () => {
    const d: IvDraft = { ...EMPTY_DRAFT, layer: "4", point: "resid_post", op: "steer", coefficient: "8", node: "L2.mlp_neuron.7@0" };
    const built = buildIntervention(d, ctx);
    expect(built).toEqual({ ok: true, iv: {
      target: { kind: "residual", layer: 4, point: "resid_post" },
      op: { kind: "steer", coefficient: 8, direction: { kind: "node_write", node: parseNode("L2.mlp_neuron.7@0") } },
    } });
    const v = buildIntervention({ ...d, source: "vector", vector: "1 2 3 4", normalize: true, positions: "-1" }, ctx);
    expect(v.ok && v.iv.op).toEqual({ kind: "steer", coefficient: 8, normalize: true, direction: { kind: "vector", vector: [1, 2, 3, 4] } });
    expect(v.ok && v.iv.target.positions).toEqual([-1]);
  });

  it("names the wrong field and what is allowed", () => {
    expect(error({ ...neuron, factor: "half" })).toEqual(["factor", "factor: a number (0.5 halves, -1 flips, 2 doubles)"]);
    expect(error({ ...neuron, layer: "30" })[0]).toBe("layer");
    expect(error({ ...neuron, index: "1536" })).toEqual(["index", "index: neuron indices 0..1535, separated by commas"]);
    expect(error({ ...neuron, positions: "1, x" })[0]).toBe("positions");
    expect(error({ ...neuron, key: "2" })[0]).toBe("key");
    expect(error({ ...neuron, op: "mean", reference: "a\nb\nc" })).toEqual(["reference", "reference: at most 2 prompts (max_batch)"]);
    expect(error({ ...neuron, op: "resample" })[0]).toBe("prompt");
    expect(error({ ...neuron, op: "set", value: "" })[0]).toBe("value");
    const steer: IvDraft = { ...EMPTY_DRAFT, op: "steer", source: "vector", vector: "1, 2" };
    expect(error(steer)).toEqual(["vector", "vector: 2 entries; the model's d_model is 4"]);
    expect(error({ ...steer, coefficient: "" })[0]).toBe("coefficient");
    expect(error({ ...steer, source: "node", node: "L2.nothing@0" })[0]).toBe("node");
    expect(error({ ...EMPTY_DRAFT, op: "dataset_mean" })[0]).toBe("op");
    const pair = draftFromNode(parseNode("L3.attn_head.2@5<-1")!, "mean");
    expect(error({ ...pair, reference: "x" })).toEqual(["op", "op: a (query, key) pair takes zero, set or scale"]);
    expect(buildIntervention({ ...pair, op: "zero" }, ctx)).toEqual({ ok: true, iv: { target: { kind: "attn_head", layer: 3, index: 2, key: 1, positions: [5] }, op: { kind: "zero" } } });
    expect(error({ ...neuron, target: "nope" })[0]).toBe("target");
  });

  it("reopens any intervention as the draft that rebuilds it", () => {
    const ivs: Intervention[] = [
      { target: { kind: "mlp_neuron", layer: 1, index: [2, 3] }, op: { kind: "add", value: [1, 2] } },
      { target: { kind: "residual", layer: 2, point: "resid_mid", positions: [0, -1] }, op: { kind: "steer", coefficient: -3, direction: { kind: "vector", vector: [1, 2, 3, 4] } } },
      { target: { kind: "attn_head", layer: 0, index: 1, positions: [4] }, op: { kind: "mean", reference: ["x", "y"] } },
      { target: { kind: "embedding", positions: [2] }, op: { kind: "steer", coefficient: 1, normalize: true, direction: { kind: "node_write", node: parseNode("L0.attn_head.1@3")!, prompt: "abc" } } },
    ];
    for (const iv of ivs) expect(buildIntervention(draftFromIntervention(iv), ctx)).toEqual({ ok: true, iv });
  });

  it("marks where two continuations part", () => {
    expect(firstDifference([1, 2, 3], [1, 2, 3])).toBeNull();
    expect(firstDifference([1, 2, 3], [1, 5, 3])).toBe(1);
    expect(firstDifference([1, 2], [1, 2, 3])).toBe(2);
    expect(firstDifference([], [])).toBeNull();
  });
});
