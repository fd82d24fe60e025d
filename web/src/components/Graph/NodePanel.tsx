/** The clicked node: its details, pin/unpin, its node page, a latent's explanation and top examples
 * (with a collated dataset), and its strongest input and output edges (a click on one explains it by
 * its heads). A supernode: its members, ungroup. */
import type { KindInfo } from "../../client/api";
import { divergingColor } from "../../lib/color";
import { fmt, pct, showToken, signed } from "../../lib/format";
import type { GraphIndex, GraphLink, GraphNode, ViewNode } from "../../lib/graphView";
import { Link } from "../common/Link";
import { latentHref, type PageContext } from "./graphLinks";
import { LatentDataset } from "./LatentDataset";

const SHOWN = 8;

interface Common {
  idx: GraphIndex;
  tokens: string[];
  prompt: string;
  selectedEdge: string | null;
  onSelect: (id: string) => void;
  onEdge: (source: string, sink: string) => void;
}

export const nodeName = (n: Pick<GraphNode, "type" | "label">): string =>
  n.type === "token" || n.type === "logit" ? showToken(n.label) : n.label;

/** A small link to a latent's node page on the prompt, beside its name in a list (tokens, logits and
 * errors have no node page). It stops the click there: list rows act on clicks of their own. */
export function LatentPageLink({ node, ctx }: { node: GraphNode | undefined; ctx: PageContext }) {
  const href = node ? latentHref(node, ctx.prompt, ctx.kinds, ctx.model) : null;
  if (!node || !href) return null;
  return (
    <span className="graph-page-link" onClick={(e) => e.stopPropagation()}>
      <Link href={href} className="small" data-testid="latent-page-link" title={`open ${node.label}'s node page on this prompt`}>
        page
      </Link>
    </span>
  );
}

