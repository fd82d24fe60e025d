/** Node strings (`L5.attn_head.2@10<-3`) and the node -> zero-ablation mapping (Intervention.on_node). */
import type { Intervention, Node, NodeKind, Through } from "../client/api";

export const NODE_KINDS: NodeKind[] = ["mlp_neuron", "attn_head", "embedding", "attn_out", "mlp_out"];
const PATTERN =
  /^(?:L(\d+)\.)?(mlp_neuron|attn_head|embedding|attn_out|mlp_out)(?:\.(\d+))?@(\d+)(?:<-(\d+))?$/;
const LAYERED = new Set<NodeKind>(["mlp_neuron", "attn_head", "attn_out", "mlp_out"]);
const INDEXED = new Set<NodeKind>(["mlp_neuron", "attn_head"]);

export function formatNode(n: Node): string {
  let s = n.layer != null ? `L${n.layer}.` : "";
  s += n.kind + (n.index != null ? `.${n.index}` : "") + `@${n.token}`;
  return n.key != null ? `${s}<-${n.key}` : s;
}

/** The node a string names, or null when it is not a well-formed node string. */
export function parseNode(text: string): Node | null {
  const m = PATTERN.exec(text.trim());
  if (!m) return null;
  const kind = m[2] as NodeKind;
  const num = (s: string | undefined) => (s === undefined ? null : Number(s));
  const node: Node = { kind, layer: num(m[1]), index: num(m[3]), token: Number(m[4]), key: num(m[5]) };
  if ((node.layer != null) !== LAYERED.has(kind)) return null;
  if ((node.index != null) !== INDEXED.has(kind)) return null;
  if (node.key != null && (kind !== "attn_head" || node.key > node.token)) return null;
  return node;
}

export const isPair = (n: Node): boolean => n.kind === "attn_head" && n.key != null;

/** The five filter groups of the node table. */
export type NodeGroup = "neurons" | "heads" | "pairs" | "layers" | "embeddings";
export const NODE_GROUPS: NodeGroup[] = ["neurons", "heads", "pairs", "layers", "embeddings"];
export function nodeGroup(n: Node): NodeGroup {
  switch (n.kind) {
    case "mlp_neuron":
      return "neurons";
    case "attn_head":
      return n.key != null ? "pairs" : "heads";
    case "embedding":
      return "embeddings";
    default:
      return "layers";
  }
}

/** The intervention that zero-ablates exactly this node (mirrors Intervention.on_node). */
export function ablation(n: Node): Intervention {
  const positions = [n.token];
  const op = { kind: "zero" as const };
  switch (n.kind) {
    case "mlp_neuron":
      return { target: { kind: "mlp_neuron", layer: n.layer ?? 0, index: n.index ?? 0, positions }, op };
    case "attn_head":
      return {
        target:
          n.key != null
            ? { kind: "attn_head", layer: n.layer ?? 0, head: n.index ?? 0, positions, key: n.key }
            : { kind: "attn_head", layer: n.layer ?? 0, head: n.index ?? 0, positions },
        op,
      };
    case "embedding":
      return { target: { kind: "embedding", positions }, op };
    default:
      return { target: { kind: n.kind, layer: n.layer ?? 0, positions }, op };
  }
}

/** The node a zero-ablation edits, when it is exactly one node's ablation (the URL's `ablate=`). */
export function ablatedNode(iv: Intervention): Node | null {
  if (iv.op.kind !== "zero") return null;
  const t = iv.target;
  const pos = t.positions;
  if (!pos || pos.length !== 1) return null;
  const token = pos[0]!;
  let node: Node;
  switch (t.kind) {
    case "mlp_neuron":
      if (typeof t.index !== "number") return null;
      node = { kind: "mlp_neuron", layer: t.layer, index: t.index, token, key: null };
      break;
    case "attn_head":
      if (t.renormalize) return null;
      node = { kind: "attn_head", layer: t.layer, index: t.head, token, key: t.key ?? null };
      break;
    case "embedding":
      node = { kind: "embedding", layer: null, index: null, token, key: null };
      break;
    case "attn_out":
    case "mlp_out":
      node = { kind: t.kind, layer: t.layer, index: null, token, key: null };
      break;
    default:
      return null;
  }
  return token >= 0 && (node.key == null || node.key <= token) ? node : null;
}

/** A short readable label, e.g. "zero L23.attn_head.3@13" or "scale×0.5 L3.mlp_neuron.[1,2]@all". */
export function interventionLabel(iv: Intervention): string {
  const node = ablatedNode(iv);
  if (node) return `zero ${formatNode(node)}`;
  const t = iv.target;
  const pos = t.positions == null ? "all" : t.positions.join(",");
  let what: string;
  switch (t.kind) {
    case "mlp_neuron":
      what = `L${t.layer}.mlp_neuron.${Array.isArray(t.index) ? `[${t.index.join(",")}]` : t.index}@${pos}`;
      break;
    case "attn_head":
      what = `L${t.layer}.attn_head.${t.head}@${pos}${t.key != null ? `<-${t.key}` : ""}`;
      break;
    case "residual":
      what = `L${t.layer}.${t.point ?? "resid_pre"}@${pos}`;
      break;
    case "embedding":
      what = `embedding@${pos}`;
      break;
    default:
      what = `L${t.layer}.${t.kind}@${pos}`;
  }
  const op = iv.op;
  const opText =
    op.kind === "scale" ? `scale×${op.factor}`
    : op.kind === "set" ? `set ${Array.isArray(op.value) ? "vector" : op.value}`
    : op.kind === "add" ? `add ${Array.isArray(op.value) ? "vector" : op.value}`
    : op.kind === "resample" ? "resample"
    : op.kind;
  return `${opText} ${what}`;
}

/** Which `through` choices a node can be traced through (null = the default). */
export function traceChoices(n: Node): { through: Through | null; label: string }[] {
  if (n.kind === "mlp_neuron") return [{ through: null, label: "trace" }];
  if (n.kind !== "attn_head") return [];
  if (n.key != null)
    return [
      { through: "query", label: "Q" },
      { through: "key", label: "K" },
      { through: "query_key", label: "Q+K" },
    ];
  return [{ through: "value", label: "V" }];
}

export const THROUGH_LABEL: Record<Through, string> = {
  pre: "pre-activation",
  post: "post-activation",
  query: "query",
  key: "key",
  query_key: "query_key",
  value: "value",
};
