/** The Graph page ("/graph"): the attribution graph of a prompt's next token (circuit-tracer style),
 * pruned; a node's details and edges, an edge's heads, pinned nodes and supernodes, the causal check
 * and the Neuronpedia export. The whole view lives in the URL (lib/graphState.ts). */
import { useEffect, useMemo, useState } from "react";
import { ApiError, post, type ModelInfo } from "../client/api";
import { ErrorBox } from "../components/common/ErrorBox";
import { Link } from "../components/common/Link";
import { Spinner } from "../components/common/Spinner";
import { CheckPanel, type GraphCheckResponse } from "../components/Graph/CheckPanel";
import { EdgePanel, type GraphEdgeResponse } from "../components/Graph/EdgePanel";
import { GraphCanvas } from "../components/Graph/GraphCanvas";
import { GraphForm, type GraphDraft } from "../components/Graph/GraphForm";
import { debuggerHref, slugOf } from "../components/Graph/graphLinks";
import { GraphStats } from "../components/Graph/GraphStats";
import { GraphLegend, GraphToolbar } from "../components/Graph/GraphToolbar";
import { NodePanel, SupernodePanel } from "../components/Graph/NodePanel";
import { useResource } from "../hooks/useApi";
import { navigate } from "../hooks/useLocation";
import { useShortcuts } from "../hooks/useShortcuts";
import {
  decodeGraphState, DEFAULT_GRAPH_STATE, graphHref, group, SUPERNODE_PREFIX, togglePin, toGraphRequest, ungroup,
  type GraphState,
} from "../lib/graphState";
import { pct } from "../lib/format";
import { buildView, checkable, indexGraph, type GraphResponse, type ViewEdge } from "../lib/graphView";

const EXAMPLE = "The capital of France is";

const draftOf = (s: GraphState): GraphDraft => ({
  prompt: s.prompt,
  target: s.targetId !== null ? `#${s.targetId}` : (s.target ?? ""),
  nodeThreshold: String(s.nodeThreshold),
  edgeThreshold: String(s.edgeThreshold),
  maxFeatures: s.maxFeatures === null ? "" : String(s.maxFeatures),
});

/** The draft's state, or the field that is wrong. A target `#123` is a token id. */
function fromDraft(s: GraphState, d: GraphDraft): GraphState | { field: string; message: string } {
  if (!d.prompt) return { field: "prompt", message: "prompt: write a prompt first" };
  const f = (v: string, name: string) => {
    const x = Number(v);
    return v.trim() !== "" && x > 0 && x <= 1 ? x : { field: name, message: `${name}: a fraction in (0, 1], not ${JSON.stringify(v)}` };
  };
  const nt = f(d.nodeThreshold, "node_threshold");
  if (typeof nt !== "number") return nt;
  const et = f(d.edgeThreshold, "edge_threshold");
  if (typeof et !== "number") return et;
  const mf = d.maxFeatures.trim() === "" ? null : Number(d.maxFeatures);
  if (mf !== null && (!Number.isInteger(mf) || mf < 1))
    return { field: "max_features", message: `max_features: a positive integer (or empty: the server's default), not ${JSON.stringify(d.maxFeatures)}` };
  const id = /^#(\d+)$/.exec(d.target.trim());
  const same = d.prompt === s.prompt && (id ? Number(id[1]) === s.targetId : (d.target || null) === s.target && s.targetId === null);
  return {
    ...(same ? s : { ...DEFAULT_GRAPH_STATE }), // another graph: its nodes are not these ones
    prompt: d.prompt,
    target: id ? null : d.target || null,
    targetId: id ? Number(id[1]) : null,
    nodeThreshold: nt,
    edgeThreshold: et,
    maxFeatures: mf,
  };
}

function download(name: string, doc: unknown) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(doc)], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

