/** Number and token formatting shared by the tables. */

export function fmt(v: number | null | undefined, digits = 3): string {
  if (v == null || !Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(1);
  return v.toFixed(a >= 100 ? 1 : digits);
}

export function signed(v: number | null | undefined, digits = 3): string {
  if (v == null || !Number.isFinite(v)) return "–";
  return (v > 0 ? "+" : "") + fmt(v, digits);
}

export function pct(p: number | null | undefined): string {
  if (p == null || !Number.isFinite(p)) return "–";
  if (p >= 0.001) return (p * 100).toFixed(p >= 0.1 ? 1 : 2) + "%";
  return p === 0 ? "0%" : "<0.1%";
}

/** A token made visible: spaces as ·, newlines as ⏎, tabs as ⇥. */
export function showToken(t: string): string {
  return t.replace(/ /g, "·").replace(/\n/g, "⏎").replace(/\t/g, "⇥") || "∅";
}

export const signClass = (v: number | null | undefined): string =>
  v == null || v === 0 ? "" : v > 0 ? "pos" : "neg";
