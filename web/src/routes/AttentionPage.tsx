/** The Attention page ("/attention"): a head's attention pattern on a sequence (heatmap and
 * token-to-token lines, or every head of a layer as small multiples), and the head detectors'
 * layer × head grids (previous-token, duplicate-token, induction, attention sink). A grid cell opens
 * that head on the detectors' sequence. The whole view lives in the URL (Attention/attentionState.ts). */
import { useEffect, useState } from "react";
import { post, type KindInfo, type ModelInfo } from "../client/api";
import { DetectorGrid } from "../components/Attention/DetectorGrid";
import { PatternHeatmap } from "../components/Attention/PatternHeatmap";
import { PatternLines } from "../components/Attention/PatternLines";
import { SmallMultiples } from "../components/Attention/SmallMultiples";
import {
  attentionHref, cellState, decodeAttentionState, stripeMass, toAttentionRequest, toDetectRequest,
  type AttentionState, type AttentionView, type DetectSource, type Detection,
} from "../components/Attention/attentionState";
import { ErrorBox } from "../components/common/ErrorBox";
import { Link } from "../components/common/Link";
import { PromptLinks } from "../components/common/PromptLinks";
import { Spinner } from "../components/common/Spinner";
import { Tok } from "../components/common/Tok";
import { useResource } from "../hooks/useApi";
import { navigate } from "../hooks/useLocation";
import { nodePath, withPrompt } from "./nodeHref";

const EXAMPLE = "When Mary and John went to the store, John gave a drink to Mary. When Mary and John went to the store, John gave";

/** The kind whose units have an attention pattern, as GET /api/model describes it. */
export const patternKind = (kinds: KindInfo[] | undefined): KindInfo | null => kinds?.find((k) => k.pairs && k.pattern && k.layered) ?? null;

const DETECT_LABELS: Record<DetectSource, string> = {
  repeated: "repeated random tokens",
  prompt: "the prompt",
  dataset: "dataset windows",
  off: "off",
};

