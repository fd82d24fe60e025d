import type { Node, NodeKind } from "../client/api";

/** `/node/:kind/:layer/:index?prompt=&token=&key=` ("-" for a missing layer or index). */
export function nodeHref(n: Node, prompt: string): string {
  const q = new URLSearchParams({ prompt, token: String(n.token) });
  if (n.key != null) q.set("key", String(n.key));
  return `/node/${n.kind}/${n.layer ?? "-"}/${n.index ?? "-"}?${q.toString()}`;
}

const KINDS: NodeKind[] = ["mlp_neuron", "attn_head", "embedding", "attn_out", "mlp_out"];

/** The node and prompt a node page's path and query name, or an error message. */
export function parseNodeRoute(path: string, search: string): { node: Node; prompt: string } | { error: string } {
  const m = /^\/node\/([a-z_]+)\/(-|\d+)\/(-|\d+)\/?$/.exec(path);
  const q = new URLSearchParams(search);
  if (!m || !KINDS.includes(m[1] as NodeKind)) return { error: `not a node page: ${path}` };
  const num = (s: string | null | undefined) => (s == null || s === "-" || s === "" ? null : Number(s));
  const token = num(q.get("token"));
  const prompt = q.get("prompt") ?? "";
  if (token === null || Number.isNaN(token)) return { error: "the node page needs ?token=<position>" };
  if (!prompt) return { error: "the node page needs ?prompt=<text>" };
  return {
    node: { kind: m[1] as NodeKind, layer: num(m[2]), index: num(m[3]), token, key: num(q.get("key")) },
    prompt,
  };
}