export function NodePanel(props: Common & {
  node: GraphNode;
  pinned: boolean;
  kinds: KindInfo[] | null;
  model: string | null;
  /** the graph explains this logit alone (no other to switch to) */
  explained: boolean;
  onPin: () => void;
  onExplainLogit: (tokenId: number) => void;
  onClose: () => void;
}) {
  const { node: n, idx, tokens, prompt } = props;
  const href = latentHref(n, prompt, props.kinds, props.model);
  return (
    <section className="box graph-panel" data-testid="node-panel" data-id={n.id}>
      <div className="box-head">
        <h3>
          <span className={`type-dot t-${n.type}`} /> {nodeName(n)} <span className="muted">{n.type}</span>
        </h3>
        <button type="button" className="icon" onClick={props.onClose} title="close (Esc)" aria-label="close">×</button>
      </div>
      <table className="kv">
        <tbody>
          <tr><th>id</th><td className="mono" data-testid="node-id">{n.id}</td></tr>
          {n.layer != null && <tr><th>layer</th><td>{n.layer}</td></tr>}
          <tr><th>position</th><td>{n.pos} <span className="mono">{showToken(tokens[n.pos] ?? "")}</span></td></tr>
          {n.type === "latent" && <tr><th>latent</th><td className="mono">{n.kind} #{n.index}</td></tr>}
          {(n.type === "token" || n.type === "logit") && <tr><th>token id</th><td className="mono">{n.index}</td></tr>}
          {n.activation != null && <tr><th>activation</th><td className="mono">{fmt(n.activation)}</td></tr>}
          <tr><th>influence</th><td className="mono">{fmt(n.influence)}</td></tr>
          {n.probability != null && <tr><th>probability</th><td className="mono">{pct(n.probability)}</td></tr>}
        </tbody>
      </table>
      <div className="panel-actions">
        <button type="button" className={"btn small" + (props.pinned ? " on" : "")} onClick={props.onPin} data-testid="pin-button"
          aria-pressed={props.pinned} title="pin (or ctrl/cmd-click the node)">
          {props.pinned ? "unpin" : "pin"}
        </button>
        {href && (
          <Link href={href} className="btn small" data-testid="node-page-link">
            node page →
          </Link>
        )}
        {n.type === "logit" && !props.explained && n.index != null && (
          <button type="button" className="btn small" onClick={() => props.onExplainLogit(n.index!)} data-testid="explain-logit">
            explain this logit instead
          </button>
        )}
      </div>
      {n.type === "latent" && n.kind && n.index != null && (
        <LatentDataset kind={n.kind} layer={n.layer ?? null} index={n.index} kinds={props.kinds} />
      )}
      <EdgeList title="inputs" links={idx.inputs.get(n.id) ?? []} end="source" {...props} />
      <EdgeList title="outputs" links={idx.outputs.get(n.id) ?? []} end="target" {...props} />
    </section>
  );
}

function EdgeList({ title, links, end, idx, tokens, prompt, kinds, model, selectedEdge, onSelect, onEdge }: Common & PageContext & { title: string; links: GraphLink[]; end: "source" | "target" }) {
  if (!links.length) return null;
  const max = Math.abs(links[0]!.weight) || 1;
  return (
    <div className="edge-list" data-testid={`edges-${title}`}>
      <h4>
        strongest {title} <span className="muted">({Math.min(SHOWN, links.length)} of {links.length})</span>
      </h4>
      <table className="grid">
        <tbody>
          {links.slice(0, SHOWN).map((l) => {
            const other = idx.byId.get(l[end]);
            const key = `${l.source}>${l.target}`;
            return (
              <tr key={key} className={"edge-row" + (key === selectedEdge ? " on" : "")} data-testid="edge-row"
                onClick={() => onEdge(l.source, l.target)} title="explain this edge by its attention heads">
                <td className="num" style={{ background: divergingColor(l.weight, max) }}>{signed(l.weight)}</td>
                <td>
                  <button type="button" className="link" onClick={(e) => { e.stopPropagation(); onSelect(l[end]); }}
                    title={`select ${l[end]}`}>
                    {other ? nodeName(other) : l[end]}
                  </button>{" "}
                  <LatentPageLink node={other} ctx={{ prompt, kinds, model }} />{" "}
                  {other && (
                    <span className="muted small">
                      {other.type === "latent" || other.type === "error" ? "" : other.type + " "}@{other.pos}
                      {other.type !== "token" && other.type !== "logit" ? ` ${showToken(tokens[other.pos] ?? "")}` : ""}
                    </span>
                  )}
                </td>
                <td className="muted small">heads</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function SupernodePanel({ node, idx, ctx, onSelect, onUngroup, onClose }: {
  node: ViewNode;
  idx: GraphIndex;
  ctx: PageContext;
  onSelect: (id: string) => void;
  onUngroup: () => void;
  onClose: () => void;
}) {
  return (
    <section className="box graph-panel" data-testid="supernode-panel">
      <div className="box-head">
        <h3>
          <span className="type-dot t-supernode" /> {node.label} <span className="muted">supernode</span>
        </h3>
        <button type="button" className="icon" onClick={onClose} title="close (Esc)" aria-label="close">×</button>
      </div>
      <p className="muted small">
        {node.members.length} nodes drawn as one box; its edges sum its members' links. Total influence {fmt(node.influence)}.
      </p>
      <ul className="member-list">
        {node.members.map((m) => (
          <li key={m.id}>
            <button type="button" className="link" onClick={() => onSelect(m.id)}>{nodeName(m)}</button>{" "}
            <LatentPageLink node={m} ctx={ctx} /> <span className="muted mono small">{m.id}</span>{" "}
            <span className="muted small">({idx.inputs.get(m.id)?.length ?? 0} in, {idx.outputs.get(m.id)?.length ?? 0} out)</span>
          </li>
        ))}
      </ul>
      <button type="button" className="btn small" onClick={onUngroup} data-testid="ungroup-button">ungroup</button>
    </section>
  );
}
