/** The causal check (POST /api/graph/check): each node scaled in the real model (transcoders spliced
 * in), one at a time and all together; the graph's predicted change of the target logit against the
 * measured one, with their correlations. */
import type { Schemas } from "../../client/api";
import type { Resource } from "../../hooks/useApi";
import { fmt, showToken, signed } from "../../lib/format";
import type { GraphIndex } from "../../lib/graphView";
import { ErrorBox } from "../common/ErrorBox";
import { Spinner } from "../common/Spinner";
import { Scatter } from "../Verify/Scatter";
import type { PageContext } from "./graphLinks";
import { LatentPageLink, nodeName } from "./NodePanel";

export type GraphCheckResponse = Schemas["GraphCheckResponse"];

interface Props {
  r: Resource<GraphCheckResponse>;
  /** the nodes asked for ([] = the server's top 20) */
  nodes: string[];
  factor: number;
  /** the pinned latents and errors differ from the checked nodes */
  outdated: boolean;
  /** how many latents and errors are pinned now */
  pinnedNow: number;
  idx: GraphIndex;
  /** where the checked latents' node pages are */
  ctx: PageContext;
  onSelect: (id: string) => void;
  onFactor: (f: number) => void;
  onRerun: () => void;
  onRetry: () => void;
  onClose: () => void;
}

export function CheckPanel({ r, nodes, factor, outdated, pinnedNow, idx, ctx, onSelect, onFactor, onRerun, onRetry, onClose }: Props) {
  const d = r.data;
  const what = nodes.length ? `${nodes.length} pinned node${nodes.length === 1 ? "" : "s"}` : "the 20 most influential latents";
  const how = factor === 0 ? "ablated" : `scaled ×${factor}`;
  const name = (id: string) => {
    const n = idx.byId.get(id);
    return n ? nodeName(n) : id;
  };
  return (
    <section className="box graph-check" data-testid="check-panel">
      <div className="box-head">
        <h3>
          Causal check: {what} {how}, one at a time and together
        </h3>
        {r.loading && <Spinner label="running the model" />}
        <label className="small" title="scale each node by this factor (0 = ablate)">
          factor{" "}
          <input type="number" step={0.1} min={0} value={factor} data-testid="check-factor"
            onChange={(e) => e.target.value !== "" && Number(e.target.value) >= 0 && onFactor(Number(e.target.value))} />
        </label>
        {outdated && (
          <button type="button" className="btn small" onClick={onRerun} data-testid="check-rerun" title="the pinned nodes changed since">
            {pinnedNow ? `check the ${pinnedNow} pinned nodes` : "check the top 20 latents"}
          </button>
        )}
        <button type="button" className="link" onClick={onClose}>close</button>
      </div>
      {r.error && <ErrorBox error={r.error} onRetry={onRetry} />}
      {d && (
        <div className={"verify-body" + (r.loading ? " stale" : "")}>
          <div className="verify-side">
            <div className="stats">
              <div>
                <span className="muted">Pearson</span> <b data-testid="check-pearson">{fmt(d.pearson, 3)}</b>
              </div>
              <div>
                <span className="muted">Spearman</span> <b data-testid="check-spearman">{fmt(d.spearman, 3)}</b>
              </div>
            </div>
            <Scatter points={d.rows.map((x) => ({ x: x.predicted, y: x.measured, label: name(x.id) + " " + x.id }))}
              xLabel="predicted" yLabel="measured" />
            <p className="muted small">
              Change of the <span className="mono">{showToken(d.target)}</span> logit (minus the mean logit): predicted by the
              graph's edges vs measured in the model with the node {how}.
            </p>
          </div>
          <div className="table-scroll short">
            <table className="grid" data-testid="check-table">
              <thead>
                <tr>
                  <th>node</th>
                  <th className="num">predicted</th>
                  <th className="num">measured</th>
                  <th className="num">error</th>
                </tr>
              </thead>
              <tbody>
                {d.rows.map((x) => (
                  <tr key={x.id} data-testid="check-row" data-id={x.id}>
                    <td>
                      <button type="button" className="link" onClick={() => onSelect(x.id)}>{name(x.id)}</button>{" "}
                      <LatentPageLink node={idx.byId.get(x.id)} ctx={ctx} />{" "}
                      <span className="muted mono small">{x.id}</span>
                    </td>
                    <td className="num">{signed(x.predicted)}</td>
                    <td className="num">{signed(x.measured)}</td>
                    <td className="num muted">{signed(x.predicted - x.measured)}</td>
                  </tr>
                ))}
                <tr className="together" data-testid="check-together">
                  <td><b>all together</b></td>
                  <td className="num">{signed(d.together_predicted)}</td>
                  <td className="num">{signed(d.together_measured)}</td>
                  <td className="num muted">{signed(d.together_predicted - d.together_measured)}</td>
                </tr>
              </tbody>
            </table>
          </div>
        </div>
      )}
    </section>
  );
}
