/** A head's from/to view of one dataset window: query × key heatmap (attention or pair write), the
 * marked query row and its strongest key, and what the head's write at that query promotes. */
import { useState } from "react";
import { post, type Schemas } from "../../client/api";
import { useResource } from "../../hooks/useApi";
import { divergingColor } from "../../lib/color";
import { fmt, showToken } from "../../lib/format";
import { ErrorBox } from "../common/ErrorBox";
import { Spinner } from "../common/Spinner";
import { Tok } from "../common/Tok";
import { OutputTokens } from "../Node/TokenLists";

type Pattern = Schemas["HeadPattern"];
type Mode = "pattern" | "write";

const MODES: Record<Mode, { label: string; tip: string; unit: (v: number) => string }> = {
  pattern: { label: "attention p[q,k]", tip: "the probability query q puts on key k (each row sums to 1)", unit: (v) => (v * 100).toFixed(1) + "%" },
  write: { label: "pair write p·|W_O v_k|", tip: "how much the pair writes to the residual stream: p[q,k] times the norm of the head's output for key k's value", unit: (v) => fmt(v, 3) },
};

interface Props {
  layer: number;
  head: number;
  windowId: number;
  /** the query row to mark first (the example's peak) */
  query: number;
}

export function HeadPattern({ layer, head, windowId, query: initial }: Props) {
  const [mode, setMode] = useState<Mode>("pattern");
  const [query, setQuery] = useState(initial);
  const r = useResource<Pattern>(JSON.stringify({ layer, head, windowId, query }), (signal) =>
    post("/api/dataset/pattern", { layer, head, window_id: windowId, query }, signal),
  );
  const d = r.data;
  return (
    <div className="head-pattern" data-testid="head-pattern">
      <div className="hp-head">
        <span className="seg" role="group" aria-label="colour">
          {(Object.keys(MODES) as Mode[]).map((m) => (
            <button key={m} type="button" className={mode === m ? "on" : ""} aria-pressed={mode === m} title={MODES[m].tip} onClick={() => setMode(m)}>
              {MODES[m].label}
            </button>
          ))}
        </span>
        <span className="muted small">rows: query tokens · columns: key tokens · outlined: query {d?.query ?? query}, orange: its strongest key (by pair write) · click a row to mark it</span>
        {r.loading && <Spinner label="running the window" />}
      </div>
      {r.error && <ErrorBox error={r.error} />}
      {d && (
        <div className={r.loading ? "stale" : ""}>
          <Matrix d={d} values={mode === "pattern" ? d.pattern : d.write} mode={mode} onQuery={setQuery} />
          <h4 className="hp-out">
            What the head writes at query {d.query} (<Tok t={d.tokens[d.query] ?? ""} />, |z| {fmt(d.activation[d.query], 3)}) promotes and suppresses
          </h4>
          <OutputTokens tokens={d.output} testId="pattern-output" />
        </div>
      )}
    </div>
  );
}

const LABEL_CHARS = 12;
const cut = (i: number, t: string) => {
  const s = showToken(t);
  return `${s.length > LABEL_CHARS ? s.slice(0, LABEL_CHARS - 1) + "…" : s} ${i}`;
};

/** The lower triangle as SVG: one cell per (query, key ≤ query); grey above the diagonal (no attention). */
export function Matrix({ d, values, mode, onQuery }: { d: Pattern; values: number[][]; mode: Mode; onQuery: (q: number) => void }) {
  const n = d.tokens.length;
  const cell = n <= 40 ? 14 : n <= 72 ? 11 : Math.max(3, Math.floor(760 / n));
  const labels = cell >= 8;
  const L = labels ? 104 : 4;
  const T = labels ? 92 : 4;
  // The start token takes most of many heads' attention; scaling to it would wash out every other key.
  const off = values.flatMap((row) => row.slice(1));
  const max = Math.max(...off, 0) || Math.max(...values.flat(), 0);
  const side = n * cell;
  const unit = MODES[mode].unit;
  return (
    <div className="hp-matrix">
      <svg width={L + side + 4} height={T + side + 4} data-testid="pattern-svg" role="img"
        aria-label={`query by key ${MODES[mode].label}`} className="hp-svg">
        <rect x={L} y={T} width={side} height={side} className="hp-mask" />
        {values.map((row, q) =>
          row.map((v, k) => (
            <rect key={`${q}-${k}`} x={L + k * cell} y={T + q * cell} width={cell} height={cell} data-q={q} data-k={k}
              fill={divergingColor(Math.min(v, max), max)} onClick={() => onQuery(q)}>
              <title>{`query ${q} ${JSON.stringify(d.tokens[q])} → key ${k} ${JSON.stringify(d.tokens[k])}\n${MODES.pattern.label} ${MODES.pattern.unit(d.pattern[q]?.[k] ?? 0)}\n${MODES.write.label} ${MODES.write.unit(d.write[q]?.[k] ?? 0)}`}</title>
            </rect>
          )),
        )}
        <rect x={L} y={T + d.query * cell} width={(d.query + 1) * cell} height={cell} className="hp-query" data-testid="pattern-query" />
        <rect x={L + d.key * cell} y={T + d.query * cell} width={cell} height={cell} className="hp-key" data-testid="pattern-key" />
        {labels && d.tokens.map((t, i) => (
          <g key={i} className={(i === d.query ? "hp-lq" : "") + (i === d.key ? " hp-lk" : "")}>
            <text x={L - 3} y={T + i * cell + cell / 2} textAnchor="end" dominantBaseline="central" onClick={() => onQuery(i)}>{cut(i, t)}</text>
            <text transform={`translate(${L + i * cell + cell / 2} ${T - 3}) rotate(-90)`} dominantBaseline="central">{cut(i, t)}</text>
          </g>
        ))}
      </svg>
      <div className="legend small muted">
        colour 0 <span className="hp-ramp" /> {unit(max)}
        <span> (scale: the largest value off the start-token column; larger cells saturate)</span>
      </div>
    </div>
  );
}
