/** The middle pane: the prompt's tokens and a slider over them, then every layer's units at the
 * slider's token (one block per layer) with the logit lens's top tokens after that layer. */
import { useMemo, useState } from "react";
import type { KindInfo } from "../../client/api";
import { kindOf, unitLabel } from "../../lib/kinds";
import { fmt, signed } from "../../lib/format";
import { gridLayout, positionMax, positionSummary, valueAt, type DecodedGrid, type UnitGridResponse } from "../../lib/unitGrid";
import type { PickedUnit } from "../../lib/promptState";
import { Tok } from "../common/Tok";
import { LayerCanvas } from "./LayerCanvas";

type Lens = UnitGridResponse["lens"];

interface Props {
  grid: DecodedGrid;
  lens: Lens;
  pos: number;
  shared: boolean;
  picked: PickedUnit | null;
  kinds: KindInfo[] | null;
  onPos: (pos: number) => void;
  onPick: (u: PickedUnit) => void;
  onShared: (shared: boolean) => void;
}

const LENS_SHOWN = 3;

export function UnitGridView({ grid, lens, pos, shared, picked, kinds, onPos, onPick, onShared }: Props) {
  const layout = useMemo(() => gridLayout(grid.units), [grid.units]);
  const [hover, setHover] = useState<{ row: number; unit: number } | null>(null);
  const summary = useMemo(() => positionSummary(grid, pos), [grid, pos]);
  const sharedMax = shared ? positionMax(grid, pos) : null;
  const kind = kindOf(kinds, grid.kind);
  const name = (row: number, unit: number) => unitLabel(kinds, grid.kind, grid.layers[row] ?? 0, unit);
  const rowName = (row: number) => (grid.layers[row] == null ? (kind?.label ?? grid.kind) : `L${grid.layers[row]}`);
  const n = grid.tokens.length;
  const layered = grid.layers.length > 1 || grid.layers[0] != null;
  const top = summary.top;

  return (
    <div className="prompt-grid-view">
      <div className="prompt-tokens" data-testid="prompt-tokens" aria-label="the prompt's tokens: click one or use ← →">
        {grid.tokens.map((t, i) => (
          <button key={i} type="button" className={"prompt-token" + (i === pos ? " on" : "")} data-pos={i}
            aria-pressed={i === pos} title={`token ${i}`} onClick={() => onPos(i)}>
            <Tok t={t} />
          </button>
        ))}
      </div>
      <div className="prompt-slider-row">
        <input type="range" min={0} max={Math.max(0, n - 1)} value={pos} data-testid="pos-slider" aria-label="token position"
          onChange={(e) => onPos(Number(e.target.value))} />
        <span className="mono small nowrap">token {pos} / {n - 1}</span>
        <label className="check small" title="colour every layer on one scale (the largest |activation| at this token) instead of each layer's own">
          <input type="checkbox" checked={shared} data-testid="shared-scale" onChange={(e) => onShared(e.target.checked)} /> one colour scale
        </label>
      </div>
      <p className="small prompt-summary" data-testid="grid-summary" data-pos={pos} data-sum={summary.sumAbs.toFixed(4)}
        data-top={top ? name(top.row, top.unit) : ""}>
        At <Tok t={grid.tokens[pos] ?? ""} /> (token {pos}): strongest{" "}
        {top ? <><span className="mono">{name(top.row, top.unit)}</span> {signed(top.value, 3)}</> : "—"} · Σ|a| {fmt(summary.sumAbs, 4)}
        {" "}· {kind?.value_label ?? "activation"}, 8-bit per layer
      </p>
      <p className="small muted prompt-hover" data-testid="grid-hover">
        {hover ? (
          <>
            <span className="mono">{name(hover.row, hover.unit)}</span> (layer {grid.layers[hover.row] ?? "—"}, {kind?.unit ?? "unit"}{" "}
            {hover.unit}): {signed(valueAt(grid, hover.row, pos, hover.unit), 4)} — click to pick
          </>
        ) : (
          <>Hover a cell for its {kind?.unit ?? "unit"} and value; blue positive, red negative{shared ? ", one scale" : ", each layer on its own scale"}.</>
        )}
      </p>
      <div className="prompt-rows" data-testid="grid-rows">
        <div className="prompt-row prompt-row-head muted small">
          <span>layer</span>
          <span style={{ width: layout.cols * layout.cell }}>{grid.units} {kind?.unit ?? "unit"}s</span>
          <span>max |a|</span>
          <span>{layered ? "logit lens after the layer" : ""}</span>
        </div>
        {grid.layers.map((layer, row) => {
          const pickedHere = picked && picked.layer === layer ? picked.index : null;
          return (
            <div key={row} className="prompt-row" data-testid="grid-row" data-layer={layer ?? "-"}>
              <span className="mono small prompt-row-label">{rowName(row)}</span>
              <LayerCanvas grid={grid} row={row} pos={pos} layout={layout} sharedMax={sharedMax} picked={pickedHere}
                label={rowName(row)} onHover={(u) => setHover(u === null ? null : { row, unit: u })}
                onPick={(u) => onPick({ layer, index: u })} />
              <span className="mono small muted prompt-row-max">{fmt(grid.scales[row]![pos]! * 127, 3)}</span>
              {layered && layer != null ? <LensCell lens={lens} row={layer + 1} pos={pos} /> : <span />}
            </div>
          );
        })}
      </div>
      {!layered && (
        <div className="prompt-lens-table" data-testid="lens-table">
          <div className="muted small">Logit lens at this token, after each layer:</div>
          {lens.layers.slice(1).map((l, i) => (
            <div key={l} className="prompt-row prompt-lens-only">
              <span className="mono small prompt-row-label">L{i}</span>
              <LensCell lens={lens} row={i + 1} pos={pos} />
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

/** The lens's most likely next tokens at one (row, position). */
function LensCell({ lens, row, pos }: { lens: Lens; row: number; pos: number }) {
  const ids = lens.ids[row]?.[pos] ?? [];
  const probs = lens.probs[row]?.[pos] ?? [];
  return (
    <span className="prompt-lens" data-testid="lens-cell">
      {ids.slice(0, LENS_SHOWN).map((id, i) => (
        <span key={i} className="prompt-lens-tok" title={`${lens.layers[row]}: ${JSON.stringify(lens.vocab[String(id)] ?? "")} p=${fmt(probs[i], 3)}`}>
          <Tok t={lens.vocab[String(id)] ?? `#${id}`} /> <span className="muted">{Math.round((probs[i] ?? 0) * 100)}%</span>
        </span>
      ))}
    </span>
  );
}
