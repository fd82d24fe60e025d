/** One patching grid as an SVG heatmap: rows (layers, or layer.head) x columns (tokens, or heads),
 * a diverging colour scale centred at 0 and shared with the grid beside it (±`max`). The hovered
 * cell is the page's (both methods outline the same one); a click opens what the cell is. */
import { divergingColor } from "../../lib/color";
import { showToken } from "../../lib/format";

export interface Cell {
  row: number;
  col: number;
}

interface Props {
  title: string;
  rows: string[];
  columns: string[];
  values: number[][];
  max: number;
  hover: Cell | null;
  onHover: (c: Cell | null) => void;
  onCell: (c: Cell) => void;
  /** positions (columns) where the clean and corrupted prompts differ: underlined */
  changed?: Set<number>;
  tokenColumns: boolean;
  testId: string;
}

const LABEL_W = 58;

export function PatchHeatmap({ title, rows, columns, values, max, hover, onHover, onCell, changed, tokenColumns, testId }: Props) {
  const cw = Math.max(14, Math.min(40, Math.floor(520 / Math.max(1, columns.length))));
  const ch = rows.length > 60 ? 5 : rows.length > 32 ? 10 : 14;
  const head = tokenColumns ? 70 : 22;
  const w = LABEL_W + cw * columns.length + 4;
  const h = head + ch * rows.length + 4;
  const every = ch >= 10 ? 1 : Math.ceil(12 / ch); // row labels that fit
  return (
    <figure className="patching-map" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <svg width={w} height={h} onMouseLeave={() => onHover(null)} role="grid" aria-label={title}>
        {columns.map((c, j) => (
          <text
            key={j}
            x={LABEL_W + j * cw + cw / 2}
            y={head - 4}
            className={"patching-col" + (changed?.has(j) ? " changed" : "") + (hover?.col === j ? " on" : "")}
            transform={tokenColumns ? `rotate(-60 ${LABEL_W + j * cw + cw / 2} ${head - 4})` : undefined}
            textAnchor={tokenColumns ? "start" : "middle"}
          >
            {tokenColumns ? showToken(c).slice(0, 10) : c}
          </text>
        ))}
        {rows.map((r, i) =>
          i % every === 0 ? (
            <text key={i} x={LABEL_W - 4} y={head + i * ch + ch / 2 + 3} textAnchor="end" className={"patching-row" + (hover?.row === i ? " on" : "")}>
              {r}
            </text>
          ) : null,
        )}
        {values.map((rv, i) =>
          rv.map((v, j) => (
            <rect
              key={`${i}-${j}`}
              x={LABEL_W + j * cw}
              y={head + i * ch}
              width={cw - 1}
              height={Math.max(1, ch - (ch > 6 ? 1 : 0))}
              fill={divergingColor(v, max)}
              data-row={i}
              data-col={j}
              data-value={v}
              className={hover && hover.row === i && hover.col === j ? "on" : undefined}
              onMouseEnter={() => onHover({ row: i, col: j })}
              onClick={() => onCell({ row: i, col: j })}
            >
              <title>{`${r(rows, i)} · ${tokenColumns ? `${j} ${JSON.stringify(columns[j])}` : columns[j]}: ${v.toFixed(3)}`}</title>
            </rect>
          )),
        )}
      </svg>
    </figure>
  );
}

const r = (rows: string[], i: number) => rows[i] ?? String(i);

/** The colour scale's key: -max .. 0 .. +max. */
export function DivergingLegend({ max, label }: { max: number; label: string }) {
  const stops = [-1, -0.5, 0, 0.5, 1];
  return (
    <span className="patching-legend" data-testid="patching-legend">
      {label}{" "}
      {stops.map((s) => (
        <span key={s} className="patching-legend-cell" style={{ background: divergingColor(s * max, max) }}>
          {(s * max).toFixed(2)}
        </span>
      ))}
    </span>
  );
}
