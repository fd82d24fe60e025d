/** The whole Debugger view lives in the URL: encode/decode it, and derive the API request from it. */
import type { DebugRequest, Intervention, Node, Through } from "../client/api";
import { decodeDirection, directionRequest, encodeDirection, LOGIT_DIFF, type DirectionState } from "./debugDirection";
import { ablatedNode, ablation, formatNode, parseNode } from "./nodes";

export type SortColumn =
  | "label" | "token" | "activation" | "write_norm" | "direct_effect" | "total_effect" | "left" | "diff" | "right";
export const SORT_COLUMNS: SortColumn[] = [
  "label", "token", "activation", "write_norm", "direct_effect", "total_effect", "left", "diff", "right",
];
export type HeatMode = "direct" | "total";
// Names are checked by shape only: which kinds, groups and trace choices exist is the server's
// registry's to say (GET /api/model), and a request naming an unknown one gets a 422 naming it.
const NAME = /^[a-z][a-z0-9_]*$/;
const names = (v: string | null): string[] => (v ?? "").split(",").filter((x) => NAME.test(x));

export interface DebugState {
  prompt: string;
  prompt2: string | null;
  targets: string[];
  distractors: string[];
  position: number;
  /** every intervention, in order; single-node zero-ablations travel as `ablate=`, the rest as `iv=` */
  interventions: Intervention[];
  trace: Node | null;
  through: Through | null;
  /** node kinds to score; null = the server's default kinds */
  kinds: string[] | null;
  k: number;
  sort: SortColumn;
  desc: boolean;
  /** node-table filter groups shown; null = all */
  groups: string[] | null;
  filter: string;
  heat: HeatMode;
  /** what is explained when not tracing: the logit difference (default), a log-prob, a probe */
  direction: DirectionState;
  /** the verify panel: null = closed, else the top nodes it ablates */
  verify: number | null;
  /** new tokens of the side-by-side generation shown while interventions are active */
  genTokens: number;
}

export const DEFAULT_VERIFY = 20;
export const DEFAULT_GEN_TOKENS = 20;

export const DEFAULT_STATE: DebugState = {
  prompt: "",
  prompt2: null,
  targets: [],
  distractors: [],
  position: -1,
  interventions: [],
  trace: null,
  through: null,
  kinds: null,
  k: 10,
  sort: "total_effect",
  desc: true,
  groups: null,
  filter: "",
  heat: "total",
  direction: LOGIT_DIFF,
  verify: null,
  genTokens: DEFAULT_GEN_TOKENS,
};

export function encodeState(s: DebugState): string {
  const p = new URLSearchParams();
  if (s.prompt) p.set("prompt", s.prompt);
  if (s.prompt2 !== null) p.set("prompt2", s.prompt2);
  for (const t of s.targets) p.append("target", t);
  for (const d of s.distractors) p.append("distractor", d);
  if (s.position !== -1) p.set("position", String(s.position));
  const other: Intervention[] = [];
  for (const iv of s.interventions) {
    const node = ablatedNode(iv);
    // Only an ablation that round-trips exactly travels as a node string; order is kept by
    // appending the other ones to `iv` (ablations first on reload, which does not change the result).
    if (node && JSON.stringify(ablation(node)) === JSON.stringify(iv)) p.append("ablate", formatNode(node));
    else other.push(iv);
  }
  if (other.length) p.set("iv", JSON.stringify(other));
  if (s.trace) p.set("trace", formatNode(s.trace));
  if (s.trace && s.through) p.set("through", s.through);
  if (s.kinds !== null) p.set("kinds", s.kinds.join(","));
  if (s.k !== DEFAULT_STATE.k) p.set("k", String(s.k));
  if (s.sort !== DEFAULT_STATE.sort || s.desc !== DEFAULT_STATE.desc) p.set("sort", `${s.desc ? "-" : ""}${s.sort}`);
  if (s.groups !== null) p.set("show", s.groups.join(","));
  if (s.filter) p.set("filter", s.filter);
  if (s.heat !== DEFAULT_STATE.heat) p.set("heat", s.heat);
  encodeDirection(p, s.direction);
  if (s.verify !== null) p.set("verify", String(s.verify));
  if (s.genTokens !== DEFAULT_GEN_TOKENS) p.set("gen", String(s.genTokens));
  return p.toString();
}

