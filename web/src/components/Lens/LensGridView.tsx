/** The lens grid: rows are layers, columns the prompt's tokens; each cell the top token and its
 * probability, its background the probability (or, with a target, the target's probability). */
import { pct, showToken } from "../../lib/format";
import type { LensGrid } from "../../lib/lensState";

export interface LensCell {
  layer: number;
  pos: number;
}

/** A probability, small ones too (a write's direct logits spread over 49k tokens: 0.02% matters). */
export const prob = (p: number): string => (p >= 0.001 || p === 0 ? pct(p) : `${(p * 100).toExponential(1)}%`);

/** The probability a cell is coloured by: the target's when there is one, else the top token's. */
export function cellProb(grid: LensGrid, layer: number, pos: number): number {
  return grid.target ? (grid.target.probs[layer]?.[pos] ?? 0) : (grid.top[layer]?.[pos]?.[0]?.value ?? 0);
}

/** The largest coloured probability of the grid: the colour scale's top. */
export function gridMax(grid: LensGrid): number {
  let m = 0;
  grid.top.forEach((row, i) => row.forEach((_, j) => (m = Math.max(m, cellProb(grid, i, j)))));
  return m;
}

/** White to blue by probability (0..1). */
export function probColor(p: number): string {
  const t = Math.max(0, Math.min(1, p));
  const mix = (c: number) => Math.round(255 + (c - 255) * t * 0.85);
  return `rgb(${mix(37)}, ${mix(99)}, ${mix(235)})`;
}

export function LensGridView({ grid, hover, onHover, onPick }: {
  grid: LensGrid;
  hover: LensCell | null;
  onHover: (c: LensCell | null) => void;
  onPick: (target: string) => void;
}) {
  const target = grid.target ?? null;
  const max = gridMax(grid) || 1;
  return (
    <div className="lens-grid" style={{ gridTemplateColumns: `48px repeat(${grid.tokens.length}, minmax(58px, 1fr))` }} onMouseLeave={() => onHover(null)} data-testid="lens-grid">
      <div className="lens-corner" />
      {grid.tokens.map((t, j) => (
        <div key={j} className={"lens-colhead" + (hover?.pos === j ? " on" : "")} title={`position ${j}: ${JSON.stringify(t)}`}>
          {showToken(t)}
        </div>
      ))}
      {grid.top.map((row, i) => (
        <Row key={i} label={grid.layers[i] ?? String(i)} i={i} row={row} target={target} max={max} hover={hover} onHover={onHover} onPick={onPick} />
      ))}
    </div>
  );
}

function Row({ label, i, row, target, max, hover, onHover, onPick }: {
  label: string;
  max: number;
  i: number;
  row: LensGrid["top"][number];
  target: LensGrid["target"];
  hover: LensCell | null;
  onHover: (c: LensCell | null) => void;
  onPick: (target: string) => void;
}) {
  return (
    <>
      <div className={"lens-rowhead" + (hover?.layer === i ? " on" : "")}>{label}</div>
      {row.map((cell, j) => {
        const top = cell[0];
        const p = target ? (target.probs[i]?.[j] ?? 0) : (top?.value ?? 0);
        const rank = target ? target.ranks[i]?.[j] : null;
        return (
          <div
            key={j}
            className={"lens-cell" + (hover && hover.layer === i && hover.pos === j ? " on" : "")}
            style={{ background: probColor(p / max), color: p / max > 0.6 ? "#fff" : undefined }}
            data-layer={i}
            data-pos={j}
            data-top={top?.token ?? ""}
            data-top-id={top?.id ?? ""}
            data-prob={p}
            onMouseEnter={() => onHover({ layer: i, pos: j })}
            onClick={() => top && onPick(`#${top.id}`)}
          >
            <span className="lens-cell-tok">{showToken(top?.token ?? "")}</span>
            <span className="lens-cell-p">{rank != null ? `#${rank} · ${prob(p)}` : prob(p)}</span>
          </div>
        );
      })}
    </>
  );
}
