/** The explorer's pure helpers: the URL's queries, node labels and links, match highlighting. */
import type { KindInfo, Schemas } from "../../client/api";
import { kindOf } from "../../lib/kinds";
import { nodePath } from "../../routes/nodeHref";

export type TokenNode = Schemas["TokenNode"];
export type SearchHit = Schemas["SearchHit"];

/** A node of a search hit: a neuron or head that has the window as a top example. */
export interface HitNode {
  kind: string;
  layer: number;
  unit: number;
  activation: number;
  /** the node's peak token in the window (a token index; 0 is the start token) */
  position: number | null;
}

export interface ExploreQuery {
  /** ?token=: a token's text (case and surrounding space ignored by the server) or `#<id>` */
  token: string;
  /** ?q=: text to find in the corpus windows */
  q: string;
  /** ?expl=: text to find in the nodes' explanations */
  expl: string;
  /** ?sem=1: find explanations by meaning (sentence embeddings) instead of by their text */
  sem: string;
}

export function parseQuery(search: string): ExploreQuery {
  const p = new URLSearchParams(search);
  return { token: p.get("token") ?? "", q: p.get("q") ?? "", expl: p.get("expl") ?? "", sem: p.get("sem") === "1" ? "1" : "" };
}

/** The explorer's URL with one query set (blank: removed), keeping the other. */
export function exploreHref(search: string, name: keyof ExploreQuery, value: string): string {
  const p = new URLSearchParams(search);
  for (const k of [...p.keys()]) if (k !== "token" && k !== "q" && k !== "expl" && k !== "sem") p.delete(k);
  if (value.trim() === "") p.delete(name);
  else p.set(name, value);
  const s = p.toString();
  return s ? `/explore?${s}` : "/explore";
}

/** What POST /api/dataset/token gets: `#260` (or `# 260`) is the token id 260, anything else text. */
export function tokenRequest(token: string): string | number {
  const m = /^#\s*(\d+)$/.exec(token.trim());
  return m ? Number(m[1]) : token;
}

/** The node page of a dataset unit; null for a kind the served model does not list or collate. */
export function unitHref(kinds: KindInfo[] | null, kind: string, layer: number, unit: number, model: string | null): string | null {
  const k = kindOf(kinds, kind);
  return k?.collated ? nodePath(kind, k.layered ? layer : null, unit, model) : null;
}

/** What a unit of a kind is called ("neuron", "head"; the kind's name when unknown). */
export const unitNoun = (kinds: KindInfo[] | null, kind: string): string => kindOf(kinds, kind)?.unit ?? kind;

/** The nodes of a hit, typed (the API gives them as loose objects); malformed entries are dropped. */
export function hitNodes(hit: SearchHit): HitNode[] {
  const out: HitNode[] = [];
  for (const n of hit.nodes) {
    const layer = Number(n.layer);
    const unit = Number(n.unit);
    const activation = Number(n.activation);
    if (typeof n.kind !== "string" || !Number.isInteger(layer) || !Number.isInteger(unit) || !Number.isFinite(activation)) continue;
    const position = n.position == null ? null : Number(n.position);
    out.push({ kind: n.kind, layer, unit, activation, position: Number.isInteger(position) ? position : null });
  }
  return out;
}

export interface Segment {
  text: string;
  match: boolean;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** `text` cut into runs, those equal to `query` ignoring case marked; a blank query marks nothing. */
export function highlight(text: string, query: string): Segment[] {
  if (query === "" || text === "") return text === "" ? [] : [{ text, match: false }];
  const re = new RegExp(escapeRegExp(query), "giu");
  const out: Segment[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    const at = m.index ?? 0;
    if (m[0] === "") break;
    if (at > last) out.push({ text: text.slice(last, at), match: false });
    out.push({ text: m[0], match: true });
    last = at + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last), match: false });
  return out;
}

export type TokenSort = "label" | "kind" | "token" | "n_examples" | "max_activation";

/** The token table's rows sorted by a column; ties keep the server's order (most examples first). */
export function sortTokenNodes(rows: TokenNode[], sort: TokenSort, desc: boolean): TokenNode[] {
  const key = (r: TokenNode): (string | number)[] => {
    switch (sort) {
      case "label":
        return [r.layer, r.kind, r.unit];
      case "kind":
        return [r.kind];
      case "token":
        return [r.token];
      case "n_examples":
        return [r.n_examples];
      case "max_activation":
        return [r.max_activation];
    }
  };
  const cmp = (a: (string | number)[], b: (string | number)[]) => {
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      const y = b[i]!;
      if (x < y) return -1;
      if (x > y) return 1;
    }
    return 0;
  };
  return rows
    .map((r, i) => ({ r, i, k: key(r) }))
    .sort((a, b) => (desc ? cmp(b.k, a.k) : cmp(a.k, b.k)) || a.i - b.i)
    .map((x) => x.r);
}
