/** The node's activation statistics over the corpus and its histogram (one bar per bin, bins of unequal width). */
import { useState } from "react";
import type { Schemas } from "../../client/api";
import { fmt } from "../../lib/format";

export type NodeStats = Schemas["NodeStats"];

const W = 560;
const H = 130;
const PAD = { l: 44, r: 8, t: 6, b: 30 };

export function StatsTable({ s }: { s: NodeStats }) {
  const rows: [string, string, string][] = [
    ["mean", fmt(s.mean, 4), "mean activation over all tokens"],
    ["std", fmt(Math.sqrt(Math.max(0, s.var)), 4), "standard deviation (√var)"],
    ["skew", fmt(s.skew, 3), "skewness"],
    ["kurtosis", fmt(s.kurtosis, 3), "kurtosis"],
    ["density", (s.density * 100).toFixed(2) + "%", "fraction of tokens where the node is active"],
    ["max", fmt(s.max_activation, 4), "largest activation in the corpus"],
    ["tokens", s.count.toLocaleString("en-US"), "tokens counted"],
  ];
  return (
    <table className="grid stats-table" data-testid="dataset-stats">
      <tbody>
        {rows.map(([k, v, tip]) => (
          <tr key={k} title={tip}>
            <th>{k}</th>
            <td className="num">{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const short = (x: number) => (x === 0 ? "0" : Math.abs(x) >= 0.01 ? String(+x.toPrecision(3)) : x.toExponential(0));

export function Histogram({ s }: { s: NodeStats }) {
  const [log, setLog] = useState(true);
  const n = s.hist.length;
  if (n === 0) return <p className="muted small">No histogram.</p>;
  const y = (c: number) => (log ? Math.log10(1 + c) : c);
  const top = Math.max(...s.hist.map(y), 1e-9);
  const bw = (W - PAD.l - PAD.r) / n;
  const ih = H - PAD.t - PAD.b;
  const maxCount = Math.max(...s.hist);
  // x labels: the first and last edge, and 0 where a bin starts there
  const ticks = [0, n - 1, s.hist_lo.findIndex((lo) => lo === 0)].filter((i, k, a) => i >= 0 && a.indexOf(i) === k);
  return (
    <div className="histogram">
      <div className="hist-head">
        <span className="muted small">token count per activation bin (bins widen away from 0)</span>
        <span className="seg">
          <button type="button" className={log ? "on" : ""} onClick={() => setLog(true)} aria-pressed={log}>log</button>
          <button type="button" className={!log ? "on" : ""} onClick={() => setLog(false)} aria-pressed={!log}>linear</button>
        </span>
      </div>
      <svg width={W} height={H} viewBox={`0 0 ${W} ${H}`} data-testid="histogram" role="img" aria-label="activation histogram">
        <rect className="frame" x={PAD.l} y={PAD.t} width={W - PAD.l - PAD.r} height={ih} />
        {s.hist.map((c, i) => {
          const h = (y(c) / top) * ih;
          return (
            <rect key={i} className={"bar" + ((s.hist_lo[i] ?? 0) < 0 ? " negbar" : "")} data-testid="hist-bar"
              x={PAD.l + i * bw + 0.5} y={PAD.t + ih - h} width={Math.max(1, bw - 1)} height={h}>
              <title>{`[${s.hist_lo[i]}, ${s.hist_hi[i]}): ${c.toLocaleString("en-US")} tokens`}</title>
            </rect>
          );
        })}
        <text x={PAD.l - 4} y={PAD.t + 8} textAnchor="end">{maxCount.toLocaleString("en-US")}</text>
        <text x={PAD.l - 4} y={PAD.t + ih} textAnchor="end">0</text>
        <text x={12} y={PAD.t + ih / 2} textAnchor="middle" transform={`rotate(-90 12 ${PAD.t + ih / 2})`}>{log ? "count (log)" : "count"}</text>
        {ticks.map((i) => (
          <text key={i} x={PAD.l + (i === n - 1 ? (i + 1) * bw : i * bw)} y={H - PAD.b + 12} textAnchor={i === 0 ? "start" : i === n - 1 ? "end" : "middle"}>
            {short(i === n - 1 ? (s.hist_hi[i] ?? 0) : (s.hist_lo[i] ?? 0))}
          </text>
        ))}
        <text x={PAD.l + (W - PAD.l - PAD.r) / 2} y={H - 4} textAnchor="middle">activation</text>
      </svg>
    </div>
  );
}
