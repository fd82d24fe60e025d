/** Node strings (`L5.attn_head.2@10<-3`) and the node <-> zero-ablation mapping (Intervention.on_node).
 * Nothing here knows a kind: the grammar is the same for every kind of the registry (lib/kinds.ts). */
import type { Intervention, Node, Schemas } from "../client/api";
import { checkNode, type KindInfo } from "./kinds";

const PATTERN = /^(?:L(\d+)\.)?([a-z][a-z0-9_]*)(?:\.(\d+))?@(\d+)(?:<-(\d+))?$/;

export function formatNode(n: Node): string {
  let s = n.layer != null ? `L${n.layer}.` : "";
  s += n.kind + (n.index != null ? `.${n.index}` : "") + `@${n.token}`;
  return n.key != null ? `${s}<-${n.key}` : s;
}

/** The node a string names, or null when it is not a well-formed node string (checked against the
 * registry's kinds when they are known). */
export function parseNode(text: string, kinds: KindInfo[] | null = null): Node | null {
  const m = PATTERN.exec(text.trim());
  if (!m) return null;
  const num = (s: string | undefined) => (s === undefined ? null : Number(s));
  const node: Node = { kind: m[2]!, layer: num(m[1]), index: num(m[3]), token: Number(m[4]), key: num(m[5]) };
  if (node.key != null && node.key > node.token) return null;
  return kinds === null || checkNode(node, kinds) ? node : null;
}

/** The intervention that zero-ablates exactly this node (mirrors Intervention.on_node). */
export function ablation(n: Node): Intervention {
  const target: Intervention["target"] = { kind: n.kind, positions: [n.token] };
  if (n.layer != null) target.layer = n.layer;
  if (n.index != null) target.index = n.index;
  if (n.key != null) target.key = n.key;
  return { target, op: { kind: "zero" } };
}

/** The node a zero-ablation edits, when it is exactly one node's ablation (the URL's `ablate=`). */
type NodeTarget = Schemas["NodeTarget"];
type ResidualTarget = Schemas["ResidualTarget"];
const isResidual = (t: Intervention["target"]): t is ResidualTarget => t.kind === "residual";

export function ablatedNode(iv: Intervention): Node | null {
  if (iv.op.kind !== "zero" || isResidual(iv.target)) return null;
  const t: NodeTarget = iv.target;
  const pos = t.positions;
  if (!pos || pos.length !== 1 || t.renormalize) return null;
  const index = t.index ?? null;
  if (Array.isArray(index)) return null;
  const key = t.key ?? null;
  const token = pos[0]!;
  if (token < 0 || (key != null && key > token)) return null;
  return { kind: t.kind, layer: t.layer ?? null, index, token, key };
}

/** A short readable label, e.g. "zero L23.attn_head.3@13" or "scale×0.5 L3.mlp_neuron.[1,2]@all". */
export function interventionLabel(iv: Intervention): string {
  const node = ablatedNode(iv);
  if (node) return `zero ${formatNode(node)}`;
  const t = iv.target;
  const pos = t.positions == null ? "all" : t.positions.join(",");
  let what: string;
  if (isResidual(t)) {
    what = `L${t.layer}.${t.point ?? "resid_pre"}@${pos}`;
  } else {
    const index = t.index ?? null;
    const key = t.key != null ? `<-${t.key}` : "";
    const idx = index == null ? "" : Array.isArray(index) ? `.[${index.join(",")}]` : `.${index}`;
    what = `${t.layer != null ? `L${t.layer}.` : ""}${t.kind}${idx}@${pos}${key}`;
  }
  const op = iv.op;
  const opText =
    op.kind === "scale" ? `scale×${op.factor}`
    : op.kind === "set" ? `set ${Array.isArray(op.value) ? "vector" : op.value}`
    : op.kind === "add" ? `add ${Array.isArray(op.value) ? "vector" : op.value}`
    : op.kind === "resample" ? "resample"
    : op.kind === "mean" ? `mean of ${op.reference.length} prompt${op.reference.length === 1 ? "" : "s"}`
    : op.kind === "dataset_mean" ? "dataset mean"
    : op.kind === "steer"
      ? `steer ${op.coefficient}×${op.direction.kind === "node_write" ? formatNode(op.direction.node) : "vector"}${op.normalize ? "/|·|" : ""}`
    : op.kind;
  return `${opText} ${what}`;
}
