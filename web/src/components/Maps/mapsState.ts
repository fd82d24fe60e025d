/** The Maps page's state, all of it in the URL (`/maps?tab=units&color=layer&q=fox&view=x0,y0,x1,y1`),
 * and what the page derives from the data: each point's colour and whether it matches the search. */
import { formatBox, parseBox, type ViewBox } from "./scatter";

export type Tab = "prompts" | "units";
export const COLORS = { units: ["layer", "kind", "score"], prompts: ["document", "order"] } as const;
export type ColorBy = (typeof COLORS)[Tab][number];

export interface MapsState {
  tab: Tab;
  color: ColorBy;
  q: string;
  view: ViewBox | null;
}

export function decodeMapsState(search: string): MapsState {
  const p = new URLSearchParams(search);
  const tab: Tab = p.get("tab") === "prompts" ? "prompts" : "units";
  const allowed: readonly string[] = COLORS[tab];
  const c = p.get("color") ?? "";
  return { tab, color: (allowed.includes(c) ? c : allowed[0]) as ColorBy, q: p.get("q") ?? "", view: parseBox(p.get("view")) };
}

export function mapsHref(s: MapsState): string {
  const p = new URLSearchParams({ tab: s.tab, color: s.color });
  if (s.q) p.set("q", s.q);
  if (s.view) p.set("view", formatBox(s.view));
  return `/maps?${p.toString()}`;
}

/** A continuous ramp (viridis-like: dark blue -> teal -> yellow) at t in [0, 1]. */
const RAMP: [number, number, number][] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export function ramp(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
  const a = RAMP[i]!, b = RAMP[i + 1]!;
  const m = (k: number) => Math.round(a[k]! + (b[k]! - a[k]!) * f);
  return `rgb(${m(0)},${m(1)},${m(2)})`;
}

/** Categorical colours (Tableau 10). */
export const CATEGORICAL = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
export const MISSING = "#c8c8c8";
const STEPS = 24; // continuous colours are drawn in this many shades: one canvas fill per shade

export interface Palette {
  /** index into `colors` of each point */
  index: Uint16Array;
  colors: string[];
  /** what the legend shows */
  legend: { label: string; color: string }[];
}

/** Colour of each point on a continuous scale; null values get the "missing" colour. */
export function continuous(values: (number | null)[], lo: number, hi: number, loLabel: string, hiLabel: string): Palette {
  const colors = [...Array.from({ length: STEPS }, (_, i) => ramp(i / (STEPS - 1))), MISSING];
  const span = hi > lo ? hi - lo : 1;
  const index = new Uint16Array(values.length);
  let missing = false;
  values.forEach((v, i) => {
    if (v == null || !Number.isFinite(v)) {
      index[i] = STEPS;
      missing = true;
    } else index[i] = Math.round(((Math.min(hi, Math.max(lo, v)) - lo) / span) * (STEPS - 1));
  });
  const legend = [{ label: loLabel, color: colors[0]! }, { label: hiLabel, color: colors[STEPS - 1]! }];
  if (missing) legend.push({ label: "none", color: MISSING });
  return { index, colors, legend };
}

/** Colour of each point by category (`names[category]` label the legend); past ten, colours repeat. */
export function categorical(cats: ArrayLike<number>, names: string[]): Palette {
  const colors = names.map((_, i) => CATEGORICAL[i % CATEGORICAL.length]!);
  const index = Uint16Array.from(cats as ArrayLike<number>);
  return { index, colors, legend: names.slice(0, 12).map((label, i) => ({ label, color: colors[i]! })) };
}

/** Which points a search matches (case-insensitive substring of any of `texts(i)`); null: no search. */
export function matches(n: number, q: string, texts: (i: number) => (string | null | undefined)[]): Uint8Array | null {
  const needle = q.trim().toLowerCase();
  if (!needle) return null;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) if (texts(i).some((t) => t != null && t.toLowerCase().includes(needle))) out[i] = 1;
  return out;
}
