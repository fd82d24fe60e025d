/** "Score my explanation"'s answer: the score, and each held-out record token by token, the true
 * activation (top half, green) against the simulation (bottom half, purple), both on the 0..10 scale. */
import { Tok } from "../common/Tok";
import { scoreTitle, type ScoreResult, type SimulatedRecord } from "./explanations";
import { ScoreBadge } from "./ScoreBadge";

const TRUE_RGB = "22, 163, 74";
const SIM_RGB = "147, 51, 234";

/** The two-tone background of one token: true value over simulated value, each as opacity 0..1. */
export function twoTone(trueValue: number, simulated: number | null): string {
  const a = Math.min(Math.max(trueValue / 10, 0), 1);
  const b = simulated == null ? 0 : Math.min(Math.max(simulated / 10, 0), 1);
  return `linear-gradient(to bottom, rgba(${TRUE_RGB}, ${a.toFixed(2)}) 50%, rgba(${SIM_RGB}, ${b.toFixed(2)}) 50%)`;
}

function RecordRow({ r }: { r: SimulatedRecord }) {
  return (
    <div className="sim-record" data-testid="sim-record" data-source={r.source}>
      <span className="muted small sim-source">{r.source} #{r.window_id}</span>
      {r.failure ? (
        <span className="muted small" data-testid="sim-failure">simulation failed: {r.failure}</span>
      ) : (
        <span className="sim-tokens">
          {r.tokens.map((t, i) => {
            const s = r.simulated?.[i] ?? null;
            const v = r.scaled[i] ?? 0;
            return (
              <span key={i} className="sim-tok" data-testid="sim-tok" style={{ background: twoTone(v, s) }}
                title={`true ${v} (raw ${(r.acts[i] ?? 0).toFixed(3)}) · simulated ${s == null ? "–" : s.toFixed(1)}`}>
                <Tok t={t} />
              </span>
            );
          })}
        </span>
      )}
    </div>
  );
}

export function SimulationView({ result }: { result: ScoreResult }) {
  const s = result.score;
  return (
    <div className="simulation" data-testid="simulation">
      <div className="sim-head">
        <ScoreBadge name="simulation" score={s} showName />
        <span className="muted small" data-testid="sim-summary">{scoreTitle("correlation of simulated and true activations", s)}</span>
      </div>
      <div className="muted small sim-legend">
        <span className="sim-key" style={{ background: `rgba(${TRUE_RGB}, 0.8)` }} /> true activation (top half; 10 = {result.scale.toPrecision(3)})
        <span className="sim-key" style={{ background: `rgba(${SIM_RGB}, 0.8)` }} /> simulated (bottom half) · {result.records.length} held-out records ·{" "}
        {result.tokens.toLocaleString("en-US")} tokens priced
      </div>
      {(result.notes ?? []).map((n) => (
        <div key={n} className="muted small">{n}</div>
      ))}
      {result.records.map((r) => (
        <RecordRow key={r.window_id} r={r} />
      ))}
    </div>
  );
}
