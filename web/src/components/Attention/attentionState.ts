/** The whole Attention page view lives in the URL: the sequence whose pattern is shown (a prompt, a
 * repeated random-token sequence or a dataset window), the layer and head, and the head detectors'
 * source. Encode/decode it and derive the two API requests from it. */
import type { Schemas } from "../../client/api";

export type AttentionRequest = Schemas["AttentionRequest"];
export type AttentionView = Schemas["AttentionView"];
export type DetectRequest = Schemas["DetectRequest"];
export type Detection = Schemas["Detection"];

export type PatternSource = "prompt" | "repeated" | "window";
export type DetectSource = "repeated" | "prompt" | "dataset" | "off";
const PATTERN_SOURCES: PatternSource[] = ["prompt", "repeated", "window"];
const DETECT_SOURCES: DetectSource[] = ["repeated", "prompt", "dataset", "off"];

export interface AttentionState {
  /** whose pattern is shown */
  src: PatternSource;
  prompt: string;
  /** random tokens in each half of a repeated sequence (pattern and detectors) */
  length: number;
  seed: number;
  window: number | null;
  layer: number;
  /** null: every head of the layer, as small multiples */
  head: number | null;
  /** the head detectors' sequences ("off": not run) */
  det: DetectSource;
  /** repeated sequences or dataset windows the detectors average over */
  n: number;
}

export const DEFAULT_ATTENTION_STATE: AttentionState = {
  src: "prompt",
  prompt: "",
  length: 25,
  seed: 0,
  window: null,
  layer: 0,
  head: null,
  det: "repeated",
  n: 8,
};

function int(v: string | null, fallback: number, min: number): number {
  if (v === null || !/^\d+$/.test(v.trim())) return fallback;
  const x = Number(v);
  return x >= min ? x : fallback;
}

function optInt(v: string | null): number | null {
  return v !== null && /^\d+$/.test(v.trim()) ? Number(v) : null;
}

export function decodeAttentionState(search: string): AttentionState {
  const p = new URLSearchParams(search);
  const d = DEFAULT_ATTENTION_STATE;
  const src = p.get("src") as PatternSource | null;
  const det = p.get("det") as DetectSource | null;
  const s: AttentionState = {
    src: src && PATTERN_SOURCES.includes(src) ? src : d.src,
    prompt: p.get("prompt") ?? "",
    length: int(p.get("r"), d.length, 1),
    seed: int(p.get("seed"), d.seed, 0),
    window: optInt(p.get("window")),
    layer: int(p.get("layer"), d.layer, 0),
    head: optInt(p.get("head")),
    det: det && DETECT_SOURCES.includes(det) ? det : d.det,
    n: int(p.get("n"), d.n, 1),
  };
  if (s.src === "window" && s.window === null) s.src = "prompt"; // a window source names its window
  return s;
}

export function encodeAttentionState(s: AttentionState): string {
  const d = DEFAULT_ATTENTION_STATE;
  const p = new URLSearchParams();
  if (s.src !== d.src) p.set("src", s.src);
  if (s.prompt) p.set("prompt", s.prompt);
  if (s.length !== d.length) p.set("r", String(s.length));
  if (s.seed !== d.seed) p.set("seed", String(s.seed));
  if (s.window !== null) p.set("window", String(s.window));
  p.set("layer", String(s.layer));
  if (s.head !== null) p.set("head", String(s.head));
  if (s.det !== d.det) p.set("det", s.det);
  if (s.n !== d.n) p.set("n", String(s.n));
  return p.toString();
}

export const attentionHref = (s: AttentionState): string => `/attention?${encodeAttentionState(s)}`;

/** The /api/attention body, or null while there is nothing to show (no prompt yet). */
export function toAttentionRequest(s: AttentionState): AttentionRequest | null {
  const where = { layer: s.layer, ...(s.head !== null ? { head: s.head } : {}) };
  if (s.src === "repeated") return { repeated: { length: s.length, seed: s.seed }, ...where };
  if (s.src === "window" && s.window !== null) return { window_id: s.window, ...where };
  return s.prompt ? { prompt: s.prompt, ...where } : null;
}

/** The /api/heads/detect body, or null when the detectors are off (or have no prompt to run on). */
export function toDetectRequest(s: AttentionState): DetectRequest | null {
  if (s.det === "off") return null;
  if (s.det === "prompt") return s.prompt ? { source: "prompt", prompt: s.prompt } : null;
  if (s.det === "dataset") return { source: "dataset", n: s.n };
  return { source: "repeated", length: s.length, n: s.n, seed: s.seed };
}

/** A detector grid's cell: that head's pattern on the detectors' (first) sequence. */
export function cellState(s: AttentionState, det: Pick<Detection, "window_id">, layer: number, head: number): AttentionState {
  const src: PatternSource = s.det === "dataset" && det.window_id != null ? "window" : s.det === "prompt" ? "prompt" : "repeated";
  return { ...s, layer, head, src, window: src === "window" ? det.window_id! : s.window };
}

/** Where in a pattern an induction head looks: the key `offset` back from each query of the second
 * half of a repeated sequence (start token + 2 x r tokens: offset r - 1), and the mean attention
 * there. Null when the sequence has no second half. */
export function stripeMass(pattern: number[][], offset: number, from: number): number | null {
  let sum = 0;
  let n = 0;
  for (let q = from; q < pattern.length; q++) {
    const k = q - offset;
    if (k < 0) continue;
    sum += pattern[q]![k] ?? 0;
    n++;
  }
  return n ? sum / n : null;
}

/** The best head of a detector grid (rows = layers, columns = heads). */
export function bestHead(scores: number[][]): { layer: number; head: number; score: number } | null {
  let best: { layer: number; head: number; score: number } | null = null;
  scores.forEach((row, layer) =>
    row.forEach((score, head) => {
      if (best === null || score > best.score) best = { layer, head, score };
    }),
  );
  return best;
}
