/** The direction picker's form state: text fields until Run, then a checked DirectionState. */
import type { KindInfo } from "../../client/api";
import { LOGIT_DIFF, parseVector, type DirectionState, type ResidPoint } from "../../lib/debugDirection";
import { formatNode, parseNode } from "../../lib/nodes";

export interface DirectionDraft {
  kind: DirectionState["kind"];
  continuation: string;
  layer: string;
  point: ResidPoint;
  source: "node" | "vector";
  node: string;
  vector: string;
  normalize: boolean;
}

export function directionDraft(d: DirectionState, nLayers: number | null): DirectionDraft {
  const out: DirectionDraft = {
    kind: d.kind, continuation: "", layer: String(Math.max(0, (nLayers ?? 1) - 1)), point: "resid_post",
    source: "node", node: "", vector: "", normalize: false,
  };
  if (d.kind === "logprob") out.continuation = d.continuation;
  if (d.kind === "probe") {
    out.layer = String(d.layer);
    out.point = d.point;
    out.normalize = d.normalize;
    out.source = d.node ? "node" : "vector";
    out.node = d.node ? formatNode(d.node) : "";
    out.vector = d.vector ? d.vector.join(", ") : "";
  }
  return out;
}

export interface DirectionContext {
  kinds: KindInfo[] | null;
  nLayers: number | null;
  dModel: number | null;
}

export type DirectionResult = { ok: true; direction: DirectionState } | { ok: false; field: string; message: string };

/** The checked direction, or the field that is wrong (named like the API's: direction.vector, ...). */
export function buildDirection(d: DirectionDraft, ctx: DirectionContext): DirectionResult {
  if (d.kind === "logit_diff") return { ok: true, direction: LOGIT_DIFF };
  if (d.kind === "logprob") {
    if (!d.continuation) return { ok: false, field: "direction.continuation", message: "direction.continuation: the text whose log-prob is explained" };
    return { ok: true, direction: { kind: "logprob", continuation: d.continuation } };
  }
  const layer = Number(d.layer);
  if (!/^\d+$/.test(d.layer.trim()) || (ctx.nLayers !== null && layer >= ctx.nLayers))
    return { ok: false, field: "direction.layer", message: `direction.layer: a block index 0..${(ctx.nLayers ?? 1) - 1}` };
  if (d.source === "node") {
    const node = parseNode(d.node, ctx.kinds);
    if (!node) return { ok: false, field: "direction.node", message: "direction.node: a node string such as L3.mlp_neuron.12@5 (its write is the probe)" };
    return { ok: true, direction: { kind: "probe", layer, point: d.point, node, vector: null, normalize: d.normalize } };
  }
  const vector = parseVector(d.vector);
  if (!vector) return { ok: false, field: "direction.vector", message: "direction.vector: numbers separated by commas or spaces" };
  if (ctx.dModel !== null && vector.length !== ctx.dModel)
    return { ok: false, field: "direction.vector", message: `direction.vector: ${vector.length} entries; the model's d_model is ${ctx.dModel}` };
  return { ok: true, direction: { kind: "probe", layer, point: d.point, node: null, vector, normalize: d.normalize } };
}
