/** One head's pattern as a query × key heatmap (lower triangle: attention is causal). Hover a cell:
 * its query token, key token and probability. */
import { divergingColor } from "../../lib/color";
import { showToken } from "../../lib/format";
import { HoverTip, useTip } from "./HoverTip";

const LABEL_CHARS = 10;
export const cut = (t: string): string => {
  const s = showToken(t);
  return s.length > LABEL_CHARS ? s.slice(0, LABEL_CHARS - 1) + "…" : s;
};
export const pctOf = (v: number): string => (v * 100).toFixed(1) + "%";

/** The colour scale's top: the largest attention off the start-token column (the sink would wash
 * every other key out), or the largest overall when that is all there is. */
export function scaleMax(pattern: number[][]): number {
  let off = 0;
  let all = 0;
  pattern.forEach((row) =>
    row.forEach((v, k) => {
      all = Math.max(all, v);
      if (k > 0) off = Math.max(off, v);
    }),
  );
  return off || all || 1;
}

interface Props {
  tokens: string[];
  pattern: number[][];
  /** cell size in px; labels are drawn at 8 and above */
  cell?: number;
  testId?: string;
}

export function PatternHeatmap({ tokens, pattern, cell: fixed, testId = "pattern-heatmap" }: Props) {
  const { tip, show, hide } = useTip();
  const n = tokens.length;
  const cell = fixed ?? (n <= 40 ? 14 : n <= 64 ? 12 : Math.max(4, Math.floor(760 / n)));
  const labels = cell >= 8;
  const L = labels ? 92 : 2;
  const T = labels ? 80 : 2;
  const side = n * cell;
  const max = scaleMax(pattern);
  return (
    <div className="attention-heatmap">
      <svg width={L + side + 2} height={T + side + 2} data-testid={testId} role="img" aria-label="attention, query by key" onMouseLeave={hide}>
        <rect x={L} y={T} width={side} height={side} className="attention-mask" />
        {pattern.map((row, q) =>
          row.map((v, k) => (
            <rect key={`${q}-${k}`} x={L + k * cell} y={T + q * cell} width={cell} height={cell} data-q={q} data-k={k} data-v={v.toFixed(4)}
              fill={divergingColor(Math.min(v, max), max)}
              onMouseMove={(e) => show(e, [`attention ${pctOf(v)}`, `query ${q} ${JSON.stringify(tokens[q])}`, `key ${k} ${JSON.stringify(tokens[k])}`])} />
          )),
        )}
        {labels &&
          tokens.map((t, i) => (
            <g key={i}>
              <text x={L - 3} y={T + i * cell + cell / 2} textAnchor="end" dominantBaseline="central">{`${cut(t)} ${i}`}</text>
              <text transform={`translate(${L + i * cell + cell / 2} ${T - 3}) rotate(-90)`} dominantBaseline="central">{`${cut(t)} ${i}`}</text>
            </g>
          ))}
      </svg>
      {labels && (
        <div className="small muted">
          rows: queries · columns: keys · colour 0 <span className="attention-ramp" /> {pctOf(max)} (the largest value off the start-token column; larger cells saturate)
        </div>
      )}
      <HoverTip tip={tip} />
    </div>
  );
}
