/** The whole Graph page view lives in the URL: encode/decode it, and derive the API requests from it.
 * Pinned ids and supernodes travel as Neuronpedia's do: `pinned=a,b` and `supernodes=[["label","a","b"]]`. */
import type { Schemas } from "../client/api";

export type GraphRequest = Schemas["GraphRequest"];

export interface Supernode {
  label: string;
  ids: string[];
}

export interface GraphEdgeRef {
  source: string;
  sink: string;
}

export interface GraphState {
  prompt: string;
  /** the output token to explain, as text (its first token); null: the server's default logits */
  target: string | null;
  /** or as a token id (wins over `target`) */
  targetId: number | null;
  nodeThreshold: number;
  edgeThreshold: number;
  /** latents whose inputs are computed; null: the server's default (4096, or its limit when lower) */
  maxFeatures: number | null;
  pinned: string[];
  supernodes: Supernode[];
  /** the clicked node id, or a supernode as `sn:<label>` */
  clicked: string | null;
  /** the clicked edge, explained by its heads */
  edge: GraphEdgeRef | null;
  pinnedOnly: boolean;
  /** the causal check: the node ids it scales ([] = the server's top 20 latents); null = not run */
  check: string[] | null;
  /** the check's factor (0 = ablate) */
  factor: number;
}

export const DEFAULT_GRAPH_STATE: GraphState = {
  prompt: "",
  target: null,
  targetId: null,
  nodeThreshold: 0.8,
  edgeThreshold: 0.98,
  maxFeatures: null,
  pinned: [],
  supernodes: [],
  clicked: null,
  edge: null,
  pinnedOnly: false,
  check: null,
  factor: 0,
};

/** A graph node id: latent `L_index_pos`, error `err_L_pos`, token `E_id_pos`, logit `(n+1)_id_pos`. */
export const NODE_ID = /^(?:E|err|\d+)_\d+_\d+$/;
export const SUPERNODE_PREFIX = "sn:";
export const supernodeKey = (label: string): string => SUPERNODE_PREFIX + label;

const ids = (v: string | null): string[] => {
  const out: string[] = [];
  for (const x of (v ?? "").split(",")) if (NODE_ID.test(x) && !out.includes(x)) out.push(x);
  return out;
};

function num(v: string | null, fallback: number, ok: (x: number) => boolean): number {
  if (v === null || v.trim() === "") return fallback;
  const x = Number(v);
  return Number.isFinite(x) && ok(x) ? x : fallback;
}

const fraction = (x: number) => x > 0 && x <= 1;

function decodeSupernodes(v: string | null): Supernode[] {
  if (!v) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    return []; // a hand-edited, broken list is dropped rather than breaking the page
  }
  if (!Array.isArray(parsed)) return [];
  const out: Supernode[] = [];
  const seen = new Set<string>();
  for (const s of parsed) {
    if (!Array.isArray(s) || typeof s[0] !== "string" || !s[0]) continue;
    const members = ids(s.slice(1).filter((x): x is string => typeof x === "string").join(","));
    // a node belongs to one supernode at most
    const free = members.filter((m) => !seen.has(m));
    if (free.length < 1 || out.some((o) => o.label === s[0])) continue;
    free.forEach((m) => seen.add(m));
    out.push({ label: s[0], ids: free });
  }
  return out;
}

export function encodeGraphState(s: GraphState): string {
  const p = new URLSearchParams();
  const d = DEFAULT_GRAPH_STATE;
  if (s.prompt) p.set("prompt", s.prompt);
  if (s.targetId !== null) p.set("target_id", String(s.targetId));
  else if (s.target !== null && s.target !== "") p.set("target", s.target);
  if (s.nodeThreshold !== d.nodeThreshold) p.set("node_threshold", String(s.nodeThreshold));
  if (s.edgeThreshold !== d.edgeThreshold) p.set("edge_threshold", String(s.edgeThreshold));
  if (s.maxFeatures !== null) p.set("max_features", String(s.maxFeatures));
  if (s.pinned.length) p.set("pinned", s.pinned.join(","));
  if (s.supernodes.length) p.set("supernodes", JSON.stringify(s.supernodes.map((g) => [g.label, ...g.ids])));
  if (s.clicked) p.set("clicked", s.clicked);
  if (s.edge) p.set("edge", `${s.edge.source},${s.edge.sink}`);
  if (s.pinnedOnly) p.set("only", "pinned");
  if (s.check !== null) p.set("check", s.check.length ? s.check.join(",") : "top");
  if (s.check !== null && s.factor !== d.factor) p.set("factor", String(s.factor));
  return p.toString();
}

