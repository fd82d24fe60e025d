import type { Node, NodeKind } from "../client/api";

/** `/node/:kind/:layer/:index?prompt=&token=&key=` ("-" for a missing layer or index). */
export function nodeHref(n: Node, prompt: string): string {
  const q = new URLSearchParams({ prompt, token: String(n.token) });
  if (n.key != null) q.set("key", String(n.key));
  return `/node/${n.kind}/${n.layer ?? "-"}/${n.index ?? "-"}?${q.toString()}`;
}

const KINDS: NodeKind[] = ["mlp_neuron", "attn_head", "embedding", "attn_out", "mlp_out"];

/** The node a node page's path names, and its prompt (null when the query has none: the on-prompt part is hidden). */
export function parseNodeRoute(path: string, search: string): { node: Node; prompt: string | null } | { error: string } {
  const m = /^\/node\/([a-z_]+)\/(-|\d+)\/(-|\d+)\/?$/.exec(path);
  const q = new URLSearchParams(search);
  if (!m || !KINDS.includes(m[1] as NodeKind)) return { error: `not a node page: ${path}` };
  const num = (s: string | null | undefined) => (s == null || s === "-" || s === "" ? null : Number(s));
  const prompt = q.get("prompt") || null;
  const token = num(q.get("token"));
  if (prompt !== null && (token === null || Number.isNaN(token))) return { error: "the node page needs ?token=<position> with a prompt" };
  return {
    node: { kind: m[1] as NodeKind, layer: num(m[2]), index: num(m[3]), token: token ?? 0, key: num(q.get("key")) },
    prompt,
  };
}

/** The same page for another layer/index of the same kind, keeping the query (prompt, token, key). */
export function neighbourHref(kind: NodeKind, layer: number, index: number, search: string): string {
  return `/node/${kind}/${layer}/${index}${search}`;
}
