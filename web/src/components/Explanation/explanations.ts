/** Explanations of nodes (docs/explanations.md): their scores as short labels, and the one request
 * the node table makes for its visible rows. Score names come from the API, never from here. */
import { useMemo } from "react";
import { post, type KindInfo, type Node, type Schemas } from "../../client/api";
import { useResource } from "../../hooks/useApi";
import { datasetDone, useDatasetStatus } from "../../hooks/useDatasetStatus";
import { kindOf } from "../../lib/kinds";

export type NodeExplanation = Schemas["NodeExplanation"];
export type ExplanationScore = Schemas["ExplanationScore"];
export type ScoreResult = Schemas["ScoreExplanationResponse"];
export type SimulatedRecord = Schemas["SimulatedRecord"];

/** A unit's address in the dataset: kind, layer (0 without layers), index. */
export const unitKey = (kind: string, layer: number, index: number): string => `${kind}/${layer}/${index}`;

const num = (v: number | null | undefined, d = 2) => (v == null ? "–" : v.toFixed(d));
const pct = (p: number) => `${(100 * p).toPrecision(2)}%`;

/** "0.52" or "absent" for the badge. */
export function scoreValue(s: ExplanationScore): string {
  return s.value == null ? "absent" : num(s.value);
}

/** The full story of a score: value, n, 95% CI, failures, method; or why it is absent. */
export function scoreTitle(name: string, s: ExplanationScore): string {
  if (s.value == null) return `${name}: absent (${s.failure ?? "no value"})`;
  const ci = s.lo != null && s.hi != null ? `, 95% CI ${num(s.lo)}–${num(s.hi)}` : "";
  const failed = s.failed ? `, ${s.failed} failed` : "";
  const method = s.method ? ` (${s.method})` : "";
  const mass = s.mass != null ? `; the simulator put ${pct(s.mass)} on numbers at a slot (median)` : "";
  return `${name}${method}: ${num(s.value)}, n = ${s.n}${ci}${failed}${mass}`;
}

/** The score a badge shows: the first one the server lists that has a value (its own order), else
 * its first score, shown as absent (hover says why). */
export function headlineScore(e: NodeExplanation): [string, ExplanationScore] | null {
  const entries = Object.entries(e.scores ?? {});
  return entries.find(([, s]) => s.value != null) ?? entries[0] ?? null;
}

/** At most this many units per request (ExplanationsRequest.nodes' max_length). */
export const MAX_UNITS = 500;

/** The distinct collated units among `nodes` (a table row may be a unit at a token, or a pair),
 * the first MAX_UNITS, sorted so that re-sorting the table asks nothing new. */
export function collatedUnits(nodes: Node[], kinds: KindInfo[] | null): { kind: string; layer: number; index: number }[] {
  const seen = new Map<string, { kind: string; layer: number; index: number }>();
  for (const n of nodes) {
    const k = kindOf(kinds, n.kind);
    if (!k?.collated || n.index == null) continue;
    const layer = n.layer ?? 0;
    seen.set(unitKey(n.kind, layer, n.index), { kind: n.kind, layer, index: n.index });
  }
  return [...seen.entries()]
    .slice(0, MAX_UNITS)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, u]) => u);
}

/** The newest explanation of each of `nodes` that has one, in one request; null while unknown
 * or when none has one (or there is no dataset): the column is then hidden. */
export function useExplanations(nodes: Node[], kinds: KindInfo[] | null): Map<string, NodeExplanation> | null {
  const units = useMemo(() => collatedUnits(nodes, kinds), [nodes, kinds]);
  // without a finished dataset the server has no explanations (and refuses the request)
  const done = datasetDone(useDatasetStatus(units.length > 0).status);
  const key = done && units.length > 0 ? JSON.stringify(units) : null;
  const r = useResource(key, (signal) => post("/api/explanations/nodes", { nodes: units }, signal));
  return useMemo(() => {
    if (!r.data || r.dataKey !== key || r.data.explanations.length === 0) return null;
    return new Map(r.data.explanations.map((e) => [unitKey(e.kind, e.layer, e.index), e]));
  }, [r.data, r.dataKey, key]);
}
