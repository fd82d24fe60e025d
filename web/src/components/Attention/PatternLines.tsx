/** One head's pattern as token-to-token lines (CircuitsVis / bertviz style): keys in the left
 * column, queries in the right one, a line per (query, key) with opacity = attention. Hover a token
 * to keep only its lines. */
import { useState } from "react";
import { cut, pctOf } from "./PatternHeatmap";

const ROW = 16;
const COL = 110;
const GAP = 180;
const MIN = 0.01; // lines under 1% are invisible anyway: not drawn

type Hover = { side: "query" | "key"; i: number } | null;

export function PatternLines({ tokens, pattern }: { tokens: string[]; pattern: number[][] }) {
  const [hover, setHover] = useState<Hover>(null);
  const n = tokens.length;
  const height = n * ROW + 26;
  const y = (i: number) => 22 + i * ROW + ROW / 2;
  const x1 = COL;
  const x2 = COL + GAP;
  const lit = (q: number, k: number) => hover === null || (hover.side === "query" ? hover.i === q : hover.i === k);
  const tokenClass = (side: "query" | "key", i: number) => {
    if (hover === null) return "";
    if (hover.side === side && hover.i === i) return "on";
    const p = hover.side === "query" ? (side === "key" ? pattern[hover.i]?.[i] : undefined) : side === "query" ? pattern[i]?.[hover.i] : undefined;
    return p !== undefined && p >= MIN ? "near" : "dim";
  };
  return (
    <svg width={x2 + COL} height={height} className="attention-lines" data-testid="pattern-lines" role="img" aria-label="attention as lines from query tokens to key tokens" onMouseLeave={() => setHover(null)}>
      <text x={x1 - 6} y={12} textAnchor="end" className="attention-lines-head">keys</text>
      <text x={x2 + 6} y={12} className="attention-lines-head">queries</text>
      {pattern.map((row, q) =>
        row.map((v, k) =>
          v >= MIN ? (
            <line key={`${q}-${k}`} x1={x1} y1={y(k)} x2={x2} y2={y(q)} data-q={q} data-k={k}
              strokeOpacity={lit(q, k) ? Math.min(1, v) : 0.02} className={hover !== null && lit(q, k) ? "lit" : ""}>
              <title>{`query ${q} ${JSON.stringify(tokens[q])} → key ${k} ${JSON.stringify(tokens[k])}: ${pctOf(v)}`}</title>
            </line>
          ) : null,
        ),
      )}
      {tokens.map((t, i) => (
        <g key={i}>
          <text x={x1 - 6} y={y(i)} textAnchor="end" dominantBaseline="central" className={"tok-key " + tokenClass("key", i)}
            data-testid="lines-key" onMouseEnter={() => setHover({ side: "key", i })}>{`${i} ${cut(t)}`}</text>
          <text x={x2 + 6} y={y(i)} dominantBaseline="central" className={"tok-query " + tokenClass("query", i)}
            data-testid="lines-query" onMouseEnter={() => setHover({ side: "query", i })}>{`${cut(t)} ${i}`}</text>
        </g>
      ))}
    </svg>
  );
}