export function GraphPage({ search, model }: { search: string; model: ModelInfo | null }) {
  const state = useMemo(() => decodeGraphState(search), [search]);
  const update = (patch: Partial<GraphState>, mode: "push" | "replace" = "push") => navigate(graphHref({ ...state, ...patch }), mode);

  const [draft, setDraft] = useState<GraphDraft>(() => draftOf(state));
  const draftKey = JSON.stringify(draftOf(state));
  useEffect(() => setDraft(draftOf(state)), [draftKey]); // eslint-disable-line react-hooks/exhaustive-deps
  const [localError, setLocalError] = useState<{ field: string; message: string } | null>(null);
  const [nonce, setNonce] = useState(0);

  const req = toGraphRequest(state);
  const reqKey = req ? JSON.stringify(req) : null;
  const graph = useResource<GraphResponse>(reqKey && `${reqKey}#${nonce}`, (signal) => post("/api/graph", req!, signal));
  const g = graph.data;
  const stale = graph.loading || (graph.dataKey !== null && graph.dataKey !== `${reqKey}#${nonce}`);
  const idx = useMemo(() => (g ? indexGraph(g) : null), [g]);
  // keyed by value: a click (a new URL, a new state) that leaves these alone keeps the drawing as it is
  const pinKey = state.pinned.join(",");
  const superKey = JSON.stringify(state.supernodes);
  const view = useMemo(
    () => (g && idx ? buildView(g, idx, { pinned: state.pinned, supernodes: state.supernodes, pinnedOnly: state.pinnedOnly }) : null),
    [g, idx, pinKey, superKey, state.pinnedOnly], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const pinnedSet = useMemo(() => new Set(state.pinned), [pinKey]); // eslint-disable-line react-hooks/exhaustive-deps
  // where the panels' latents link to: their node pages on this prompt
  const pages = { prompt: state.prompt, kinds: model?.kinds ?? null, model: model?.name || null };

  const checkKey = req && state.check !== null ? JSON.stringify({ ...req, nodes: state.check, factor: state.factor }) : null;
  const [checkNonce, setCheckNonce] = useState(0);
  const check = useResource<GraphCheckResponse>(checkKey && `${checkKey}#${checkNonce}`, (signal) =>
    post("/api/graph/check", { ...req!, nodes: state.check!, factor: state.factor }, signal),
  );
  const edgeKey = req && state.edge ? JSON.stringify({ ...req, source: state.edge.source, sink: state.edge.sink }) : null;
  const [edgeNonce, setEdgeNonce] = useState(0);
  const edge = useResource<GraphEdgeResponse>(edgeKey && `${edgeKey}#${edgeNonce}`, (signal) =>
    post("/api/graph/edge", { ...req!, source: state.edge!.source, sink: state.edge!.sink }, signal),
  );

  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<ApiError | null>(null);
  const exportGraph = () => {
    if (!req) return;
    setExporting(true);
    setExportError(null);
    const slug = slugOf(state.prompt);
    post("/api/graph/neuronpedia", { ...req, pinned: state.pinned, supernodes: state.supernodes.map((s) => [s.label, ...s.ids]), slug })
      .then((doc) => download(`${slug}.json`, doc))
      .catch((e: unknown) => setExportError(e instanceof ApiError ? e : new ApiError(0, String(e))))
      .finally(() => setExporting(false));
  };

  useShortcuts({
    Escape: state.clicked || state.edge ? () => navigate(graphHref({ ...state, clicked: null, edge: null }), "replace") : null,
  });

  const submit = () => {
    const next = fromDraft(state, draft);
    if ("field" in next) return setLocalError(next);
    setLocalError(null);
    const url = graphHref(next);
    if (url === window.location.pathname + window.location.search) setNonce((n) => n + 1);
    else navigate(url, "push");
  };

  const pin = (id: string) => update(togglePin(state, id));
  const selectNode = (key: string, withPin = false) => {
    if (withPin && !key.startsWith(SUPERNODE_PREFIX)) pin(key);
    else update({ clicked: key === state.clicked ? null : key }, "replace");
  };
  const selectEdge = (source: string, sink: string) => update({ edge: { source, sink } }, "replace");
  const onEdge = (e: ViewEdge) => {
    if (e.source.startsWith(SUPERNODE_PREFIX) || e.target.startsWith(SUPERNODE_PREFIX)) return; // a sum of links: no single edge to explain
    selectEdge(e.source, e.target);
  };

  const pinnedCheckable = idx ? checkable(idx, state.pinned) : [];
  const grouped = new Set(state.supernodes.flatMap((s) => s.ids));
  const groupable = pinnedCheckable.filter((id) => !grouped.has(id));
  const errorField = localError?.field ?? graph.error?.field ?? null;
  const logits = idx?.nodes.filter((n) => n.type === "logit") ?? [];
  const explained = logits[0] ?? null;

  const clickedNode = state.clicked && idx && !state.clicked.startsWith(SUPERNODE_PREFIX) ? (idx.byId.get(state.clicked) ?? null) : null;
  const clickedSuper = state.clicked?.startsWith(SUPERNODE_PREFIX) ? (view?.byKey.get(state.clicked) ?? null) : null;

  return (
    <div className="graph-page" data-testid="graph-page">
      <GraphForm draft={draft} onChange={setDraft} onSubmit={submit} loading={graph.loading} errorField={errorField}
        maxFeatures={model?.limits.max_graph_features ?? undefined} />
      <div className="status-line">
        {graph.loading && <Spinner label={g ? "updating the graph" : "building the attribution graph (seconds to minutes)"} />}
        {!graph.loading && g && (
          <span className="muted small" data-testid="graph-status">
            {logits.length > 1 ? `explaining the top ${logits.length} logits, first ` : "explaining the logit "}
            {explained && <span className="mono">{JSON.stringify(explained.label)}</span>}
            {explained?.probability != null && ` (p = ${pct(explained.probability)})`} · {(g.elapsed_ms / 1000).toFixed(1)} s
            {g.cached ? " (cached)" : ""}
          </span>
        )}
      </div>
      {localError && <ErrorBox error={new ApiError(0, localError.message, localError.field)} />}
      {graph.error && <ErrorBox error={graph.error} onRetry={() => setNonce((n) => n + 1)} />}
      {exportError && <ErrorBox error={exportError} />}
      {!req && !graph.loading && <Intro />}
      {g && idx && view && (
        <>
          <GraphStats g={g} idx={idx} />
          <div className="graph-main">
            <div className="graph-col">
              <section className={"box graph-box" + (stale ? " stale" : "")} data-testid="graph" data-stale={stale ? "true" : "false"}>
                <GraphToolbar pinned={state.pinned.length} groupable={groupable.length} pinnedOnly={state.pinnedOnly}
                  onPinnedOnly={(on) => update({ pinnedOnly: on })}
                  onGroup={(label) => update(group(state, label, groupable))}
                  onClearPins={() => update({ pinned: [], supernodes: [], pinnedOnly: false })}
                  onCheck={() => update({ check: pinnedCheckable })}
                  checkLabel={pinnedCheckable.length ? `scale the ${pinnedCheckable.length} pinned latents/errors in the model` : "scale the 20 most influential latents in the model (pin nodes to choose)"}
                  onExport={exportGraph} exporting={exporting}
                  prompt={state.prompt} debuggerHref={debuggerHref(state.prompt, explained?.label ?? null)} />
                <GraphCanvas graph={g} view={view} clicked={state.clicked} pinned={pinnedSet}
                  selectedEdge={state.edge ? `${state.edge.source}>${state.edge.sink}` : null}
                  onNode={selectNode} onEdge={onEdge} onBackground={() => (state.clicked || state.edge) && update({ clicked: null, edge: null }, "replace")} />
                <GraphLegend />
              </section>
              {state.check !== null && (
                <CheckPanel r={check} nodes={state.check} factor={state.factor} idx={idx} ctx={pages} pinnedNow={pinnedCheckable.length}
                  outdated={JSON.stringify(state.check) !== JSON.stringify(pinnedCheckable) && (pinnedCheckable.length > 0 || state.check.length > 0)}
                  onSelect={(id) => selectNode(id)} onFactor={(f) => update({ factor: f }, "replace")}
                  onRerun={() => update({ check: pinnedCheckable })} onRetry={() => setCheckNonce((n) => n + 1)}
                  onClose={() => update({ check: null })} />
              )}
            </div>
            <aside className="graph-side">
              {clickedNode && (
                <NodePanel node={clickedNode} idx={idx} tokens={g.prompt_tokens} prompt={state.prompt} kinds={model?.kinds ?? null}
                  model={model?.name || null} pinned={pinnedSet.has(clickedNode.id)} explained={logits.length < 2}
                  selectedEdge={state.edge ? `${state.edge.source}>${state.edge.sink}` : null}
                  onPin={() => pin(clickedNode.id)} onSelect={(id) => selectNode(id)} onEdge={selectEdge}
                  onExplainLogit={(id) => update({ ...DEFAULT_GRAPH_STATE, prompt: state.prompt, targetId: id, nodeThreshold: state.nodeThreshold,
                    edgeThreshold: state.edgeThreshold, maxFeatures: state.maxFeatures })}
                  onClose={() => update({ clicked: null }, "replace")} />
              )}
              {clickedSuper && (
                <SupernodePanel node={clickedSuper} idx={idx} ctx={pages} onSelect={(id) => selectNode(id)}
                  onUngroup={() => update(ungroup(state, clickedSuper.label))} onClose={() => update({ clicked: null }, "replace")} />
              )}
              {state.clicked && !clickedNode && !clickedSuper && (
                <p className="box muted small" data-testid="not-in-graph">
                  {state.clicked.startsWith(SUPERNODE_PREFIX) ? "That supernode has" : `Node ${state.clicked} has`} no node in this graph.
                </p>
              )}
              {state.edge && (
                <EdgePanel edge={state.edge} r={edge} idx={idx} tokens={g.prompt_tokens} prompt={state.prompt} kinds={model?.kinds ?? null} model={model?.name || null}
                  onSelect={(id) => selectNode(id)} onRetry={() => setEdgeNonce((n) => n + 1)} onClose={() => update({ edge: null }, "replace")} />
              )}
              {!state.clicked && !state.edge && (
                <p className="box muted small graph-hint">
                  Click a node for its details and strongest edges, an edge for the attention heads that carry it. Ctrl/cmd-click pins
                  a node; pinned nodes can be grouped into supernodes and checked causally in the model.
                </p>
              )}
            </aside>
          </div>
        </>
      )}
    </div>
  );
}

function Intro() {
  return (
    <div className="intro box">
      <h2>Attribution graph</h2>
      <p>
        Write a prompt and <b>Run</b>: mechscope builds the attribution graph of its next token (the transcoders' latents, their
        errors, the tokens and the top logits, linked by their direct effects in the frozen model) and prunes it to the nodes and
        edges that matter. It needs transcoders: serve with <code>--sae transcoders</code>. Try{" "}
        <Link href={graphHref({ ...DEFAULT_GRAPH_STATE, prompt: EXAMPLE })} data-testid="graph-example">
          {EXAMPLE}
        </Link>
        .
      </p>
    </div>
  );
}
