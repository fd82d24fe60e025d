/** A unit's explanation on its node page: the newest one with every score (value, n, 95% CI), a
 * button for the baseline explanation, and "score my explanation", simulated by the served model. */
import { useState } from "react";
import { ApiError, post } from "../../client/api";
import { useResource } from "../../hooks/useApi";
import { ErrorBox } from "../common/ErrorBox";
import { Spinner } from "../common/Spinner";
import { scoreTitle, type NodeExplanation, type ScoreResult } from "./explanations";
import { ScoreBadge } from "./ScoreBadge";
import { SimulationView } from "./SimulationView";

interface Props {
  kind: string;
  layer: number;
  index: number;
}

export function ExplanationSection({ kind, layer, index }: Props) {
  const node = { kind, layer, index };
  const [gen, setGen] = useState(0);
  const r = useResource<NodeExplanation | null>(JSON.stringify({ ...node, gen }), (signal) =>
    post("/api/explanations/node", node, signal),
  );
  const [explaining, setExplaining] = useState(false);
  const [explainError, setExplainError] = useState<ApiError | null>(null);
  const explain = () => {
    setExplaining(true);
    setExplainError(null);
    post("/api/explanations/explain", node)
      .then(() => setGen((g) => g + 1))
      .catch((e: unknown) => setExplainError(e instanceof ApiError ? e : new ApiError(0, String(e))))
      .finally(() => setExplaining(false));
  };
  const e = r.data;
  return (
    <section className="box explanation" data-testid="explanation-section">
      <div className="box-head">
        <h3>Explanation</h3>
        {(r.loading || explaining) && <Spinner label={explaining ? "explaining" : "loading the explanation"} />}
        <button type="button" className="btn small" onClick={explain} disabled={explaining} data-testid="explain-button"
          title="the baseline explanation: the tokens the top examples peak on, what precedes them, what the node promotes (no LLM)">
          Explain (baseline)
        </button>
      </div>
      {r.error && <ErrorBox error={r.error} />}
      {explainError && <ErrorBox error={explainError} />}
      {e ? <CurrentExplanation e={e} /> : !r.loading && !r.error && <p className="muted" data-testid="no-explanation">No explanation yet.</p>}
      <ScoreMine node={node} initial={e?.explanation ?? ""} />
    </section>
  );
}

/** The explanation's text, who wrote it, and every score (value, n, 95% CI); also the Graph page's latent panel. */
export function CurrentExplanation({ e }: { e: NodeExplanation }) {
  return (
    <div data-testid="current-explanation">
      <p className="explanation-main">
        {e.explanation ?? <span className="muted">failed: {e.failure}</span>}
      </p>
      <div className="muted small">
        by {e.explainer === "baseline" ? "the baseline (no LLM)" : `${e.backend} · ${e.model}`} · {e.prompt_version}
        {e.scorer ? ` · scored by ${e.scorer} · ${e.scorer_model}` : ""} · {e.created.slice(0, 16).replace("T", " ")}
      </div>
      <table className="grid scores" data-testid="scores">
        <thead>
          <tr><th>score</th><th className="num">value</th><th className="num">n</th><th className="num">95% CI</th><th>note</th></tr>
        </thead>
        <tbody>
          {Object.entries(e.scores ?? {}).map(([name, s]) => (
            <tr key={name} data-score={name} title={scoreTitle(name, s)}>
              <td>{name}{s.method ? <span className="muted small"> ({s.method})</span> : null}</td>
              <td className="num"><ScoreBadge name={name} score={s} /></td>
              <td className="num">{s.n}</td>
              <td className="num">{s.lo != null && s.hi != null ? `${s.lo.toFixed(2)} – ${s.hi.toFixed(2)}` : "–"}</td>
              <td className="muted small">{s.failure ?? (s.failed ? `${s.failed} records failed` : "")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {(e.notes ?? []).length > 0 && <p className="muted small">{(e.notes ?? []).join("; ")}</p>}
    </div>
  );
}

const MAX_EXPLANATION = 500; // ScoreExplanationRequest.explanation's max_length

function ScoreMine({ node, initial }: { node: { kind: string; layer: number; index: number }; initial: string }) {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ScoreResult | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = () => {
    const explanation = text.trim() || initial;
    if (!explanation) return;
    setBusy(true);
    setError(null);
    post("/api/explanations/score", { ...node, explanation })
      .then(setResult)
      .catch((e: unknown) => setError(e instanceof ApiError ? e : new ApiError(0, String(e))))
      .finally(() => setBusy(false));
  };
  return (
    <form className="score-mine" data-testid="score-mine" onSubmit={(ev) => { ev.preventDefault(); submit(); }}>
      <label htmlFor="score-mine-input" className="field-label">Score my explanation</label>
      <div className="explore-input-row">
        <input id="score-mine-input" type="text" value={text} maxLength={MAX_EXPLANATION} onChange={(ev) => setText(ev.target.value)}
          placeholder={initial || "what makes this node fire, e.g. numbers after a month name"} data-testid="score-mine-input" />
        <button type="submit" className="btn primary" disabled={busy || !(text.trim() || initial)} data-testid="score-mine-submit">
          Simulate
        </button>
        {busy && <Spinner label="simulating" />}
      </div>
      <div className="muted small">
        The served model reads the explanation and predicts the node's activation on each token of its held-out records;
        the score is the correlation with the real activations.
      </div>
      {error && <ErrorBox error={error} />}
      {result && <SimulationView result={result} />}
    </form>
  );
}
