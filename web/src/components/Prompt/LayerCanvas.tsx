/** One layer's units at one position as a block of coloured cells (canvas): hover names a unit,
 * a click picks it. */
import { useEffect, useRef } from "react";
import { codeColours, LEVELS, rowColourCodes, unitAt, type DecodedGrid, type GridLayout } from "../../lib/unitGrid";

interface Props {
  grid: DecodedGrid;
  row: number;
  pos: number;
  layout: GridLayout;
  /** the shared colour scale's extreme; null: the row's own */
  sharedMax: number | null;
  picked: number | null;
  label: string;
  onHover: (unit: number | null) => void;
  onPick: (unit: number) => void;
}

export function LayerCanvas({ grid, row, pos, layout, sharedMax, picked, label, onHover, onPick }: Props) {
  const ref = useRef<HTMLCanvasElement>(null);
  const width = layout.cols * layout.cell;
  const height = layout.lines * layout.cell;

  useEffect(() => {
    const ctx = ref.current?.getContext("2d");
    if (!ctx) return; // no canvas (jsdom)
    const img = ctx.createImageData(width, height);
    const lut = codeColours();
    const codes = rowColourCodes(grid, row, pos, sharedMax);
    const { cols, cell } = layout;
    img.data.fill(255);
    for (let u = 0; u < grid.units; u++) {
      const k = 3 * (codes[u]! + LEVELS);
      const x0 = (u % cols) * cell;
      const y0 = Math.floor(u / cols) * cell;
      for (let y = y0; y < y0 + cell; y++) {
        for (let x = x0; x < x0 + cell; x++) {
          const i = 4 * (y * width + x);
          img.data[i] = lut[k]!;
          img.data[i + 1] = lut[k + 1]!;
          img.data[i + 2] = lut[k + 2]!;
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    if (picked !== null && picked < grid.units) {
      const x = (picked % cols) * cell;
      const y = Math.floor(picked / cols) * cell;
      ctx.lineWidth = 1;
      ctx.strokeStyle = "#111827";
      ctx.strokeRect(x - 1.5, y - 1.5, cell + 3, cell + 3);
      ctx.strokeStyle = "#facc15";
      ctx.strokeRect(x - 2.5, y - 2.5, cell + 5, cell + 5);
    }
  }, [grid, row, pos, sharedMax, picked, layout, width, height]);

  const unitOf = (e: React.MouseEvent<HTMLCanvasElement>): number | null => {
    const r = e.currentTarget.getBoundingClientRect();
    // the drawn size may differ from the CSS size (zoom): scale the pointer back to cells
    const sx = r.width > 0 ? width / r.width : 1;
    const sy = r.height > 0 ? height / r.height : 1;
    return unitAt(layout, grid.units, (e.clientX - r.left) * sx, (e.clientY - r.top) * sy);
  };

  return (
    <canvas ref={ref} className="prompt-canvas" width={width} height={height} style={{ width, height }}
      role="img" aria-label={`${label}: ${grid.units} units coloured by activation; click one to pick it`}
      data-testid="layer-canvas" data-row={row}
      onMouseMove={(e) => onHover(unitOf(e))} onMouseLeave={() => onHover(null)}
      onClick={(e) => {
        const u = unitOf(e);
        if (u !== null) onPick(u);
      }} />
  );
}
