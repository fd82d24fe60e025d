import type { KindInfo, Node } from "../client/api";
import { kindOf } from "../lib/kinds";

/** The path of a node page: `/node/<model>/<kind>/<layer>/<index>` (the model URL-encoded; "-" for a
 * missing layer or index), or the model-less `/node/<kind>/<layer>/<index>` when the model has no name. */
export function nodePath(kind: string, layer: number | null, index: number | null, model: string | null): string {
  const unit = `${kind}/${layer ?? "-"}/${index ?? "-"}`;
  return model ? `/node/${encodeURIComponent(model)}/${unit}` : `/node/${unit}`;
}

/** A node on a prompt: `/node/<model>/<kind>/<layer>/<index>?prompt=&token=&key=`. */
export function nodeHref(n: Node, prompt: string, model: string | null): string {
  const q = new URLSearchParams({ prompt, token: String(n.token) });
  if (n.key != null) q.set("key", String(n.key));
  return `${nodePath(n.kind, n.layer ?? null, n.index ?? null, model)}?${q.toString()}`;
}

export interface NodeRoute {
  node: Node;
  /** the model the path names (null in the model-less form) */
  model: string | null;
  /** null when the query has none: the on-prompt part is hidden */
  prompt: string | null;
}

/** The node a node page's path names, its model and its prompt. Both path forms are accepted:
 * `/node/<model>/<kind>/<layer>/<index>` (canonical) and `/node/<kind>/<layer>/<index>`. The kind is
 * checked against the served model's kinds once they are known (null: not yet). */
export function parseNodeRoute(path: string, search: string, kinds: KindInfo[] | null = null): NodeRoute | { error: string } {
  const m = /^\/node\/(?:([^/]+)\/)?([a-z][a-z0-9_]*)\/(-|\d+)\/(-|\d+)\/?$/.exec(path);
  if (!m || (kinds !== null && !kindOf(kinds, m[2]!))) return { error: `not a node page: ${path}` };
  let model: string | null = null;
  if (m[1] !== undefined) {
    try {
      model = decodeURIComponent(m[1]);
    } catch {
      return { error: `not a node page: the model name in ${path} is not valid URL encoding` };
    }
  }
  const q = new URLSearchParams(search);
  const num = (s: string | null | undefined) => (s == null || s === "-" || s === "" ? null : Number(s));
  const prompt = q.get("prompt") || null;
  const token = num(q.get("token"));
  if (prompt !== null && (token === null || Number.isNaN(token))) return { error: "the node page needs ?token=<position> with a prompt" };
  return {
    node: { kind: m[2]!, layer: num(m[3]), index: num(m[4]), token: token ?? 0, key: num(q.get("key")) },
    model,
    prompt,
  };
}

/** The same page for another layer/index of the same kind, keeping the query (prompt, token, key). */
export function neighbourHref(kind: string, layer: number | null, index: number, search: string, model: string | null): string {
  return nodePath(kind, layer, index, model) + search;
}

/** The node page with the prompt and token position set (`prompt` null: without a prompt). */
export function withPrompt(path: string, prompt: string | null, token: number): string {
  if (prompt === null) return path;
  return `${path}?${new URLSearchParams({ prompt, token: String(token) }).toString()}`;
}
