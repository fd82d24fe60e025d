/** Rows of the node tables (one run, or two runs paired), their sorting and filtering. */
import type { KindInfo, Node, NodePair, NodeRow } from "../client/api";
import { nodeGroup } from "./kinds";
import type { SortColumn } from "./urlState";

export interface TableRow {
  id: string;
  node: Node;
  label: string;
  token: string;
  keyToken: string | null;
  activation: number | null;
  write_norm: number | null;
  direct_effect: number | null;
  total_effect: number | null;
  left: number | null;
  right: number | null;
  diff: number | null;
}

export const SINGLE_COLUMNS: SortColumn[] = ["label", "token", "activation", "write_norm", "direct_effect", "total_effect"];
export const PAIRED_COLUMNS: SortColumn[] = ["label", "token", "left", "diff", "right"];
/** Columns sorted by |value| (effects: their sign is shown by colour, their size is what matters). */
export const ABS_COLUMNS = new Set<SortColumn>(["direct_effect", "total_effect", "left", "diff", "right"]);

export function singleRows(rows: NodeRow[]): TableRow[] {
  return rows.map((r) => ({
    id: r.label,
    node: r.node,
    label: r.label,
    token: r.token,
    keyToken: r.key_token ?? null,
    activation: r.activation ?? null,
    write_norm: r.write_norm,
    direct_effect: r.direct_effect,
    total_effect: r.total_effect,
    left: null,
    right: null,
    diff: null,
  }));
}

/** Paired rows: the right run's node (its positions are the right prompt's) when present. */
export function pairedRows(pairs: NodePair[]): TableRow[] {
  const out: TableRow[] = [];
  for (const p of pairs) {
    const r = p.right ?? p.left;
    if (!r) continue;
    out.push({
      id: `${p.left?.label ?? "-"}|${p.right?.label ?? "-"}`,
      node: r.node,
      label: p.left && p.right && p.left.label !== p.right.label ? `${p.left.label} → ${p.right.label}` : r.label,
      token: r.token,
      keyToken: r.key_token ?? null,
      activation: r.activation ?? null,
      write_norm: r.write_norm,
      direct_effect: r.direct_effect,
      total_effect: r.total_effect,
      left: p.left?.total_effect ?? null,
      right: p.right?.total_effect ?? null,
      diff: p.total_effect_diff ?? null,
    });
  }
  return out;
}

export interface RowQuery {
  /** filter groups shown (lib/kinds.ts nodeGroup); null = every group */
  groups: string[] | null;
  filter: string;
  sort: SortColumn;
  desc: boolean;
}

function sortValue(r: TableRow, col: SortColumn): number | string | null {
  const v = r[col as keyof TableRow];
  if (col === "label") return r.label;
  if (typeof v === "number") return ABS_COLUMNS.has(col) ? Math.abs(v) : v;
  if (typeof v === "string") return v;
  return null;
}

/** Filter by node group and text (label or token, case-insensitive), then sort; nulls always last. */
export function queryRows(rows: TableRow[], q: RowQuery, kinds: KindInfo[] | null): TableRow[] {
  const text = q.filter.trim().toLowerCase();
  const kept = rows.filter(
    (r) =>
      (q.groups === null || q.groups.includes(nodeGroup(r.node, kinds))) &&
      (!text ||
        r.label.toLowerCase().includes(text) ||
        r.token.toLowerCase().includes(text) ||
        (r.keyToken ?? "").toLowerCase().includes(text)),
  );
  const dir = q.desc ? -1 : 1;
  return kept
    .map((r, i) => ({ r, i, v: sortValue(r, q.sort) }))
    .sort((a, b) => {
      if (a.v === null || b.v === null) return a.v === b.v ? a.i - b.i : a.v === null ? 1 : -1;
      if (q.sort === "label") return dir * compareLabels(a.r.node, b.r.node) || a.i - b.i;
      const c = a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
      return dir * c || a.i - b.i;
    })
    .map((x) => x.r);
}

/** Natural node order: residual-stream order (layer, embeddings first), then kind, index, token, key. */
function compareLabels(a: Node, b: Node): number {
  const la = a.layer ?? -1;
  const lb = b.layer ?? -1;
  return (
    la - lb ||
    a.kind.localeCompare(b.kind) ||
    (a.index ?? -1) - (b.index ?? -1) ||
    a.token - b.token ||
    (a.key ?? -1) - (b.key ?? -1)
  );
}
