import type { AttributionSummary } from "../../client/api";
import type { HeatMode } from "../../lib/urlState";
import { TokenEffectsHeatmap } from "../Heatmap/TokenEffectsHeatmap";

/** A titled token-effect heatmap with the direct / estimated total toggle. */
export function HeatmapBox({ summary, mode, onMode, title, testId }: {
  summary: AttributionSummary; mode: HeatMode; onMode: (m: HeatMode) => void; title: string; testId: string;
}) {
  return (
    <section className="box heat-box">
      <div className="box-head">
        <h3>{title}</h3>
        <div className="seg" role="group" aria-label="effect shown">
          {(["total", "direct"] as HeatMode[]).map((m) => (
            <button key={m} type="button" className={m === mode ? "on" : ""} onClick={() => onMode(m)}>
              {m === "total" ? "estimated total" : "direct"}
            </button>
          ))}
        </div>
      </div>
      {summary.token_effects ? (
        <TokenEffectsHeatmap tokens={summary.tokens} effects={summary.token_effects} mode={mode} position={summary.position} testId={testId} />
      ) : (
        <p className="muted small">No token effects for this direction.</p>
      )}
      <div className="legend muted small">
        <span className="sw neg-sw" /> lowers the value <span className="sw pos-sw" /> raises it · each row scaled to its max |value| ·
        underlined: scored position
      </div>
    </section>
  );
}
