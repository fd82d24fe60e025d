/** What the Debugger explains: the logit difference (default), a continuation's log-prob, or a probe
 * (a residual vector at a layer/point: pasted, or a node's write). Kept in the URL like the rest. */
import type { DebugRequest, Node } from "../client/api";
import { formatNode, parseNode } from "./nodes";

export type ResidPoint = "resid_pre" | "resid_mid" | "resid_post";
export const RESID_POINTS: ResidPoint[] = ["resid_pre", "resid_mid", "resid_post"];

export type DirectionState =
  | { kind: "logit_diff" }
  | { kind: "logprob"; continuation: string }
  | { kind: "probe"; layer: number; point: ResidPoint; node: Node | null; vector: number[] | null; normalize: boolean };

export const LOGIT_DIFF: DirectionState = { kind: "logit_diff" };

const AT = /^L(\d+)\.(resid_pre|resid_mid|resid_post)$/;

/** Writes `dir`, `cont`, `probe_at`, `probe_node` / `probe_vec`, `probe_norm` (nothing for the default). */
export function encodeDirection(p: URLSearchParams, d: DirectionState): void {
  if (d.kind === "logprob") {
    p.set("dir", "logprob");
    p.set("cont", d.continuation);
  } else if (d.kind === "probe") {
    p.set("dir", "probe");
    p.set("probe_at", `L${d.layer}.${d.point}`);
    if (d.node) p.set("probe_node", formatNode(d.node));
    if (d.vector) p.set("probe_vec", d.vector.join(","));
    if (d.normalize) p.set("probe_norm", "1");
  }
}

/** The direction a URL names; anything malformed falls back to the logit difference. */
export function decodeDirection(p: URLSearchParams): DirectionState {
  const dir = p.get("dir");
  if (dir === "logprob") {
    const continuation = p.get("cont") ?? "";
    return continuation ? { kind: "logprob", continuation } : LOGIT_DIFF;
  }
  if (dir === "probe") {
    const at = AT.exec(p.get("probe_at") ?? "");
    if (!at) return LOGIT_DIFF;
    const node = parseNode(p.get("probe_node") ?? "");
    const vector = parseVector(p.get("probe_vec") ?? "");
    if ((node === null) === (vector === null)) return LOGIT_DIFF;
    return { kind: "probe", layer: Number(at[1]), point: at[2] as ResidPoint, node, vector, normalize: p.get("probe_norm") === "1" };
  }
  return LOGIT_DIFF;
}

/** Numbers separated by commas, spaces or newlines (brackets allowed: a pasted JSON list); null if any is not a finite number. */
export function parseVector(text: string): number[] | null {
  const parts = text.replace(/[[\]]/g, " ").split(/[\s,]+/).filter((x) => x !== "");
  if (!parts.length) return null;
  const out = parts.map(Number);
  return out.every((x) => Number.isFinite(x)) ? out : null;
}

/** The request's `direction` field (undefined for the logit difference). */
export function directionRequest(d: DirectionState): DebugRequest["direction"] | undefined {
  if (d.kind === "logprob") return { kind: "logprob", continuation: d.continuation };
  if (d.kind === "probe") {
    const out: NonNullable<DebugRequest["direction"]> = { kind: "probe", layer: d.layer, point: d.point };
    if (d.node) out.node = d.node;
    if (d.vector) out.vector = d.vector;
    if (d.normalize) out.normalize = true;
    return out;
  }
  return undefined;
}

/** A short description for the status line. */
export function directionLabel(d: DirectionState): string {
  if (d.kind === "logprob") return `log-prob of ${JSON.stringify(d.continuation)}`;
  if (d.kind === "probe") {
    const src = d.node ? `${formatNode(d.node)}'s write` : `a ${d.vector?.length ?? 0}-entry vector`;
    return `probe ${src} at L${d.layer}.${d.point}`;
  }
  return "logit difference";
}