function int(v: string | null, fallback: number): number {
  if (v === null || v.trim() === "" || !/^-?\d+$/.test(v.trim())) return fallback;
  return Number(v);
}

export function decodeState(search: string): DebugState {
  const p = new URLSearchParams(search);
  const s: DebugState = { ...DEFAULT_STATE };
  s.prompt = p.get("prompt") ?? "";
  s.prompt2 = p.get("prompt2");
  s.targets = p.getAll("target");
  s.distractors = p.getAll("distractor");
  s.position = int(p.get("position"), -1);
  const ivs: Intervention[] = [];
  for (const a of p.getAll("ablate")) {
    const n = parseNode(a);
    if (n) ivs.push(ablation(n));
  }
  const iv = p.get("iv");
  if (iv) {
    try {
      const parsed: unknown = JSON.parse(iv);
      if (Array.isArray(parsed)) ivs.push(...(parsed as Intervention[]));
    } catch {
      /* a hand-edited, broken `iv` is dropped rather than breaking the page */
    }
  }
  s.interventions = ivs;
  s.trace = parseNode(p.get("trace") ?? "");
  const through = p.get("through");
  s.through = s.trace && through && NAME.test(through) ? through : null;
  const kinds = names(p.get("kinds"));
  if (kinds.length) s.kinds = kinds;
  s.k = Math.max(1, int(p.get("k"), DEFAULT_STATE.k));
  const sort = p.get("sort");
  if (sort) {
    const desc = sort.startsWith("-");
    const col = (desc ? sort.slice(1) : sort) as SortColumn;
    if (SORT_COLUMNS.includes(col)) {
      s.sort = col;
      s.desc = desc;
    }
  }
  const show = p.get("show");
  if (show !== null) s.groups = names(show);
  s.filter = p.get("filter") ?? "";
  s.heat = p.get("heat") === "direct" ? "direct" : "total";
  s.direction = decodeDirection(p);
  const verify = int(p.get("verify"), 0);
  s.verify = p.has("verify") ? (verify >= 1 ? verify : DEFAULT_VERIFY) : null;
  s.genTokens = Math.max(1, int(p.get("gen"), DEFAULT_GEN_TOKENS));
  return s;
}

/** Whether the state names a complete request (the page sends it on load). */
export const isRunnable = (s: DebugState): boolean =>
  s.prompt.length > 0 && (s.trace !== null || s.direction.kind !== "logit_diff" || s.targets.length > 0);

/** The /api/debug body for a state. While tracing (or explaining another direction), targets and
 * distractors stay in the URL but are not sent; a trace wins over a direction. */
export function toRequest(s: DebugState): DebugRequest {
  const req: DebugRequest = { prompt: s.prompt, k: s.k };
  if (s.prompt2 !== null) req.prompt2 = s.prompt2;
  if (s.trace) {
    req.trace = s.through ? { node: s.trace, through: s.through } : { node: s.trace };
  } else if (s.direction.kind !== "logit_diff") {
    req.direction = directionRequest(s.direction);
  } else {
    req.targets = s.targets;
    if (s.distractors.length) req.distractors = s.distractors;
  }
  if (s.position !== -1) req.position = s.position;
  if (s.interventions.length) req.interventions = s.interventions;
  if (s.kinds !== null) req.kinds = s.kinds;
  return req;
}

/** Pane names: which run is which. */
export function rightPaneName(s: Pick<DebugState, "prompt2" | "interventions">): string {
  const n = s.interventions.length;
  const ivs = n ? `with ${n} intervention${n === 1 ? "" : "s"}` : "";
  if (s.prompt2 !== null) return ivs ? `prompt 2, ${ivs}` : "prompt 2";
  return ivs;
}
