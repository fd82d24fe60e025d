/** The scatter's maths, free of the DOM: the view box and its transform to the canvas, zoom around
 * a point, pan, and a uniform grid over the points for hover hit-testing (tens of thousands of
 * points: a hover looks at the few cells under the cursor, never at every point). */

/** A rectangle of data space that the canvas shows (fitted inside it, aspect kept, centred). */
export interface ViewBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface Size {
  width: number;
  height: number;
}

/** Data -> pixels: px = ox + x * s, py = oy + y * s (one scale for both axes). */
export interface Transform {
  s: number;
  ox: number;
  oy: number;
}

/** The points' bounding box, padded by `pad` of its size on each side (a unit box when empty). */
export function fitBox(xs: ArrayLike<number>, ys: ArrayLike<number>, pad = 0.04): ViewBox {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!, y = ys[i]!;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  if (!(x1 >= x0)) return { x0: -1, y0: -1, x1: 1, y1: 1 };
  const w = Math.max(x1 - x0, 1e-9), h = Math.max(y1 - y0, 1e-9);
  return { x0: x0 - w * pad, y0: y0 - h * pad, x1: x1 + w * pad, y1: y1 + h * pad };
}

/** The transform that fits `box` inside `size`, centred, one scale for both axes. */
export function transformOf(box: ViewBox, size: Size): Transform {
  const w = Math.max(box.x1 - box.x0, 1e-12), h = Math.max(box.y1 - box.y0, 1e-12);
  const s = Math.min(size.width / w, size.height / h);
  const cx = (box.x0 + box.x1) / 2, cy = (box.y0 + box.y1) / 2;
  return { s, ox: size.width / 2 - cx * s, oy: size.height / 2 - cy * s };
}

export const toScreen = (t: Transform, x: number, y: number): [number, number] => [t.ox + x * t.s, t.oy + y * t.s];
export const toData = (t: Transform, px: number, py: number): [number, number] => [(px - t.ox) / t.s, (py - t.oy) / t.s];

/** The data rectangle the whole canvas shows (wider than `box` along one axis unless the aspects match). */
export function visibleBox(box: ViewBox, size: Size): ViewBox {
  const t = transformOf(box, size);
  const [x0, y0] = toData(t, 0, 0);
  const [x1, y1] = toData(t, size.width, size.height);
  return { x0, y0, x1, y1 };
}

/** Zoom by `factor` (> 1: in) keeping the data point under the pixel (px, py) where it is. */
export function zoomAt(box: ViewBox, size: Size, px: number, py: number, factor: number): ViewBox {
  const v = visibleBox(box, size);
  const [dx, dy] = toData(transformOf(box, size), px, py);
  const f = 1 / factor;
  return { x0: dx + (v.x0 - dx) * f, y0: dy + (v.y0 - dy) * f, x1: dx + (v.x1 - dx) * f, y1: dy + (v.y1 - dy) * f };
}

/** Move the view by a drag of (dxPx, dyPx) pixels: the content follows the pointer. */
export function panBy(box: ViewBox, size: Size, dxPx: number, dyPx: number): ViewBox {
  const v = visibleBox(box, size);
  const s = transformOf(box, size).s;
  const dx = dxPx / s, dy = dyPx / s;
  return { x0: v.x0 - dx, y0: v.y0 - dy, x1: v.x1 - dx, y1: v.y1 - dy };
}

/** A uniform grid over the points' bounding box: each cell lists the points inside it. */
export interface Grid {
  x0: number;
  y0: number;
  cell: number;
  cols: number;
  rows: number;
  /** point indices, sorted by cell; cell c holds order[start[c] .. start[c + 1]) */
  order: Int32Array;
  start: Int32Array;
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
}

/** The grid, about `perCell` points to a cell on average (counting sort: linear time). */
export function buildGrid(xs: ArrayLike<number>, ys: ArrayLike<number>, perCell = 4): Grid {
  const n = xs.length;
  const b = fitBox(xs, ys, 0);
  const w = Math.max(b.x1 - b.x0, 1e-9), h = Math.max(b.y1 - b.y0, 1e-9);
  const cells = Math.max(1, Math.ceil(n / perCell));
  const cell = Math.max(Math.sqrt((w * h) / cells), Math.max(w, h) / 2048);
  const cols = Math.max(1, Math.ceil(w / cell) + 1), rows = Math.max(1, Math.ceil(h / cell) + 1);
  const cellOf = new Int32Array(n);
  const start = new Int32Array(cols * rows + 1);
  for (let i = 0; i < n; i++) {
    const c = Math.floor((ys[i]! - b.y0) / cell) * cols + Math.floor((xs[i]! - b.x0) / cell);
    cellOf[i] = c;
    start[c + 1]!++;
  }
  for (let c = 0; c < cols * rows; c++) start[c + 1]! += start[c]!;
  const fill = start.slice(0, cols * rows);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[fill[cellOf[i]!]!++] = i;
  return { x0: b.x0, y0: b.y0, cell, cols, rows, order, start, xs, ys };
}

/** The point nearest to data point (x, y) within data distance `radius`, among those `accept`
 * lets through (all by default); -1 when there is none. */
export function nearest(g: Grid, x: number, y: number, radius: number, accept?: (i: number) => boolean): number {
  const c0 = Math.max(0, Math.floor((x - radius - g.x0) / g.cell)), c1 = Math.min(g.cols - 1, Math.floor((x + radius - g.x0) / g.cell));
  const r0 = Math.max(0, Math.floor((y - radius - g.y0) / g.cell)), r1 = Math.min(g.rows - 1, Math.floor((y + radius - g.y0) / g.cell));
  let best = -1, bestD = radius * radius;
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      const cell = r * g.cols + c;
      for (let k = g.start[cell]!; k < g.start[cell + 1]!; k++) {
        const i = g.order[k]!;
        const dx = g.xs[i]! - x, dy = g.ys[i]! - y;
        const d = dx * dx + dy * dy;
        if (d <= bestD && (best < 0 || d < bestD || i < best) && (!accept || accept(i))) {
          best = i;
          bestD = d;
        }
      }
    }
  }
  return best;
}

/** A view box as the URL holds it: four numbers, 6 significant digits (sub-pixel at any zoom a person uses). */
export function formatBox(b: ViewBox): string {
  return [b.x0, b.y0, b.x1, b.y1].map((v) => Number(v.toPrecision(6))).join(",");
}

export function parseBox(s: string | null): ViewBox | null {
  if (!s) return null;
  const v = s.split(",").map(Number);
  if (v.length !== 4 || v.some((x) => !Number.isFinite(x))) return null;
  const [x0, y0, x1, y1] = v as [number, number, number, number];
  return x1 > x0 && y1 > y0 ? { x0, y0, x1, y1 } : null;
}
