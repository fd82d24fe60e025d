/** One run: the value, its candidates and its token effects. */
import type { AttributionSummary } from "../../client/api";
import type { HeatMode } from "../../lib/urlState";
import { CandidatesTable, type RoleSpec } from "../Candidates/CandidatesTable";
import { ValueBadge } from "../Candidates/ValueBadge";
import { HeatmapBox } from "./HeatmapBox";

interface Props {
  summary: AttributionSummary;
  spec: RoleSpec;
  heat: HeatMode;
  onHeat: (m: HeatMode) => void;
}

export function SingleResult({ summary, spec, heat, onHeat }: Props) {
  return (
    <div className="single">
      <section className="box value-box">
        <ValueBadge label={summary.direction} value={summary.value} testId="value-left"
          sub={`scored at position ${summary.position}${summary.linear ? "" : " · not linear: direct effects do not sum to it"}`} />
        {summary.candidates.length > 0 && (
          <>
            <h3>Next token candidates</h3>
            <div className="table-scroll short">
              <CandidatesTable candidates={summary.candidates} spec={spec} testId="candidates-left" />
            </div>
          </>
        )}
      </section>
      <HeatmapBox summary={summary} mode={heat} onMode={onHeat} title="Token effects" testId="heatmap-left" />
    </div>
  );
}
