/** The Lens page ("/lens"): the logit lens as a layer x position grid. Each cell is the top token
 * read out of one stream there (the residual stream entering the layer, or the layer's attention or
 * MLP write alone, through the final norm frozen at the prompt's final scale: its direct logits)
 * with its probability; a target token recolours every cell by its own probability and rank. Hover a
 * cell for its top k; click one to colour by its top token. The view lives in the URL (lib/lensState.ts). */
import { useEffect, useMemo, useState } from "react";
import { post } from "../client/api";
import { ErrorBox } from "../components/common/ErrorBox";
import { Link } from "../components/common/Link";
import { Spinner } from "../components/common/Spinner";
import { gridMax, LensGridView, prob, type LensCell } from "../components/Lens/LensGridView";
import { useResource } from "../hooks/useApi";
import { navigate } from "../hooks/useLocation";
import { showToken } from "../lib/format";
import { decodeLensState, LENS_STREAMS, lensHref, toLensRequest, type LensGrid, type LensState, type LensStream } from "../lib/lensState";
import { debuggerHref, explorerHref } from "./PatchingPage";

const MEANING: Record<LensStream, string> = {
  resid: "the residual stream entering each layer (last row: the final one), through the final norm and the unembedding: what the model would predict if it stopped there",
  attn: "each layer's attention write alone, through the final norm with its scale frozen at the prompt's final residual, then the unembedding (its direct logits), softmaxed: the tokens this write pushes up relative to each other",
  mlp: "each layer's MLP write alone, through the final norm with its scale frozen at the prompt's final residual, then the unembedding (its direct logits), softmaxed: the tokens this write pushes up relative to each other",
};

export function LensPage({ search }: { search: string }) {
  const state = useMemo(() => decodeLensState(search), [search]);
  const update = (p: Partial<LensState>, mode: "push" | "replace" = "push") => navigate(lensHref({ ...state, ...p }), mode);
  const [prompt, setPrompt] = useState(state.prompt);
  const [target, setTarget] = useState(state.target);
  useEffect(() => setPrompt(state.prompt), [state.prompt]);
  useEffect(() => setTarget(state.target), [state.target]);
  const req = toLensRequest(state);
  const reqKey = req ? JSON.stringify(req) : null;
  const [nonce, setNonce] = useState(0);
  const res = useResource<LensGrid>(reqKey && `${reqKey}#${nonce}`, (signal) => post("/api/lens/grid", req!, signal));
  const grid = res.data;
  const stale = res.loading || (res.dataKey !== null && res.dataKey !== `${reqKey}#${nonce}`);
  const [hover, setHover] = useState<LensCell | null>(null);
  const cell = grid && hover ? grid.top[hover.layer]?.[hover.pos] : null;

  return (
    <main className="page lens-page" data-testid="lens-page">
      <div className="page-head">
        <h2>Lens</h2>
        <span className="muted">the top next token read out of every layer at every position</span>
      </div>
      <form
        className="lens-form"
        onSubmit={(e) => {
          e.preventDefault();
          update({ prompt, target: target.trim() === "" ? "" : target });
        }}
      >
        <textarea className="lens-prompt" rows={2} value={prompt} onChange={(e) => setPrompt(e.target.value)} data-testid="lens-prompt" placeholder="a prompt" spellCheck={false} />
        <div className="lens-row">
          <label>
            stream{" "}
            <select value={state.stream} onChange={(e) => update({ stream: e.target.value as LensStream })} data-testid="lens-stream">
              {LENS_STREAMS.map((s) => (
                <option key={s.stream} value={s.stream}>
                  {s.label}
                </option>
              ))}
            </select>
          </label>
          <label>
            top k <input type="number" min={1} max={20} value={state.k} onChange={(e) => update({ k: Number(e.target.value) || 1 }, "replace")} data-testid="lens-k" />
          </label>
          <label title="one token as text (e.g. ' Paris', with its space) or #id; cells are coloured by its probability and show its rank">
            target token <input value={target} onChange={(e) => setTarget(e.target.value)} data-testid="lens-target" size={10} placeholder="(none)" />
          </label>
          <button type="submit" className="btn primary" data-testid="lens-run" disabled={!prompt}>
            Read out
          </button>
          {state.target && (
            <button type="button" className="btn small" onClick={() => update({ target: "" })} data-testid="lens-clear-target">
              clear target
            </button>
          )}
          {state.prompt && (
            <span className="lens-links">
              <Link href={debuggerHref(state.prompt)} data-testid="lens-open-debugger">open in Debugger</Link>
              <Link href={explorerHref(state.prompt, Math.max(0, (grid?.tokens.length ?? 1) - 1))} data-testid="lens-open-explorer">open in prompt explorer</Link>
            </span>
          )}
        </div>
      </form>
      <div className="muted lens-meaning" data-testid="lens-meaning">{MEANING[state.stream]}</div>
      {res.error && <ErrorBox error={res.error} onRetry={() => setNonce((n) => n + 1)} />}
      {res.loading && <Spinner label="reading out every layer" />}
      {grid && (
        <section className={"lens-results" + (stale ? " stale" : "")} data-testid="lens-results" data-stream={grid.stream} data-stale={String(stale)} data-target={grid.target ? String(grid.target.id) : ""}>
          <div className="lens-hover" data-testid="lens-hover">
            {cell && hover ? (
              <>
                <strong>{grid.layers[hover.layer]}</strong> · position {hover.pos} {JSON.stringify(grid.tokens[hover.pos])}:{" "}
                {cell.map((t, i) => (
                  <span key={i} className="lens-hover-tok">
                    {showToken(t.token)} <span className="muted">{prob(t.value)}</span>
                  </span>
                ))}
                {grid.target && (
                  <span className="lens-hover-target">
                    {" "}
                    · target {showToken(grid.target.token)}: {prob(grid.target.probs[hover.layer]?.[hover.pos] ?? 0)}, rank {grid.target.ranks[hover.layer]?.[hover.pos]}
                  </span>
                )}
              </>
            ) : (
              <span className="muted">hover a cell for its top {state.k}; click one to colour every cell by its top token</span>
            )}
          </div>
          <div className="muted lens-key" data-testid="lens-key">
            {grid.target
              ? `each cell: its top token; below, the target ${JSON.stringify(grid.target.token)}'s rank (#0 = top) and probability, which sets the colour`
              : "each cell: its top token and probability, which sets the colour"}
            ; white = 0, darkest blue = {prob(gridMax(grid))}, the grid&apos;s largest
          </div>
          <LensGridView grid={grid} hover={hover} onHover={setHover} onPick={(t) => update({ target: t })} />
        </section>
      )}
    </main>
  );
}