export function decodeGraphState(search: string): GraphState {
  const p = new URLSearchParams(search);
  const d = DEFAULT_GRAPH_STATE;
  const s: GraphState = { ...d };
  s.prompt = p.get("prompt") ?? "";
  const tid = p.get("target_id");
  s.targetId = tid !== null && /^\d+$/.test(tid) ? Number(tid) : null;
  s.target = s.targetId === null ? p.get("target") || null : null;
  s.nodeThreshold = num(p.get("node_threshold"), d.nodeThreshold, fraction);
  s.edgeThreshold = num(p.get("edge_threshold"), d.edgeThreshold, fraction);
  const mf = num(p.get("max_features"), 0, (x) => Number.isInteger(x) && x >= 1);
  s.maxFeatures = mf >= 1 ? mf : null;
  s.pinned = ids(p.get("pinned"));
  s.supernodes = decodeSupernodes(p.get("supernodes"));
  const clicked = p.get("clicked");
  s.clicked = clicked && (NODE_ID.test(clicked) || (clicked.startsWith(SUPERNODE_PREFIX) && clicked.length > 3)) ? clicked : null;
  const edge = (p.get("edge") ?? "").split(",");
  s.edge = edge.length === 2 && edge.every((x) => NODE_ID.test(x)) ? { source: edge[0]!, sink: edge[1]! } : null;
  s.pinnedOnly = p.get("only") === "pinned";
  const check = p.get("check");
  s.check = check === null ? null : check === "top" ? [] : ids(check);
  s.factor = num(p.get("factor"), d.factor, (x) => x >= 0);
  return s;
}

export const graphHref = (s: GraphState): string => {
  const q = encodeGraphState(s);
  return q ? `/graph?${q}` : "/graph";
};

/** The /api/graph body of a state (null: no prompt yet). Every follow-up request (check, edge,
 * export) repeats it, so that the server reuses the graph it built. */
export function toGraphRequest(s: GraphState): GraphRequest | null {
  if (!s.prompt) return null;
  const req: GraphRequest = { prompt: s.prompt, node_threshold: s.nodeThreshold, edge_threshold: s.edgeThreshold };
  if (s.maxFeatures !== null) req.max_features = s.maxFeatures;
  if (s.targetId !== null) req.target = s.targetId;
  else if (s.target) req.target = s.target;
  return req;
}

/** Pin or unpin a node; unpinning takes it out of its supernode too (a supernode left empty goes). */
export function togglePin(s: GraphState, id: string): Pick<GraphState, "pinned" | "supernodes"> {
  if (!s.pinned.includes(id)) return { pinned: [...s.pinned, id], supernodes: s.supernodes };
  return {
    pinned: s.pinned.filter((p) => p !== id),
    supernodes: s.supernodes.map((g) => ({ ...g, ids: g.ids.filter((m) => m !== id) })).filter((g) => g.ids.length > 0),
  };
}

/** A label no supernode has yet: `label`, else `label (2)`, `label (3)`, ... */
export function freeLabel(supernodes: Supernode[], label: string): string {
  const base = label.trim() || "group";
  const taken = new Set(supernodes.map((g) => g.label));
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base} (${i})`)) return `${base} (${i})`;
}

/** Group nodes into a new supernode (the nodes leave the supernodes they were in). */
export function group(s: GraphState, label: string, members: string[]): Pick<GraphState, "supernodes" | "clicked"> {
  const set = new Set(members);
  const rest = s.supernodes.map((g) => ({ ...g, ids: g.ids.filter((m) => !set.has(m)) })).filter((g) => g.ids.length > 0);
  const name = freeLabel(rest, label);
  return { supernodes: [...rest, { label: name, ids: [...set] }], clicked: supernodeKey(name) };
}

export function ungroup(s: GraphState, label: string): Pick<GraphState, "supernodes" | "clicked"> {
  return {
    supernodes: s.supernodes.filter((g) => g.label !== label),
    clicked: s.clicked === supernodeKey(label) ? null : s.clicked,
  };
}
