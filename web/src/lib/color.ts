/** Diverging colour scale: blue positive, red negative, white zero; scaled by a maximum |value|. */

const BLUE: [number, number, number] = [37, 99, 235];
const RED: [number, number, number] = [220, 38, 38];

/** The background for `value` on a scale whose extremes are ±`max` (clamped); white for 0/NaN. */
export function divergingColor(value: number | null | undefined, max: number): string {
  if (value == null || !Number.isFinite(value) || !(max > 0) || value === 0) return "rgb(255, 255, 255)";
  const t = Math.min(1, Math.abs(value) / max);
  const [r, g, b] = value > 0 ? BLUE : RED;
  const mix = (c: number) => Math.round(255 + (c - 255) * t * 0.85);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

/** Dark text on light cells, white text on saturated ones. */
export function textColor(value: number | null | undefined, max: number): string {
  if (value == null || !Number.isFinite(value) || !(max > 0)) return "inherit";
  return Math.abs(value) / max > 0.6 ? "#fff" : "inherit";
}

export function maxAbs(values: Iterable<number | null | undefined>): number {
  let m = 0;
  for (const v of values) if (v != null && Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}
