/** The Graph page's layout: x = token position (one column per prompt token), y = layer (embeddings
 * at the bottom, layers 0..n-1, logits at the top). The nodes of one (layer, position) cell sit side
 * by side, wrapped onto more lines (a taller row) past `perLine` nodes, or fewer when the columns
 * would not fit the width asked for; a column is as wide as its busiest cell needs. The logits, all at the last position, get
 * a row of their own, centred on the last column and free to spread over the others (the columns
 * widen when the logits need more room than they have). */

export interface LayoutItem {
  key: string;
  /** 0: embeddings, 1..nLayers: layers 0..nLayers-1, nLayers + 1: logits */
  row: number;
  pos: number;
  /** the horizontal room the node needs */
  width: number;
  /** sort key within its cell: smaller first (left) */
  order: number;
}

export interface LayoutOptions {
  /** stretch the columns to at least this total width (the container's) */
  width?: number;
  /** narrowest column */
  minColumn?: number;
  /** room between two nodes of a cell */
  gap?: number;
  rowHeight?: number;
  /** most nodes side by side in a cell; more wrap onto another line of the row */
  perLine?: number;
  /** room between two lines of a wrapped cell */
  lineHeight?: number;
  tokenRowHeight?: number;
  logitRowHeight?: number;
  /** margins: left holds the layer labels, bottom the position numbers */
  left?: number;
  right?: number;
  top?: number;
  bottom?: number;
}

export interface Column {
  pos: number;
  /** left edge and width */
  x: number;
  width: number;
}

export interface Row {
  row: number;
  /** centre */
  y: number;
  height: number;
}

export interface Layout {
  width: number;
  height: number;
  columns: Column[];
  /** by row index, 0 (embeddings) .. nLayers + 1 (logits) */
  rows: Row[];
  at: Map<string, { x: number; y: number }>;
}

const DEFAULTS: Required<LayoutOptions> = {
  width: 0, minColumn: 56, gap: 4, rowHeight: 20, perLine: 12, lineHeight: 16, tokenRowHeight: 34, logitRowHeight: 40, left: 46, right: 10, top: 6, bottom: 16,
};

export function layoutGraph(items: LayoutItem[], nPos: number, nLayers: number, options: LayoutOptions = {}): Layout {
  const o = { ...DEFAULTS, ...options };
  const logitRow = nLayers + 1;
  const byOrder = (a: LayoutItem, b: LayoutItem) => a.order - b.order || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

  // cells: (row, pos) -> items, in order
  const cells = new Map<string, LayoutItem[]>();
  const logits: LayoutItem[] = [];
  for (const it of items) {
    const row = Math.max(0, Math.min(logitRow, it.row));
    const pos = Math.max(0, Math.min(nPos - 1, it.pos));
    const item = { ...it, row, pos };
    if (row === logitRow) {
      logits.push(item);
      continue;
    }
    const k = `${row}:${pos}`;
    const xs = cells.get(k);
    if (xs) xs.push(item);
    else cells.set(k, [item]);
  }
  const cellWidth = (xs: LayoutItem[]) => xs.reduce((a, x) => a + x.width, 0) + o.gap * (xs.length + 1);
  for (const xs of cells.values()) xs.sort(byOrder);
  // a cell's lines, in order (the first holds the first nodes); the embeddings never wrap
  const lines = (xs: LayoutItem[], perLine: number): LayoutItem[][] => {
    if (xs[0]!.row === 0 || xs.length <= perLine) return [xs];
    const out: LayoutItem[][] = [];
    for (let i = 0; i < xs.length; i += perLine) out.push(xs.slice(i, i + perLine));
    return out;
  };
  // columns: as wide as their busiest cell's widest line
  const wrap = (perLine: number) => {
    const wrapped = new Map<string, LayoutItem[][]>();
    const need = Array.from({ length: nPos }, () => o.minColumn);
    for (const [k, xs] of cells) {
      const ls = lines(xs, perLine);
      wrapped.set(k, ls);
      for (const l of ls) need[xs[0]!.pos] = Math.max(need[xs[0]!.pos]!, cellWidth(l));
    }
    return { wrapped, need, total: need.reduce((a, w) => a + w, 0) };
  };
  // fewer nodes a line (down to 2) while the columns are wider than the width asked for
  let perLine = Math.max(1, o.perLine);
  let w = wrap(perLine);
  while (o.width > 0 && perLine > 2 && w.total > o.width - o.left - o.right) w = wrap(--perLine);
  const { wrapped, need, total } = w;
  const rowLines = new Array<number>(nLayers + 2).fill(1);
  for (const ls of wrapped.values()) rowLines[ls[0]![0]!.row] = Math.max(rowLines[ls[0]![0]!.row]!, ls.length);

  // then stretched to the width asked for (and the logits')
  logits.sort(byOrder);
  const logitsWidth = logits.length ? cellWidth(logits) : 0;
  const room = Math.max(o.width - o.left - o.right, logitsWidth);
  const stretch = total > 0 && room > total ? room / total : 1;
  const columns: Column[] = [];
  let x = o.left;
  for (let pos = 0; pos < nPos; pos++) {
    const width = need[pos]! * stretch;
    columns.push({ pos, x, width });
    x += width;
  }
  const right = x;

  // rows, from the top: logits, layers n-1..0, embeddings
  const rows: Row[] = new Array(nLayers + 2);
  let y = o.top;
  for (let r = logitRow; r >= 0; r--) {
    const height = r === logitRow ? o.logitRowHeight : r === 0 ? o.tokenRowHeight : Math.max(o.rowHeight, rowLines[r]! * o.lineHeight);
    rows[r] = { row: r, y: y + height / 2, height };
    y += height;
  }

  const at = new Map<string, { x: number; y: number }>();
  for (const ls of wrapped.values()) {
    const first = ls[0]![0]!;
    const col = columns[first.pos]!;
    const y0 = rows[first.row]!.y - ((ls.length - 1) * o.lineHeight) / 2;
    ls.forEach((l, i) => {
      let cx = col.x + col.width / 2 - cellWidth(l) / 2 + o.gap;
      for (const it of l) {
        at.set(it.key, { x: cx + it.width / 2, y: y0 + i * o.lineHeight });
        cx += it.width + o.gap;
      }
    });
  }

  if (logits.length && nPos > 0) {
    const last = columns[nPos - 1]!;
    let cx = Math.max(o.left, Math.min(right - logitsWidth, last.x + last.width / 2 - logitsWidth / 2)) + o.gap;
    for (const it of logits) {
      at.set(it.key, { x: cx + it.width / 2, y: rows[logitRow]!.y });
      cx += it.width + o.gap;
    }
  }

  return { width: right + o.right, height: y + o.bottom, columns, rows, at };
}
