/** Verify the estimates: ablate the top nodes one at a time (POST /api/verify); estimated vs actual. */
import type { ApiError, Verification } from "../../client/api";
import { fmt, signed } from "../../lib/format";
import { ErrorBox } from "../common/ErrorBox";
import { Spinner } from "../common/Spinner";
import { NumberInput } from "./NumberInput";
import { Scatter } from "./Scatter";

interface Props {
  result: Verification | null;
  loading: boolean;
  error: ApiError | null;
  topN: number;
  /** change how many top nodes are ablated (kept in the URL: verify=N) */
  onTopN?: (n: number) => void;
  maxTopN?: number;
  onClose: () => void;
}

export function VerifyPanel({ result, loading, error, topN, onTopN, maxTopN, onClose }: Props) {
  return (
    <section className="box verify" data-testid="verify">
      <div className="box-head">
        <h3>Verification: top {topN} nodes ablated one at a time</h3>
        {onTopN && (
          <label className="small" title="how many top nodes to ablate one at a time">
            top{" "}
            <NumberInput value={topN} min={1} max={maxTopN} onCommit={onTopN} className="dbg-verify-n" testId="verify-top-n" />
          </label>
        )}
        {loading && <Spinner label="ablating" />}
        <button type="button" className="link" onClick={onClose}>
          close
        </button>
      </div>
      {error && <ErrorBox error={error} />}
      {result && (
        <div className={"verify-body" + (loading ? " stale" : "")}>
          <div className="verify-side">
            <div className="stats">
              <div>
                <span className="muted">Pearson</span> <b data-testid="pearson">{fmt(result.pearson, 3)}</b>
              </div>
              <div>
                <span className="muted">Spearman</span> <b data-testid="spearman">{fmt(result.spearman, 3)}</b>
              </div>
              <div>
                <span className="muted">value</span> <b>{signed(result.value, 3)}</b>
              </div>
            </div>
            <Scatter points={result.nodes.map((n) => ({ x: n.estimated, y: n.actual, label: n.label }))} />
            <p className="muted small">actual = value − value with the node zero-ablated; estimated = activation × gradient.</p>
          </div>
          <div className="table-scroll short">
            <table className="grid">
              <thead>
                <tr>
                  <th>node</th>
                  <th className="num">estimated</th>
                  <th className="num">actual</th>
                  <th className="num">error</th>
                </tr>
              </thead>
              <tbody>
                {result.nodes.map((n) => (
                  <tr key={n.label}>
                    <td className="mono">{n.label}</td>
                    <td className="num">{signed(n.estimated)}</td>
                    <td className="num">{signed(n.actual)}</td>
                    <td className="num muted">{signed(n.estimated - n.actual)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </section>
  );
}
