/** The node kinds of the served model, as GET /api/model describes them (the server's registry,
 * src/mechscope/engine/kinds/). The one place the web app learns what a kind is: nothing else
 * names a kind, so a kind added on the server needs no edit here. */
import type { KindInfo, Node, ThroughChoice } from "../client/api";
import { useModelInfo } from "../hooks/useApi";

export type { KindInfo, ThroughChoice };

/** The served model's kinds, or null until /api/model has answered. */
export function useKinds(): KindInfo[] | null {
  return useModelInfo()?.kinds ?? null;
}

export function kindOf(kinds: KindInfo[] | null, name: string): KindInfo | null {
  return kinds?.find((k) => k.name === name) ?? null;
}

/** Whether a node's fields fit its kind: a layer iff layered, an index iff it has units (within
 * size), a key only for kinds with (query, key) pairs. */
export function checkNode(n: Node, kinds: KindInfo[]): boolean {
  const k = kindOf(kinds, n.kind);
  if (!k) return false;
  if ((n.layer != null) !== k.layered) return false;
  if ((n.index != null) !== (k.unit != null)) return false;
  if (n.index != null && k.size != null && n.index >= k.size) return false;
  return n.key == null || (k.pairs && n.key <= n.token);
}

/** The node table's filter group of a node (its kind's pair group for a (query, key) pair). */
export function nodeGroup(n: Node, kinds: KindInfo[] | null): string {
  const k = kindOf(kinds, n.kind);
  if (!k) return n.kind;
  return n.key != null && k.pair_group ? k.pair_group : k.group;
}

export interface Group {
  name: string;
  label: string;
}

/** Every filter group, in the registry's order (kinds sharing a group share its checkbox). */
export function nodeGroups(kinds: KindInfo[] | null): Group[] {
  const out: Group[] = [];
  const add = (name: string, label: string) => out.some((g) => g.name === name) || out.push({ name, label });
  for (const k of kinds ?? []) {
    add(k.group, k.group_label);
    if (k.pair_group) add(k.pair_group, k.pair_group_label ?? k.pair_group);
  }
  return out;
}

/** How a node can be traced: its kind's choices for a pair or for a unit node ([] = not at all). */
export function traceChoices(n: Node, kinds: KindInfo[] | null): ThroughChoice[] {
  const k = kindOf(kinds, n.kind);
  if (!k) return [];
  return n.key != null ? k.pair_through : k.through;
}

/** The kinds /api/debug scores when a request names none. */
export const defaultKinds = (kinds: KindInfo[]): string[] => kinds.filter((k) => k.default).map((k) => k.name);

/** A unit's short label: `L12.N866` for a neuron, `L8.H3` for a head (the initial of the kind's
 * unit noun), `<kind>.7` for a kind without layers. */
export function unitLabel(kinds: KindInfo[] | null, kind: string, layer: number, unit: number): string {
  const k = kindOf(kinds, kind);
  if (k && !k.layered) return `${kind}.${unit}`;
  const initial = k?.unit ? k.unit[0]!.toUpperCase() : null;
  return initial ? `L${layer}.${initial}${unit}` : `L${layer}.${kind}.${unit}`;
}
