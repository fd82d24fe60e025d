/** The Debugger page ("/"): editors, interventions, results (one run or two side by side), node table. */
import { useEffect, useMemo, useState } from "react";
import { ApiError, post, type DebugRequest, type DebugResponse, type ModelInfo, type Node, type Through } from "../client/api";
import { EditorPanel, type Draft } from "../components/Editors/EditorPanel";
import { buildDirection, directionDraft } from "../components/Editors/directionDraft";
import { editorOfField, ErrorBox } from "../components/common/ErrorBox";
import { Spinner } from "../components/common/Spinner";
import { InterventionEditor } from "../components/Interventions/InterventionEditor";
import { draftFromIntervention, draftFromNode, EMPTY_DRAFT, type IvDraft } from "../components/Interventions/interventionDraft";
import { InterventionList, TraceBanner } from "../components/Interventions/InterventionList";
import { SteeredGeneration } from "../components/Interventions/SteeredGeneration";
import { RawPanel } from "../components/RawView/RawPanel";
import { Results } from "../components/Results/Results";
import { useResource } from "../hooks/useApi";
import { navigate } from "../hooks/useLocation";
import { ablatedNode, ablation, formatNode } from "../lib/nodes";
import { directionLabel } from "../lib/debugDirection";
import { DEFAULT_VERIFY, decodeState, encodeState, isRunnable, rightPaneName, toRequest, type DebugState } from "../lib/urlState";
import { nodeHref } from "./nodeHref";

const draftOf = (s: DebugState, nLayers: number | null): Draft => ({
  prompt: s.prompt,
  prompt2: s.prompt2,
  targets: s.targets.length ? s.targets : [""],
  distractors: s.distractors.length ? s.distractors : [""],
  direction: directionDraft(s.direction, nLayers),
});

