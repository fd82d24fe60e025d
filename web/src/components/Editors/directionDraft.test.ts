import { describe, expect, it } from "vitest";
import kinds from "../../test/fixtures/kinds.json";
import { LOGIT_DIFF, type DirectionState } from "../../lib/debugDirection";
import { parseNode } from "../../lib/nodes";
import { buildDirection, directionDraft } from "./directionDraft";

const ctx = { kinds, nLayers: 30, dModel: 3 };

describe("the direction picker's checks", () => {
  it("round-trips every direction through its draft", () => {
    const dirs: DirectionState[] = [
      LOGIT_DIFF,
      { kind: "logprob", continuation: " Mary" },
      { kind: "probe", layer: 5, point: "resid_pre", node: parseNode("L4.mlp_neuron.9@0"), vector: null, normalize: true },
      { kind: "probe", layer: 29, point: "resid_post", node: null, vector: [1, -2, 0.5], normalize: false },
    ];
    for (const d of dirs) expect(buildDirection(directionDraft(d, 30), ctx)).toEqual({ ok: true, direction: d });
    expect(directionDraft(LOGIT_DIFF, 30).layer).toBe("29"); // a new probe starts at the last layer
  });

  it("names the field that is wrong, as the API does", () => {
    const probe = { ...directionDraft(LOGIT_DIFF, 30), kind: "probe" as const };
    const err = (d: typeof probe) => {
      const r = buildDirection(d, ctx);
      return r.ok ? null : [r.field, r.message];
    };
    expect(err({ ...probe, node: "" })?.[0]).toBe("direction.node");
    expect(err({ ...probe, source: "vector", vector: "1, 2" })).toEqual(["direction.vector", "direction.vector: 2 entries; the model's d_model is 3"]);
    expect(err({ ...probe, source: "vector", vector: "1, b, 2" })?.[0]).toBe("direction.vector");
    expect(err({ ...probe, layer: "30", node: "L1.mlp_neuron.1@0" })?.[0]).toBe("direction.layer");
    expect(err({ ...probe, kind: "logprob" } as never)?.[0]).toBe("direction.continuation");
  });
});
