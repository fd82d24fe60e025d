/** A small SVG scatter of estimated (x) vs actual (y), with the y = x line. */
export function Scatter({ points, size = 220, xLabel = "estimated", yLabel = "actual" }: {
  points: { x: number; y: number; label: string }[];
  size?: number;
  xLabel?: string;
  yLabel?: string;
}) {
  const pad = 28;
  const m = Math.max(1e-9, ...points.flatMap((p) => [Math.abs(p.x), Math.abs(p.y)])) * 1.1;
  const s = (v: number) => pad + ((v + m) / (2 * m)) * (size - 2 * pad);
  const sy = (v: number) => size - s(v);
  return (
    <svg className="scatter" width={size} height={size} role="img" aria-label={`${xLabel} vs ${yLabel} effect`}>
      <rect x={pad} y={pad} width={size - 2 * pad} height={size - 2 * pad} className="frame" />
      <line x1={s(-m)} y1={sy(0)} x2={s(m)} y2={sy(0)} className="axis" />
      <line x1={s(0)} y1={sy(-m)} x2={s(0)} y2={sy(m)} className="axis" />
      <line x1={s(-m)} y1={sy(-m)} x2={s(m)} y2={sy(m)} className="diag" />
      {points.map((p) => (
        <circle key={p.label} cx={s(p.x)} cy={sy(p.y)} r={3}>
          <title>{`${p.label}: ${xLabel} ${p.x.toFixed(3)}, ${yLabel} ${p.y.toFixed(3)}`}</title>
        </circle>
      ))}
      <text x={size / 2} y={size - 6} textAnchor="middle">{xLabel}</text>
      <text x={10} y={size / 2} textAnchor="middle" transform={`rotate(-90 10 ${size / 2})`}>{yLabel}</text>
      <text x={pad} y={pad - 6} className="tick">±{m.toFixed(2)}</text>
    </svg>
  );
}