export function DebuggerPage({ search, model }: { search: string; model: ModelInfo | null }) {
  const state = useMemo(() => decodeState(search), [search]);
  const update = (patch: Partial<DebugState>, mode: "push" | "replace" = "push") =>
    navigate("/?" + encodeState({ ...state, ...patch }), mode);

  const nLayers = model?.n_layers ?? null;
  const [draft, setDraft] = useState<Draft>(() => draftOf(state, nLayers));
  const submittedKey = JSON.stringify(draftOf(state, nLayers));
  useEffect(() => setDraft(draftOf(state, nLayers)), [submittedKey]); // eslint-disable-line react-hooks/exhaustive-deps
  // The intervention editor: open on a draft (null = closed), editing list entry `editing` or adding one.
  const [editor, setEditor] = useState<{ draft: IvDraft; editing: number | null } | null>(null);
  const [localError, setLocalError] = useState<{ field: string; message: string } | null>(null);
  const [nonce, setNonce] = useState(0);

  const req: DebugRequest | null = isRunnable(state) ? toRequest(state) : null;
  const reqKey = req ? JSON.stringify(req) : null;
  const debug = useResource<DebugResponse>(reqKey && `${reqKey}#${nonce}`, (signal) => post("/api/debug", req!, signal));
  const shownReq: DebugRequest | null = debug.dataKey ? (JSON.parse(debug.dataKey.replace(/#\d+$/, "")) as DebugRequest) : null;
  const stale = debug.loading || (debug.dataKey !== null && debug.dataKey !== `${reqKey}#${nonce}`);
  // The current request has not answered yet (also in the render before its fetch starts): the
  // side-by-side generation waits for it, the model thread running one job at a time.
  const debugPending = debug.loading || (reqKey !== null && debug.error === null && debug.dataKey !== `${reqKey}#${nonce}`);

  // The first token id the model really ran: tells the preview whether the model prepends BOS.
  // Remembered (per model) so that the preview stays right while a request fails or before the first one.
  // The verify panel lives in the URL (verify=N): a reload reopens it on the same top N.
  const verifyOpen = state.verify !== null;
  const topN = state.verify ?? DEFAULT_VERIFY;
  const setVerifyOpen = (open: boolean) => update({ verify: open ? topN : null }, "replace");
  const verifyKey = verifyOpen && reqKey ? `${reqKey}|${topN}#${nonce}` : null;
  const verify = useResource(verifyKey, (signal) => post("/api/verify", { ...req!, top_n: topN }, signal));

  const submit = () => {
    const clean = (xs: string[]) => xs.filter((x) => x !== "");
    const dir = buildDirection(draft.direction, { kinds: model?.kinds ?? null, nLayers, dModel: model?.d_model ?? null });
    const direction = dir.ok ? dir.direction : state.direction;
    const next = { ...state, prompt: draft.prompt, prompt2: draft.prompt2, targets: clean(draft.targets), distractors: clean(draft.distractors), direction };
    if (!dir.ok) {
      setLocalError({ field: dir.field, message: dir.message });
      return;
    }
    if (!next.prompt) setLocalError({ field: "prompt", message: "prompt: write a prompt first" });
    else if (!isRunnable(next)) setLocalError({ field: "targets", message: "targets: give at least one target token (or trace a node, or explain another direction)" });
    else setLocalError(null);
    const url = "/?" + encodeState(next);
    if (url === window.location.pathname + window.location.search) setNonce((n) => n + 1); // same request: run it again
    else navigate(url, "push");
  };

  const serverField = debug.error?.field ?? null;
  const errorField = localError?.field ?? (serverField?.startsWith("direction") ? serverField : editorOfField(serverField));
  const ablated = new Set(state.interventions.map(ablatedNode).filter((n) => n !== null).map(formatNode));
  const isAblated = (n: Node) => ablated.has(formatNode(n));
  const actions = {
    onAblate: (n: Node) => !isAblated(n) && update({ interventions: [...state.interventions, ablation(n)] }),
    onEdit: (n: Node) => setEditor({ draft: draftFromNode(n), editing: null }),
    onTrace: (n: Node, through: Through | null) => update({ trace: n, through }),
    nodeHref: (n: Node) => nodeHref(n, state.interventions.length || state.prompt2 !== null ? (state.prompt2 ?? state.prompt) : state.prompt, model?.name || null),
    onOpen: (n: Node) => navigate(actions.nodeHref(n)),
  };
  const rightName = rightPaneName(shownReq ? { prompt2: shownReq.prompt2 ?? null, interventions: shownReq.interventions ?? [] } : state);

  return (
    <div className="debugger">
      <aside className="sidebar">
        <EditorPanel draft={draft} onChange={setDraft} onSubmit={submit} errorField={errorField} tracing={state.trace !== null}
          loading={debug.loading} maxTokens={model?.limits.max_prompt_tokens ?? undefined} dModel={model?.d_model} />
        <InterventionList interventions={state.interventions} invalid={errorField === "interventions"}
          onRemove={(i) => update({ interventions: state.interventions.filter((_, j) => j !== i) })}
          onClear={() => update({ interventions: [] })}
          onEdit={(i) => setEditor({ draft: i === null ? EMPTY_DRAFT : draftFromIntervention(state.interventions[i]!), editing: i })} />
        {editor && model && (
          <InterventionEditor draft={editor.draft} model={model} editing={editor.editing}
            onChange={(d) => setEditor({ ...editor, draft: d })} onCancel={() => setEditor(null)}
            onSave={(iv) => {
              const ivs = editor.editing === null ? [...state.interventions, iv] : state.interventions.map((x, j) => (j === editor.editing ? iv : x));
              setEditor(null);
              update({ interventions: ivs });
            }} />
        )}
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
              {debug.data.right ? `two runs: baseline vs ${rightName}` : "one run"}
              {state.trace === null && state.direction.kind !== "logit_diff" ? ` · ${directionLabel(state.direction)}` : ""} · {Math.round(debug.data.elapsed_ms)} ms
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
            verify={{ open: verifyOpen, setOpen: setVerifyOpen, topN, setTopN: (n) => update({ verify: n }, "replace"),
              maxTopN: model?.limits.max_verify, ...verify }} />
        )}
        {state.interventions.length > 0 && state.prompt && (
          <SteeredGeneration prompt={state.prompt2 ?? state.prompt} interventions={state.interventions} maxNewTokens={state.genTokens}
            maxAllowed={model?.limits.max_new_tokens ?? 128} onMaxNewTokens={(n) => update({ genTokens: n }, "replace")}
            hold={debugPending || verify.loading} />
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
