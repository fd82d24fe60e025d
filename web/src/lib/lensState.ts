/** The whole Lens page view lives in the URL: the prompt, the stream, k and the target token. */
import type { Schemas } from "../client/api";

export type LensGridRequest = Schemas["LensGridRequest"];
export type LensGrid = Schemas["LensGrid"];
export type LensStream = NonNullable<LensGridRequest["stream"]>;

export const LENS_STREAMS: { stream: LensStream; label: string }[] = [
  { stream: "resid", label: "residual stream" },
  { stream: "attn", label: "attention writes (direct)" },
  { stream: "mlp", label: "MLP writes (direct)" },
];

export interface LensState {
  prompt: string;
  stream: LensStream;
  k: number;
  /** a token whose probability colours the cells: text of one token, or `#id`; "" = none */
  target: string;
}

export const DEFAULT_LENS_STATE: LensState = { prompt: "", stream: "resid", k: 5, target: "" };
const MAX_K = 20;

export function encodeLensState(s: LensState): string {
  const p = new URLSearchParams();
  if (s.prompt) p.set("prompt", s.prompt);
  if (s.stream !== DEFAULT_LENS_STATE.stream) p.set("stream", s.stream);
  if (s.k !== DEFAULT_LENS_STATE.k) p.set("k", String(s.k));
  if (s.target) p.set("target", s.target);
  return p.toString();
}

export function decodeLensState(search: string): LensState {
  const q = new URLSearchParams(search);
  const stream = q.get("stream");
  const k = Number(q.get("k"));
  return {
    prompt: q.get("prompt") ?? "",
    stream: LENS_STREAMS.some((s) => s.stream === stream) ? (stream as LensStream) : DEFAULT_LENS_STATE.stream,
    k: Number.isInteger(k) && k >= 1 && k <= MAX_K ? k : DEFAULT_LENS_STATE.k,
    target: q.get("target") ?? "",
  };
}

export const lensHref = (s: LensState): string => {
  const q = encodeLensState(s);
  return "/lens" + (q ? "?" + q : "");
};

/** The request for the state, or null without a prompt. A target `#123` is a token id. */
export function toLensRequest(s: LensState): LensGridRequest | null {
  if (!s.prompt) return null;
  const id = /^#(\d+)$/.exec(s.target.trim());
  const target = id ? Number(id[1]) : s.target || null;
  return { prompt: s.prompt, stream: s.stream, k: s.k, target };
}
