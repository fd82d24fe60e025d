/** A node on a prompt: its activation at every token, the attention row (heads), promoted/suppressed tokens. */
import { post, type NodeDetail } from "../client/api";
import { ErrorBox } from "../components/common/ErrorBox";
import { Spinner } from "../components/common/Spinner";
import { Tok } from "../components/common/Tok";
import { DatasetSection } from "../components/Dataset/DatasetSection";
import { NodeNav } from "../components/Dataset/NodeNav";
import { useModelInfo, useResource } from "../hooks/useApi";
import { navigate } from "../hooks/useLocation";
import { divergingColor, maxAbs, textColor } from "../lib/color";
import { fmt, signed } from "../lib/format";
import { formatNode } from "../lib/nodes";
import { encodeState, DEFAULT_STATE } from "../lib/urlState";
import { parseNodeRoute } from "./nodeHref";

const VALUE_NAME: Record<string, string> = {
  mlp_neuron: "neuron activation",
  attn_head: "head output norm",
  attn_out: "layer write norm",
  mlp_out: "layer write norm",
  embedding: "embedding norm",
};

const KIND_NAME: Record<string, string> = {
  mlp_neuron: "MLP neuron",
  attn_head: "attention head",
  attn_out: "attention layer output",
  mlp_out: "MLP layer output",
  embedding: "token embedding",
};

export function NodePage({ path, search }: { path: string; search: string }) {
  const route = parseNodeRoute(path, search);
  const model = useModelInfo();
  const key = "node" in route && route.prompt !== null ? JSON.stringify(route) : null;
  const r = useResource<NodeDetail>(key, (signal) =>
    "node" in route && route.prompt !== null ? post("/api/node", { prompt: route.prompt, node: route.node, k: 10 }, signal) : Promise.reject(new Error("no node")),
  );
  if ("error" in route) return <div className="page box">{route.error}</div>;
  const { node, prompt } = route;
  const back = prompt !== null ? "/?" + encodeState({ ...DEFAULT_STATE, prompt }) : "/";
  const unit = (node.kind === "mlp_neuron" || node.kind === "attn_head") && node.layer != null && node.index != null
    ? { kind: node.kind, layer: node.layer, index: node.index } : null;
  const d = prompt !== null ? r.data : null;
  return (
    <div className="page node-page" data-testid="node-page">
      <div className="page-head">
        <h2>
          <span className="mono">{formatNode(route.node)}</span> <span className="muted kind-name">{KIND_NAME[route.node.kind]}</span>
        </h2>
        <a href={back} className="btn small" onClick={(e) => { e.preventDefault(); navigate(back); }}>
          {prompt !== null ? "← Debugger with this prompt" : "← Debugger"}
        </a>
        {r.loading && <Spinner />}
      </div>
      {unit && <NodeNav {...unit} search={search} model={model} />}
      {prompt !== null ? (
        <div className="node-prompt muted">
          on the prompt <span className="mono prompt-text">{prompt}</span> · token {route.node.token}
          {route.node.key != null ? ` ← key ${route.node.key}` : ""}
        </div>
      ) : (
        !unit && <p className="muted">This node page needs a prompt (?prompt=…&amp;token=…): only neurons and heads have dataset examples.</p>
      )}
      {r.error && <ErrorBox error={r.error} />}
      {d && (
        <div className={"node-body" + (r.loading ? " stale" : "")}>
          <section className="box">
            <h3>{VALUE_NAME[route.node.kind] ?? "value"} at every token</h3>
            <TokenRow tokens={d.activations.tokens} values={d.activations.values} mark={route.node.token} testId="node-activations" />
          </section>
          {d.activations.pattern && (
            <section className="box">
              <h3>Attention of query token {route.node.token} (<Tok t={d.activations.tokens[route.node.token] ?? ""} />) over keys</h3>
              <TokenRow tokens={d.activations.tokens} values={d.activations.pattern} mark={route.node.key ?? null} percent />
            </section>
          )}
          {d.tokens ? (
            <div className="token-lists-3">
              <TokenList title="Promoted output tokens" items={d.tokens.promoted} />
              <TokenList title="Suppressed output tokens" items={d.tokens.suppressed} />
              {d.tokens.drivers && <TokenList title="Driving input tokens" items={d.tokens.drivers} />}
            </div>
          ) : (
            <p className="muted small">This kind of node has no single output direction, so no promoted or suppressed tokens.</p>
          )}
        </div>
      )}
      {unit && <DatasetSection {...unit} />}
    </div>
  );
}

function TokenRow({ tokens, values, mark, percent, testId }: { tokens: string[]; values: number[]; mark: number | null; percent?: boolean; testId?: string }) {
  const max = maxAbs(values);
  return (
    <div className="token-row" data-testid={testId}>
      {tokens.map((t, i) => {
        const v = values[i] ?? 0;
        return (
          <span key={i} className={"heat-chip" + (i === mark ? " marked" : "")} style={{ background: divergingColor(v, max), color: textColor(v, max) }}
            title={`position ${i} ${JSON.stringify(t)}: ${percent ? (v * 100).toFixed(2) + "%" : signed(v, 4)}`}>
            <span className="chip-pos">{i}</span>
            <Tok t={t} />
            <span className="chip-val">{percent ? (v * 100).toFixed(0) + "%" : fmt(v, 2)}</span>
          </span>
        );
      })}
    </div>
  );
}

function TokenList({ title, items }: { title: string; items: { id: number; token: string; value: number }[] }) {
  const max = maxAbs(items.map((x) => x.value));
  return (
    <section className="box">
      <h3>{title}</h3>
      <table className="grid">
        <tbody>
          {items.map((x) => (
            <tr key={x.id}>
              <td><Tok t={x.token} /></td>
              <td className="num" style={{ background: divergingColor(x.value, max) }}>{signed(x.value, 3)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
