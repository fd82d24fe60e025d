/** The prompt explorer (/prompt?prompt=&pos=&kind=&unit=&q=): pick a prompt (typed or a corpus
 * window), move a slider along its tokens and see every layer's units light up with the logit lens
 * beside each layer; pick a unit to see where else it fires. One request per prompt and kind:
 * the slider reads the answer it already has. */
import { useMemo } from "react";
import { post, type ModelInfo } from "../client/api";
import { ErrorBox } from "../components/common/ErrorBox";
import { Link } from "../components/common/Link";
import { Spinner } from "../components/common/Spinner";
import { PromptSidebar } from "../components/Prompt/PromptSidebar";
import { UnitGridView } from "../components/Prompt/UnitGridView";
import { UnitPanel } from "../components/Prompt/UnitPanel";
import { useResource } from "../hooks/useApi";
import { useDatasetStatus } from "../hooks/useDatasetStatus";
import { navigate } from "../hooks/useLocation";
import { useShortcuts } from "../hooks/useShortcuts";
import { currentPos, defaultGridKind, gridKinds, parsePromptState, promptHref, type PromptState } from "../lib/promptState";
import { decodeGrid, type DecodedGrid } from "../lib/unitGrid";

/** logit-lens tokens asked per layer and position */
export const LENS_K = 3;
const EXAMPLES = ["The capital of France is Paris, and the capital of Italy is", "def add(a, b):\n    return a + b", "When Mary and John went to the store, John gave a drink to"];

export function PromptPage({ search, model }: { search: string; model: ModelInfo | null }) {
  const st = parsePromptState(search);
  const kinds = model?.kinds ?? null;
  const choices = useMemo(() => gridKinds(kinds ?? []), [kinds]);
  const kind = st.kind ?? defaultGridKind(kinds ?? []);
  const dataset = useDatasetStatus();

  const key = st.prompt && kind && model ? JSON.stringify([st.prompt, kind]) : null;
  const r = useResource(key, (signal) => post("/api/prompt/grid", { prompt: st.prompt, kind: kind!, k: LENS_K }, signal));
  const decoded = useMemo((): { grid: DecodedGrid | null; error: string | null } => {
    if (!r.data) return { grid: null, error: null };
    try {
      return { grid: decodeGrid(r.data), error: null };
    } catch (e) {
      return { grid: null, error: e instanceof Error ? e.message : String(e) };
    }
  }, [r.data]);
  const grid = decoded.grid;
  const stale = r.dataKey !== key;
  const n = grid?.tokens.length ?? 0;
  const pos = currentPos(st.pos, n);

  const go = (patch: Partial<PromptState>, mode: "push" | "replace" = "push") => navigate(promptHref({ ...st, ...patch }), mode);
  // moving along the prompt edits the current history entry: Back leaves the page's prompt, not each step
  const moveTo = (p: number) => go({ pos: Math.max(0, Math.min(n - 1, p)) }, "replace");
  useShortcuts({
    ArrowLeft: grid ? () => moveTo(pos - 1) : null,
    ArrowRight: grid ? () => moveTo(pos + 1) : null,
    Home: grid ? () => moveTo(0) : null,
    End: grid ? () => moveTo(n - 1) : null,
  });

  const unit = grid && st.unit && grid.kind === kind && grid.layers.includes(st.unit.layer) && st.unit.index < grid.units ? st.unit : null;

  return (
    <div className="page prompt-page" data-testid="prompt-page">
      <div className="page-head">
        <h2>Prompt explorer</h2>
        {r.loading && <Spinner label="running the prompt" />}
        {st.prompt && (
          <Link href={`/?${new URLSearchParams({ prompt: st.prompt }).toString()}`} className="small" data-testid="debugger-link">
            open in the Debugger →
          </Link>
        )}
      </div>
      <div className="prompt-panes">
        <PromptSidebar prompt={st.prompt} kind={kind} kinds={choices} q={st.q} dataset={dataset}
          onPrompt={(text) => go({ prompt: text, pos: null })} onKind={(k) => go({ kind: k, unit: null })}
          onSearch={(q) => go({ q })} />
        <main className="box prompt-middle" data-testid="prompt-grid">
          {r.error && <ErrorBox error={r.error} />}
          {decoded.error && <p className="error">The server's grid could not be read: {decoded.error}</p>}
          {!st.prompt && (
            <div className="prompt-empty muted" data-testid="prompt-empty">
              <p>Type a prompt or pick a corpus window on the left. Every layer's {kinds ? (choices.find((k) => k.name === kind)?.label ?? "unit") : "unit"}s
                then light up at the token under the slider.</p>
              <p>
                Try:{" "}
                {EXAMPLES.map((e) => (
                  <button key={e} type="button" className="btn small" data-testid="prompt-example" onClick={() => go({ prompt: e, pos: null })}>
                    {e.split("\n")[0]!.slice(0, 40)}…
                  </button>
                ))}
              </p>
            </div>
          )}
          {grid && r.data && (
            <div className={stale ? "stale" : ""} data-testid="grid-view" data-stale={stale ? "true" : "false"} data-kind={grid.kind}
              data-prompt={r.dataKey ? (JSON.parse(r.dataKey) as string[])[0] : ""}>
              <UnitGridView grid={grid} lens={r.data.lens} pos={pos} shared={st.shared} picked={unit} kinds={kinds}
                onPos={moveTo} onPick={(u) => go({ unit: u })} onShared={(s) => go({ shared: s }, "replace")} />
            </div>
          )}
        </main>
        <div className="prompt-right">
          {grid && unit ? (
            <UnitPanel grid={grid} unit={unit} pos={pos} prompt={st.prompt} kinds={kinds} model={model?.name || null}
              dataset={dataset} onPos={moveTo} onPrompt={(text) => go({ prompt: text, pos: null })} />
          ) : (
            <section className="box muted small" data-testid="unit-panel-empty">
              Click a cell of the grid to pick a unit: its activation over this prompt, the corpus windows that activate it most,
              and its node page appear here.
            </section>
          )}
        </div>
      </div>
    </div>
  );
}
