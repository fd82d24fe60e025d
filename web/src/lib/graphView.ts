/** What the Graph page draws of a graph: its nodes (a supernode standing for its members), the
 * edges between them (summed over a supernode's members), and each node's strongest links. */
import type { Schemas } from "../client/api";
import { supernodeKey, type Supernode } from "./graphState";

export type GraphResponse = Schemas["GraphResponse"];
export type GraphNode = Schemas["GraphNode"];
export type GraphLink = Schemas["GraphLink"];

export interface ViewNode {
  /** the node id, or `sn:<label>` for a supernode */
  key: string;
  type: GraphNode["type"] | "supernode";
  /** 0: embeddings (tokens), 1 + layer: a latent's or an error's layer, n_layers + 1: logits */
  row: number;
  pos: number;
  label: string;
  influence: number;
  /** the graph's node (null for a supernode) */
  node: GraphNode | null;
  /** a supernode's members in the graph */
  members: GraphNode[];
}

export interface ViewEdge {
  /** `source>target` (view keys) */
  key: string;
  source: string;
  target: string;
  /** the link's weight; a supernode's edge sums its members' links */
  weight: number;
  /** how many links of the graph it stands for */
  count: number;
}

export interface GraphIndex {
  /** the graph's nodes, one per id */
  nodes: GraphNode[];
  byId: Map<string, GraphNode>;
  /** links into a node (the node is the target) and out of it, strongest |weight| first */
  inputs: Map<string, GraphLink[]>;
  outputs: Map<string, GraphLink[]>;
}

export function indexGraph(g: Pick<GraphResponse, "nodes" | "links">): GraphIndex {
  const byId = new Map<string, GraphNode>();
  for (const n of g.nodes) byId.set(n.id, n); // ids are unique (errors are err_L_pos)
  const inputs = new Map<string, GraphLink[]>();
  const outputs = new Map<string, GraphLink[]>();
  const add = (m: Map<string, GraphLink[]>, k: string, l: GraphLink) => {
    const xs = m.get(k);
    if (xs) xs.push(l);
    else m.set(k, [l]);
  };
  for (const l of g.links) {
    add(inputs, l.target, l);
    add(outputs, l.source, l);
  }
  const byWeight = (a: GraphLink, b: GraphLink) => Math.abs(b.weight) - Math.abs(a.weight);
  for (const xs of inputs.values()) xs.sort(byWeight);
  for (const xs of outputs.values()) xs.sort(byWeight);
  return { nodes: [...byId.values()], byId, inputs, outputs };
}

export const rowOf = (n: Pick<GraphNode, "type" | "layer">, nLayers: number): number =>
  n.type === "token" ? 0 : n.type === "logit" ? nLayers + 1 : 1 + (n.layer ?? 0);

export interface ViewOptions {
  pinned: string[];
  supernodes: Supernode[];
  /** only the pinned nodes (and supernodes), with every token and logit */
  pinnedOnly: boolean;
}

export interface GraphView {
  nodes: ViewNode[];
  byKey: Map<string, ViewNode>;
  edges: ViewEdge[];
  /** the largest |weight| of the edges drawn (1 when none) */
  maxWeight: number;
  /** the supernode key of each grouped node id */
  memberOf: Map<string, string>;
}

export function buildView(g: GraphResponse, idx: GraphIndex, o: ViewOptions): GraphView {
  const nLayers = g.n_layers;
  const memberOf = new Map<string, string>();
  const nodes: ViewNode[] = [];
  for (const s of o.supernodes) {
    const members = s.ids.map((id) => idx.byId.get(id)).filter((n): n is GraphNode => n !== undefined && !memberOf.has(n.id));
    if (!members.length) continue;
    const key = supernodeKey(s.label);
    for (const m of members) memberOf.set(m.id, key);
    const mean = (f: (n: GraphNode) => number) => members.reduce((a, n) => a + f(n), 0) / members.length;
    nodes.push({
      key, type: "supernode", label: s.label, node: null, members,
      row: Math.round(mean((n) => rowOf(n, nLayers))), pos: Math.round(mean((n) => n.pos)),
      influence: members.reduce((a, n) => a + n.influence, 0),
    });
  }
  const pinned = new Set(o.pinned);
  for (const n of idx.nodes) {
    if (memberOf.has(n.id)) continue;
    if (o.pinnedOnly && !pinned.has(n.id) && n.type !== "token" && n.type !== "logit") continue;
    nodes.push({ key: n.id, type: n.type, row: rowOf(n, nLayers), pos: n.pos, label: n.label, influence: n.influence, node: n, members: [] });
  }
  const byKey = new Map(nodes.map((n) => [n.key, n]));
  const sums = new Map<string, ViewEdge>();
  for (const l of g.links) {
    const s = memberOf.get(l.source) ?? l.source;
    const t = memberOf.get(l.target) ?? l.target;
    if (s === t || !byKey.has(s) || !byKey.has(t)) continue;
    const key = `${s}>${t}`;
    const e = sums.get(key);
    if (e) {
      e.weight += l.weight;
      e.count += 1;
    } else sums.set(key, { key, source: s, target: t, weight: l.weight, count: 1 });
  }
  const edges = [...sums.values()].sort((a, b) => Math.abs(a.weight) - Math.abs(b.weight)); // strongest drawn last (on top)
  const maxWeight = edges.reduce((m, e) => Math.max(m, Math.abs(e.weight)), 0) || 1;
  return { nodes, byKey, edges, maxWeight, memberOf };
}

/** The pinned nodes a causal check scales: latents and errors (tokens and logits cannot be scaled). */
export const checkable = (idx: GraphIndex, ids: string[]): string[] =>
  ids.filter((id) => {
    const t = idx.byId.get(id)?.type;
    return t === "latent" || t === "error";
  });
