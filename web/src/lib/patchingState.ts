/** The whole Patching page view lives in the URL: the prompt pair, its answers, the site, and the
 * pair builder's settings. `patchingHref` and `decodePatchingState` round-trip it. */
import type { Schemas } from "../client/api";

export type CompareRequest = Schemas["CompareRequest"];
export type CompareResponse = Schemas["CompareResponse"];
export type PairRequest = Schemas["PairRequest"];
export type PromptPair = Schemas["PromptPair"];
export type PatchSite = CompareRequest["site"] & string;

export const PATCH_SITES: { site: PatchSite; label: string }[] = [
  { site: "resid_pre", label: "residual stream (layer × position)" },
  { site: "attn_out", label: "attention output (layer × position)" },
  { site: "mlp_out", label: "MLP output (layer × position)" },
  { site: "heads", label: "heads (layer × head)" },
  { site: "heads_by_pos", label: "heads by position (layer.head × position)" },
];

export type PairKind = "ioi" | "repeat";
export type Corruption = "swap" | "abc";

export interface PatchingState {
  clean: string;
  corrupted: string;
  targets: string[];
  distractors: string[];
  site: PatchSite;
  /** the pair builder's settings */
  pair: PairKind;
  io: string;
  subject: string;
  template: string;
  corruption: Corruption;
  others: [string, string];
  length: number;
  seed: number;
}

export const DEFAULT_TEMPLATE = "When {A} and {B} went to the store, {S} gave a drink to";

export const DEFAULT_PATCHING_STATE: PatchingState = {
  clean: "",
  corrupted: "",
  targets: [],
  distractors: [],
  site: "resid_pre",
  pair: "ioi",
  io: "Mary",
  subject: "John",
  template: DEFAULT_TEMPLATE,
  corruption: "swap",
  others: ["Alice", "Bob"],
  length: 10,
  seed: 0,
};

const SITES = new Set<string>(PATCH_SITES.map((s) => s.site));

export function encodePatchingState(s: PatchingState): string {
  const d = DEFAULT_PATCHING_STATE;
  const p = new URLSearchParams();
  if (s.clean) p.set("clean", s.clean);
  if (s.corrupted) p.set("corrupted", s.corrupted);
  for (const t of s.targets) p.append("target", t);
  for (const t of s.distractors) p.append("distractor", t);
  if (s.site !== d.site) p.set("site", s.site);
  if (s.pair !== d.pair) p.set("pair", s.pair);
  if (s.io !== d.io) p.set("io", s.io);
  if (s.subject !== d.subject) p.set("subject", s.subject);
  if (s.template !== d.template) p.set("template", s.template);
  if (s.corruption !== d.corruption) p.set("corruption", s.corruption);
  if (s.others.join(",") !== d.others.join(",")) p.set("others", s.others.join(","));
  if (s.length !== d.length) p.set("length", String(s.length));
  if (s.seed !== d.seed) p.set("seed", String(s.seed));
  return p.toString();
}

const int = (v: string | null, fallback: number, min: number): number => {
  const n = v === null ? NaN : Number(v);
  return Number.isInteger(n) && n >= min ? n : fallback;
};

/** The state a query string describes; unknown or malformed values fall back to the defaults. */
export function decodePatchingState(search: string): PatchingState {
  const q = new URLSearchParams(search);
  const d = DEFAULT_PATCHING_STATE;
  const site = q.get("site");
  const pair = q.get("pair");
  const corruption = q.get("corruption");
  const others = (q.get("others") ?? "").split(",");
  return {
    clean: q.get("clean") ?? "",
    corrupted: q.get("corrupted") ?? "",
    targets: q.getAll("target"),
    distractors: q.getAll("distractor"),
    site: site !== null && SITES.has(site) ? (site as PatchSite) : d.site,
    pair: pair === "repeat" || pair === "ioi" ? pair : d.pair,
    io: q.get("io") || d.io,
    subject: q.get("subject") || d.subject,
    template: q.get("template") || d.template,
    corruption: corruption === "abc" || corruption === "swap" ? corruption : d.corruption,
    others: others.length === 2 && others[0] && others[1] ? [others[0], others[1]] : d.others,
    length: int(q.get("length"), d.length, 2),
    seed: int(q.get("seed"), d.seed, 0),
  };
}

export const patchingHref = (s: PatchingState): string => {
  const q = encodePatchingState(s);
  return "/patching" + (q ? "?" + q : "");
};

/** The compare request the state asks for, or null while the pair or its answer is missing. */
export function toCompareRequest(s: PatchingState): CompareRequest | null {
  if (!s.clean || !s.corrupted || s.targets.length === 0) return null;
  return { clean: s.clean, corrupted: s.corrupted, targets: s.targets, distractors: s.distractors, site: s.site };
}

export function toPairRequest(s: PatchingState): PairRequest {
  if (s.pair === "repeat") return { kind: "repeat", length: s.length, seed: s.seed };
  return { kind: "ioi", io: s.io, subject: s.subject, template: s.template, corruption: s.corruption, others: s.others };
}

/** What a heatmap cell is, from its row and column: a layer and maybe a head and a position. */
export interface CellRef {
  layer: number;
  head: number | null;
  pos: number | null;
}

export function cellRef(site: PatchSite, row: number, col: number, nHeads: number): CellRef {
  if (site === "heads") return { layer: row, head: col, pos: null };
  if (site === "heads_by_pos") return { layer: Math.floor(row / nHeads), head: row % nHeads, pos: col };
  return { layer: row, head: null, pos: col };
}
