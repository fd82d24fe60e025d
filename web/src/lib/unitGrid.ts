/** The prompt explorer's grid (POST /api/prompt/grid) decoded once, then read at any position
 * without asking the server again: value = int8 code x the (layer, position)'s scale. */
import type { Schemas } from "../client/api";
import { divergingColor } from "./color";

export type UnitGridResponse = Schemas["UnitGridResponse"];

export interface DecodedGrid {
  kind: string;
  tokens: string[];
  units: number;
  /** each row's layer (null: a kind without layers, one row) */
  layers: (number | null)[];
  /** [row][pos]: the largest |activation| of the row at the position / 127 */
  scales: Float32Array[];
  /** [row][pos * units + unit] */
  codes: Int8Array[];
}

export const LEVELS = 127;

/** Base64 to bytes, read as two's-complement int8. */
export function decodeCodes(b64: string): Int8Array {
  const bin = atob(b64);
  const out = new Int8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = (bin.charCodeAt(i) << 24) >> 24;
  return out;
}

export function decodeGrid(r: UnitGridResponse): DecodedGrid {
  const n = r.tokens.length;
  const codes = r.layers.map((l) => decodeCodes(l.codes));
  codes.forEach((c, i) => {
    if (c.length !== n * r.units) throw new Error(`grid row ${i} has ${c.length} values, expected ${n} x ${r.units}`);
  });
  return {
    kind: r.kind,
    tokens: r.tokens,
    units: r.units,
    layers: r.layers.map((l) => l.layer ?? null),
    scales: r.layers.map((l) => Float32Array.from(l.scales)),
    codes,
  };
}

export function valueAt(g: DecodedGrid, row: number, pos: number, unit: number): number {
  return g.codes[row]![pos * g.units + unit]! * g.scales[row]![pos]!;
}

/** One unit's activation at every position (a row of the grid across the prompt). */
export function unitSeries(g: DecodedGrid, row: number, unit: number): number[] {
  return g.tokens.map((_, pos) => valueAt(g, row, pos, unit));
}

/** The largest |activation| of any row at a position (the shared colour scale's extreme). */
export function positionMax(g: DecodedGrid, pos: number): number {
  let m = 0;
  for (const s of g.scales) m = Math.max(m, s[pos]! * LEVELS);
  return m;
}

export interface PositionSummary {
  pos: number;
  /** the unit with the largest |activation| at the position */
  top: { row: number; unit: number; value: number } | null;
  /** sum of |activation| over every unit of every row (a fingerprint of what is drawn) */
  sumAbs: number;
}

export function positionSummary(g: DecodedGrid, pos: number): PositionSummary {
  let top: PositionSummary["top"] = null;
  let sumAbs = 0;
  g.codes.forEach((codes, row) => {
    const s = g.scales[row]![pos]!;
    const base = pos * g.units;
    for (let u = 0; u < g.units; u++) {
      const v = codes[base + u]! * s;
      sumAbs += Math.abs(v);
      if (top === null || Math.abs(v) > Math.abs(top.value)) top = { row, unit: u, value: v };
    }
  });
  return { pos, top, sumAbs };
}

export interface GridLayout {
  /** units per line of a layer's block */
  cols: number;
  lines: number;
  /** px per unit */
  cell: number;
}

/** A layer's block: units in lines of at most `maxWidth` px, cells between 2 and 16 px. */
export function gridLayout(units: number, maxWidth = 384): GridLayout {
  const cell = Math.max(2, Math.min(16, Math.floor(maxWidth / Math.max(1, units))));
  const cols = Math.max(1, Math.min(units, Math.floor(maxWidth / cell)));
  return { cols, lines: Math.ceil(units / cols), cell };
}

/** The unit under a point of a block (px from its top left), or null outside the units. */
export function unitAt(l: GridLayout, units: number, x: number, y: number): number | null {
  const c = Math.floor(x / l.cell);
  const r = Math.floor(y / l.cell);
  if (c < 0 || r < 0 || c >= l.cols || r >= l.lines) return null;
  const u = r * l.cols + c;
  return u < units ? u : null;
}

let lut: Uint8ClampedArray | null = null;

/** RGB of each int8 code on the app's diverging scale (index code + 127), built once from color.ts. */
export function codeColours(): Uint8ClampedArray {
  if (lut) return lut;
  const out = new Uint8ClampedArray(3 * (2 * LEVELS + 1));
  for (let c = -LEVELS; c <= LEVELS; c++) {
    const m = /rgb\((\d+), (\d+), (\d+)\)/.exec(divergingColor(c, LEVELS));
    const i = 3 * (c + LEVELS);
    out[i] = Number(m?.[1] ?? 255);
    out[i + 1] = Number(m?.[2] ?? 255);
    out[i + 2] = Number(m?.[3] ?? 255);
  }
  return (lut = out);
}

/** The colour code (-127..127) of each unit of a row at a position: its own scale, or rescaled to
 * `sharedMax` (the largest |activation| of every row there) so rows compare with each other. */
export function rowColourCodes(g: DecodedGrid, row: number, pos: number, sharedMax: number | null): Int16Array {
  const out = new Int16Array(g.units);
  const codes = g.codes[row]!;
  const base = pos * g.units;
  const f = sharedMax !== null && sharedMax > 0 ? (g.scales[row]![pos]! * LEVELS) / sharedMax : 1;
  for (let u = 0; u < g.units; u++) out[u] = Math.round(codes[base + u]! * f);
  return out;
}
