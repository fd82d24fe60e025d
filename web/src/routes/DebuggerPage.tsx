/** The Debugger page ("/"): editors, interventions, results (one run or two side by side), node table. */
import { useEffect, useMemo, useState } from "react";
import { ApiError, post, type DebugRequest, type DebugResponse, type ModelInfo, type Node, type Through } from "../client/api";
import { EditorPanel, type Draft } from "../components/Editors/EditorPanel";
import { editorOfField, ErrorBox } from "../components/common/ErrorBox";
import { Spinner } from "../components/common/Spinner";
import { InterventionList, TraceBanner } from "../components/Interventions/InterventionList";
import { RawPanel } from "../components/RawView/RawPanel";
import { Results } from "../components/Results/Results";
import { useResource } from "../hooks/useApi";
import { navigate } from "../hooks/useLocation";
import { ablatedNode, ablation, formatNode } from "../lib/nodes";
import { decodeState, encodeState, isRunnable, rightPaneName, toRequest, type DebugState } from "../lib/urlState";
import { nodeHref } from "./nodeHref";

const draftOf = (s: DebugState): Draft => ({
  prompt: s.prompt,
  prompt2: s.prompt2,
  targets: s.targets.length ? s.targets : [""],
  distractors: s.distractors.length ? s.distractors : [""],
});

export function DebuggerPage({ search, model }: { search: string; model: ModelInfo | null }) {
  const state = useMemo(() => decodeState(search), [search]);
  const update = (patch: Partial<DebugState>, mode: "push" | "replace" = "push") =>
    navigate("/?" + encodeState({ ...state, ...patch }), mode);

  const [draft, setDraft] = useState<Draft>(() => draftOf(state));
  const submittedKey = JSON.stringify(draftOf(state));
  useEffect(() => setDraft(draftOf(state)), [submittedKey]); // eslint-disable-line react-hooks/exhaustive-deps
  const [localError, setLocalError] = useState<{ field: string; message: string } | null>(null);
  const [nonce, setNonce] = useState(0);

  const req: DebugRequest | null = isRunnable(state) ? toRequest(state) : null;
  const reqKey = req ? JSON.stringify(req) : null;
  const debug = useResource<DebugResponse>(reqKey && `${reqKey}#${nonce}`, (signal) => post("/api/debug", req!, signal));
  const shownReq: DebugRequest | null = debug.dataKey ? (JSON.parse(debug.dataKey.replace(/#\d+$/, "")) as DebugRequest) : null;
  const stale = debug.loading || (debug.dataKey !== null && debug.dataKey !== `${reqKey}#${nonce}`);

  // The first token id the model really ran: tells the preview whether the model prepends BOS.
  // Remembered (per model) so that the preview stays right while a request fails or before the first one.
  const [verifyOpen, setVerifyOpen] = useState(false);
  const [topN] = useState(20);
  const verifyKey = verifyOpen && reqKey ? `${reqKey}|${topN}#${nonce}` : null;
  const verify = useResource(verifyKey, (signal) => post("/api/verify", { ...req!, top_n: topN }, signal));

  const submit = () => {
    const clean = (xs: string[]) => xs.filter((x) => x !== "");
    const next = { ...state, prompt: draft.prompt, prompt2: draft.prompt2, targets: clean(draft.targets), distractors: clean(draft.distractors) };
    if (!next.prompt) setLocalError({ field: "prompt", message: "prompt: write a prompt first" });
    else if (!isRunnable(next)) setLocalError({ field: "targets", message: "targets: give at least one target token (or trace a node)" });
    else setLocalError(null);
    const url = "/?" + encodeState(next);
    if (url === window.location.pathname + window.location.search) setNonce((n) => n + 1); // same request: run it again
    else navigate(url, "push");
  };

  const errorField = localError?.field ?? editorOfField(debug.error?.field);
  const ablated = new Set(state.interventions.map(ablatedNode).filter((n) => n !== null).map(formatNode));
  const isAblated = (n: Node) => ablated.has(formatNode(n));
  const actions = {
    onAblate: (n: Node) => !isAblated(n) && update({ interventions: [...state.interventions, ablation(n)] }),
    onTrace: (n: Node, through: Through | null) => update({ trace: n, through }),
    nodeHref: (n: Node) => nodeHref(n, state.interventions.length || state.prompt2 !== null ? (state.prompt2 ?? state.prompt) : state.prompt, model?.name || null),
    onOpen: (n: Node) => navigate(actions.nodeHref(n)),
  };
  const rightName = rightPaneName(shownReq ? { prompt2: shownReq.prompt2 ?? null, interventions: shownReq.interventions ?? [] } : state);

  return (
    <div className="debugger">
      <aside className="sidebar">
        <EditorPanel draft={draft} onChange={setDraft} onSubmit={submit} errorField={errorField} tracing={state.trace !== null}
          loading={debug.loading} maxTokens={model?.limits.max_prompt_tokens ?? undefined} />
        <InterventionList interventions={state.interventions} invalid={errorField === "interventions"}
          onRemove={(i) => update({ interventions: state.interventions.filter((_, j) => j !== i) })}
          onClear={() => update({ interventions: [] })} />
        <section className="box settings">
          <label title="top nodes per kind and metric">
            nodes per kind <input type="number" min={1} max={model?.limits.max_k ?? 100} value={state.k}
              className={errorField === "k" ? "invalid" : ""} data-field="k"
              onChange={(e) => Number(e.target.value) >= 1 && update({ k: Number(e.target.value) }, "replace")} />
          </label>
          <label title="prompt position whose next token is scored (-1 = last)">
            position <input type="number" value={state.position} className={errorField === "position" ? "invalid" : ""}
              data-field="position" onChange={(e) => update({ position: Number(e.target.value) }, "replace")} />
          </label>
        </section>
      </aside>
      <main className="results">
        {state.trace && <TraceBanner node={state.trace} through={state.through} onClear={() => update({ trace: null, through: null })} />}
        <div className="status-line">
          {debug.loading && <Spinner label={debug.data ? "updating" : "running the model"} />}
          {!debug.loading && debug.data && (
            <span className="muted small" data-testid="status">
              {debug.data.right ? `two runs: baseline vs ${rightName}` : "one run"} · {Math.round(debug.data.elapsed_ms)} ms
              {debug.data.cached ? " (cached)" : ""}
            </span>
          )}
        </div>
        {localError && <ErrorBox error={new ApiError(0, localError.message, localError.field)} />}
        {debug.error && <ErrorBox error={debug.error} onRetry={() => setNonce((n) => n + 1)} />}
        {!debug.data && !debug.loading && !debug.error && !localError && <Intro />}
        {debug.data && shownReq && (
          <Results data={debug.data} req={shownReq} state={state} stale={stale} rightName={rightName} update={update}
            actions={actions} ablated={ablated}
            verify={{ open: verifyOpen, setOpen: setVerifyOpen, topN, ...verify }} />
        )}
        <RawPanel path="/api/debug" request={req} response={debug.data} />
      </main>
    </div>
  );
}

function Intro() {
  return (
    <div className="intro box">
      <h2>Debug a prediction</h2>
      <p>
        Write a prompt, a target token and (optionally) a distractor, then <b>Run</b>: mechscope explains the logit difference
        target − distractor at the last position, token by token and node by node. Ablate a node to see both runs side by side.
      </p>
    </div>
  );
}