export function AttentionPage({ search, model }: { search: string; model: ModelInfo | null }) {
  const state = decodeAttentionState(search);
  const update = (patch: Partial<AttentionState>, mode: "push" | "replace" = "push") => navigate(attentionHref({ ...state, ...patch }), mode);
  const kind = patternKind(model?.kinds);
  const nLayers = model?.n_layers ?? 0;
  const nHeads = kind?.size ?? 0;

  const [draft, setDraft] = useState(state.prompt);
  useEffect(() => setDraft(state.prompt), [state.prompt]);
  const [lengthDraft, setLengthDraft] = useState(String(state.length));
  const [nDraft, setNDraft] = useState(String(state.n));
  useEffect(() => setLengthDraft(String(state.length)), [state.length]);
  useEffect(() => setNDraft(String(state.n)), [state.n]);
  const posInt = (v: string, fallback: number) => (/^\d+$/.test(v.trim()) && Number(v) >= 1 ? Number(v) : fallback);

  const areq = toAttentionRequest(state);
  const akey = areq ? JSON.stringify(areq) : null;
  const att = useResource<AttentionView>(akey, (signal) => post("/api/attention", areq!, signal));
  const dreq = toDetectRequest(state);
  const dkey = dreq ? JSON.stringify(dreq) : null;
  const det = useResource<Detection>(dkey, (signal) => post("/api/heads/detect", dreq!, signal));
  // the last answers stay on screen, faded, while the next ones load (not beside a refusal)
  const a = akey !== null && !att.error ? att.data : null;
  const d = dkey !== null && !det.error ? det.data : null;

  const runPrompt = () => update({ prompt: draft, src: "prompt" });
  const fillRepeated = () => update({ src: "repeated", length: posInt(lengthDraft, state.length) });
  const selected = state.head !== null ? { layer: state.layer, head: state.head } : null;
  const last = a ? a.tokens.length - 1 : 0;
  // On a repeated sequence (start token + 2 x r) an induction head attends, from each token of the
  // second half, to the token after its first occurrence: r - 1 positions back.
  const r = a ? Math.floor(a.tokens.length / 2) : 0;
  const stripe = a && state.src === "repeated" && a.heads.length === 1 && r > 1 ? stripeMass(a.patterns[0]!, r - 1, a.tokens.length - r) : null;

  return (
    <main className="attention-page" data-testid="attention-page">
      <section className="box attention-form">
        <div className="attention-row">
          <span className="seg" role="group" aria-label="sequence">
            <button type="button" className={state.src === "prompt" ? "on" : ""} aria-pressed={state.src === "prompt"} data-testid="use-prompt" onClick={() => update({ src: "prompt" })}>
              prompt
            </button>
            <button type="button" className={state.src === "repeated" ? "on" : ""} aria-pressed={state.src === "repeated"} data-testid="fill-repeated" onClick={fillRepeated}
              title="a sequence of random tokens repeated twice behind the start token: the head detectors' first sequence">
              repeated random tokens
            </button>
            {state.src === "window" && <button type="button" className="on" aria-pressed>dataset window {state.window}</button>}
          </span>
          {state.src === "repeated" && (
            <span className="attention-inline">
              <label>tokens per half <input type="number" min={1} value={lengthDraft} data-testid="repeat-length" onChange={(e) => setLengthDraft(e.target.value)} onBlur={() => update({ length: posInt(lengthDraft, state.length) }, "replace")} /></label>
              <label>seed <input type="number" min={0} value={state.seed} data-testid="repeat-seed" onChange={(e) => update({ seed: Math.max(0, Math.floor(Number(e.target.value) || 0)) }, "replace")} /></label>
              <button type="button" className="btn small" onClick={() => update({ seed: state.seed + 1 })}>another</button>
            </span>
          )}
        </div>
        {state.src === "prompt" ? (
          <div className="attention-row">
            <textarea className="attention-prompt" data-testid="attention-prompt" rows={2} value={draft} placeholder={EXAMPLE}
              onChange={(e) => setDraft(e.target.value)}
              onKeyDown={(e) => e.key === "Enter" && (e.ctrlKey || e.metaKey) && runPrompt()} />
            <button type="button" className="btn primary" data-testid="attention-run" onClick={runPrompt} disabled={!draft}>Show</button>
            {!draft && <button type="button" className="btn small" onClick={() => update({ prompt: EXAMPLE, src: "prompt" })}>example</button>}
          </div>
        ) : (
          <div className="attention-tokens" data-testid="sequence-tokens">
            {a ? a.tokens.map((t, i) => <Tok key={i} t={t} className={a.tokens.length > 2 && i > (a.tokens.length - 1) / 2 ? "second" : ""} />) : <span className="muted">…</span>}
          </div>
        )}
        <div className="attention-row">
          <label>layer{" "}
            <select value={state.layer} data-testid="layer-select" onChange={(e) => update({ layer: Number(e.target.value) }, "replace")}>
              {Array.from({ length: Math.max(nLayers, state.layer + 1) }, (_, i) => <option key={i} value={i}>{i}</option>)}
            </select>
          </label>
          <label>head{" "}
            <select value={state.head ?? "all"} data-testid="head-select" onChange={(e) => update({ head: e.target.value === "all" ? null : Number(e.target.value) }, "replace")}>
              <option value="all">all heads</option>
              {Array.from({ length: Math.max(nHeads, (state.head ?? -1) + 1) }, (_, i) => <option key={i} value={i}>{i}</option>)}
            </select>
          </label>
          {a && (
            <span className="attention-links small">
              {kind && state.head !== null && (
                <Link href={withPrompt(nodePath(kind.name, state.layer, state.head, model?.name ?? null), a.text, last)} data-testid="node-page-link">
                  node page of L{state.layer}.H{state.head}
                </Link>
              )}
              <PromptLinks prompt={a.text} pos={last} debuggerTestId="open-debugger" />
            </span>
          )}
        </div>
      </section>

      <section className="box attention-pattern" data-testid="pattern-section" data-stale={att.loading ? "true" : "false"}>
        <h2>
          {state.head !== null ? `Head L${state.layer}.H${state.head}` : `Layer ${state.layer}, every head`}
          {att.loading && <Spinner label="running" />}
        </h2>
        {att.error && <ErrorBox error={att.error} />}
        {!areq && <p className="muted">Write a prompt and press Show, fill a repeated random-token sequence, or click a head in a detector grid below.</p>}
        <div className={att.loading ? "stale" : ""}>
          {stripe !== null && (
            <p className="small" data-testid="induction-stripe" data-value={stripe.toFixed(4)}>
              induction stripe: from the second half, {(stripe * 100).toFixed(1)}% of the attention goes to the token after the first occurrence ({r - 1} back)
            </p>
          )}
          {a && a.heads.length === 1 && (
            <div className="attention-views" data-testid="pattern" data-layer={a.layer} data-head={a.heads[0]} data-length={a.tokens.length} data-text={a.text}>
              <PatternHeatmap tokens={a.tokens} pattern={a.patterns[0]!} />
              <PatternLines tokens={a.tokens} pattern={a.patterns[0]!} />
            </div>
          )}
          {a && a.heads.length > 1 && <SmallMultiples tokens={a.tokens} heads={a.heads} patterns={a.patterns} onPick={(h) => update({ head: h })} />}
        </div>
      </section>

      <section className="box attention-detectors" data-testid="detector-section" data-stale={det.loading ? "true" : "false"}>
        <h2>
          Head detectors
          {det.loading && <Spinner label="scoring every head" />}
        </h2>
        <div className="attention-row">
          <label>on{" "}
            <select value={state.det} data-testid="detect-source" onChange={(e) => update({ det: e.target.value as DetectSource })}>
              {(Object.keys(DETECT_LABELS) as DetectSource[]).map((s) => <option key={s} value={s}>{DETECT_LABELS[s]}</option>)}
            </select>
          </label>
          {(state.det === "repeated" || state.det === "dataset") && (
            <label>{state.det === "repeated" ? "sequences" : "windows"}{" "}
              <input type="number" min={1} value={nDraft} data-testid="detect-n" onChange={(e) => setNDraft(e.target.value)} onBlur={() => update({ n: posInt(nDraft, state.n) }, "replace")} />
            </label>
          )}
          {state.det === "repeated" && (
            <span className="muted small">
              of {state.length} random tokens repeated twice (seed {state.seed}; set both above with “repeated random tokens”)
            </span>
          )}
          {state.det === "prompt" && !state.prompt && <span className="muted small">write a prompt above first</span>}
        </div>
        {det.error && <ErrorBox error={det.error} />}
        {d && (
          <div className={det.loading ? "stale" : ""}>
            <p className="muted small" data-testid="detect-summary">
              {d.rows} sequence{d.rows === 1 ? "" : "s"} of {d.length} tokens · each score is the mean attention, over the query positions where the rule applies, to the keys it names · click a head to see its pattern on the first sequence
            </p>
            <div className="attention-grids">
              {d.detectors.map((x) => (
                <DetectorGrid key={x.name} name={x.name} label={x.label} description={x.description} scores={x.scores} selected={selected}
                  onPick={(layer, head) => navigate(attentionHref(cellState(state, d, layer, head)))} />
              ))}
            </div>
            <div className="small muted attention-legend">score 0 <span className="attention-ramp" /> 1 · {d.detectors.map((x) => `${x.label}: ${x.description}`).join(" · ")}</div>
          </div>
        )}
      </section>
    </main>
  );
}
