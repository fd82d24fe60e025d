/** Where two continuations part: the first token (by id) that differs, or null when one is a prefix of the other and they have the same length. */
export function firstDifference(a: number[], b: number[]): number | null {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? null : n;
}
