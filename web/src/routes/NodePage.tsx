/** A node's page: navigation, a prompt of the user's own, the node on it, its tokens and its dataset examples. */
import { post, type ModelInfo, type NodeDetail } from "../client/api";
import { ErrorBox } from "../components/common/ErrorBox";
import { Link } from "../components/common/Link";
import { PromptLinks } from "../components/common/PromptLinks";
import { Spinner } from "../components/common/Spinner";
import { DatasetSection } from "../components/Dataset/DatasetSection";
import { DatasetNeeded } from "../components/Dataset/DatasetStatusLine";
import { NodeNav } from "../components/Dataset/NodeNav";
import { ExplanationSection } from "../components/Explanation/ExplanationSection";
import { OnPrompt } from "../components/Node/OnPrompt";
import { PromptForm } from "../components/Node/PromptForm";
import { WeightTokens } from "../components/Node/TokenLists";
import { useModelInfo, useResource } from "../hooks/useApi";
import { datasetDone, useDatasetStatus } from "../hooks/useDatasetStatus";
import { navigate } from "../hooks/useLocation";
import { kindOf } from "../lib/kinds";
import { formatNode } from "../lib/nodes";
import { encodeState, DEFAULT_STATE } from "../lib/urlState";
import { nodePath, parseNodeRoute, withPrompt, type NodeRoute } from "./nodeHref";

/** The node's label: `L3.mlp_neuron.7`, and `@token` only when it is on a prompt. */
const label = (r: NodeRoute) => (r.prompt !== null ? formatNode(r.node) : formatNode(r.node).replace(/@\d+$/, ""));

export function NodePage({ path, search }: { path: string; search: string }) {
  const model = useModelInfo();
  const route = parseNodeRoute(path, search, model?.kinds ?? null);
  // A path that names a model waits for the served model's name before asking anything of it.
  const waiting = "node" in route && route.model !== null && model === null;
  const wrongModel = "node" in route && route.model !== null && model !== null && model.name !== "" && route.model !== model.name;
  const key = "node" in route && route.prompt !== null && !waiting && !wrongModel ? JSON.stringify(route) : null;
  const r = useResource<NodeDetail>(key, (signal) =>
    "node" in route && route.prompt !== null ? post("/api/node", { prompt: route.prompt, node: route.node, k: 10 }, signal) : Promise.reject(new Error("no node")),
  );
  // A collated unit's examples and explanation need a collated dataset: asked for only when the server has one.
  const collatedUnit = "node" in route && route.node.index != null && !!kindOf(model?.kinds ?? null, route.node.kind)?.collated;
  const dataset = useDatasetStatus(collatedUnit && !waiting && !wrongModel);
  const done = datasetDone(dataset.status);
  const running = dataset.status?.status === "running";
  if ("error" in route) return <div className="page box">{route.error}</div>;
  const { node, prompt } = route;
  const back = prompt !== null ? "/?" + encodeState({ ...DEFAULT_STATE, prompt }) : "/";
  const kind = kindOf(model?.kinds ?? null, node.kind);
  // A unit: a node with an index (a neuron, a head, a latent), with neighbours and dataset examples.
  const unit = kind?.unit != null && node.index != null ? { kind, layer: node.layer ?? null, index: node.index } : null;
  const d = prompt !== null ? r.data : null;
  const collated = unit?.kind.collated ? unit : null;
  return (
    <div className="page node-page" data-testid="node-page">
      <div className="page-head">
        <h2>
          <span className="mono">{label(route)}</span> <span className="muted kind-name">{kind?.label ?? node.kind}</span>
        </h2>
        <Link href={back} className="btn small">
          {prompt !== null ? "← Debugger with this prompt" : "← Debugger"}
        </Link>
        {r.loading && <Spinner />}
      </div>
      {waiting ? null : wrongModel ? (
        <WrongModel route={route} model={model} search={search} />
      ) : (
        <>
          {unit && <NodeNav {...unit} search={search} model={model} modelName={route.model ?? (model?.name || null)} />}
          <PromptForm path={path} prompt={prompt} token={node.token} />
          {prompt !== null ? (
            <div className="node-prompt muted">
              on the prompt <span className="mono prompt-text">{prompt}</span> · token {node.token}
              {node.key != null ? ` ← key ${node.key}` : ""} <PromptLinks prompt={prompt} pos={node.token} />
            </div>
          ) : (
            !unit?.kind.collated && <p className="muted">This node page needs a prompt: this kind of node has no dataset examples.</p>
          )}
          {r.error && <ErrorBox error={r.error} />}
          {d && <OnPrompt d={d} node={node} kind={kind} stale={r.loading} onPick={(i) => navigate(withPrompt(path, prompt, i))} />}
          {unit?.kind.weight_tokens && <WeightTokens kind={unit.kind.name} layer={unit.layer} index={unit.index} />}
          {unit && unit.kind.prompt_tokens && !unit.kind.weight_tokens && prompt === null && (
            <p className="box muted small" data-testid="head-tokens-note">
              A {unit.kind.unit} has no output tokens of its own: what it writes depends on its input. Run it on a
              prompt above{unit.kind.pattern ? ", or open the from/to view of an example below," : ""} to see what it
              promotes and suppresses there.
            </p>
          )}
          {collated && done && <ExplanationSection kind={collated.kind.name} layer={collated.layer ?? 0} index={collated.index} />}
          {/* while collating, the examples section shows the progress and the previews' examples */}
          {collated && (done || running) && <DatasetSection kind={collated.kind} layer={collated.layer ?? 0} index={collated.index} />}
          {collated && !done && !running && (
            <DatasetNeeded s={dataset.status} error={dataset.error} what="dataset examples and explanations" />
          )}
        </>
      )}
    </div>
  );
}

function WrongModel({ route, model, search }: { route: NodeRoute; model: ModelInfo | null; search: string }) {
  const served = model?.name ?? "";
  const here = nodePath(route.node.kind, route.node.layer ?? null, route.node.index ?? null, served) + search;
  return (
    <div className="box error-box" role="alert" data-testid="wrong-model">
      <strong>This link is for another model.</strong>
      <div>
        It names the model <code>{route.model}</code>, but this server serves <code>{served}</code>: its units are
        not the same ones.
      </div>
      <Link href={here}>Open {label(route)} of {served} instead</Link>
    </div>
  );
}
