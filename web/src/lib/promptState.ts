/** The prompt explorer's view in the URL: `/prompt?prompt=&pos=&kind=&unit=<layer>.<index>&q=&scale=shared`. */

export interface PickedUnit {
  /** null for a kind without layers (written `-.<index>`) */
  layer: number | null;
  index: number;
}

export interface PromptState {
  prompt: string;
  /** the token under the slider; null: the last token */
  pos: number | null;
  /** the kind laid out in the grid; null: the served model's first layered kind with units */
  kind: string | null;
  unit: PickedUnit | null;
  /** the corpus search of the left pane */
  q: string;
  /** colour every layer on one scale (the largest |activation| at the position) instead of its own */
  shared: boolean;
}

export const EMPTY_PROMPT_STATE: PromptState = { prompt: "", pos: null, kind: null, unit: null, q: "", shared: false };

const NAME = /^[a-z][a-z0-9_]*$/;
const NAT = /^\d{1,9}$/;

/** `3.17` or `-.17`; null for anything else. */
export function parseUnit(v: string | null): PickedUnit | null {
  const m = /^(-|\d{1,9})\.(\d{1,9})$/.exec(v ?? "");
  if (!m) return null;
  return { layer: m[1] === "-" ? null : Number(m[1]), index: Number(m[2]) };
}

export const formatUnit = (u: PickedUnit): string => `${u.layer ?? "-"}.${u.index}`;

/** The state a query string names; malformed parts are dropped (a shared link never breaks the page). */
export function parsePromptState(search: string): PromptState {
  const q = new URLSearchParams(search);
  const pos = q.get("pos");
  const kind = q.get("kind");
  return {
    prompt: q.get("prompt") ?? "",
    pos: pos !== null && NAT.test(pos) ? Number(pos) : null,
    kind: kind !== null && NAME.test(kind) ? kind : null,
    unit: parseUnit(q.get("unit")),
    q: q.get("q") ?? "",
    shared: q.get("scale") === "shared",
  };
}

/** The page's URL for a state (empty and default parts left out). */
export function promptHref(s: PromptState): string {
  const p = new URLSearchParams();
  if (s.prompt) p.set("prompt", s.prompt);
  if (s.pos !== null) p.set("pos", String(s.pos));
  if (s.kind) p.set("kind", s.kind);
  if (s.unit) p.set("unit", formatUnit(s.unit));
  if (s.q) p.set("q", s.q);
  if (s.shared) p.set("scale", "shared");
  const qs = p.toString();
  return qs ? `/prompt?${qs}` : "/prompt";
}

/** The position shown: the URL's, clamped to the prompt's tokens; the last token by default. */
export function currentPos(pos: number | null, nTokens: number): number {
  if (nTokens <= 0) return 0;
  return pos === null ? nTokens - 1 : Math.max(0, Math.min(nTokens - 1, pos));
}

/** What the grid can show: the kinds with units (a size per layer), in the registry's order. */
export function gridKinds<K extends { size?: number | null; layered: boolean; name: string }>(kinds: K[]): K[] {
  return kinds.filter((k) => k.size != null && k.size > 0);
}

/** The kind shown when the URL names none: the first layered kind with units (MLP neurons on every
 * built-in model), else the first kind with units. */
export function defaultGridKind<K extends { size?: number | null; layered: boolean; name: string }>(kinds: K[]): string | null {
  const have = gridKinds(kinds);
  return (have.find((k) => k.layered) ?? have[0])?.name ?? null;
}
