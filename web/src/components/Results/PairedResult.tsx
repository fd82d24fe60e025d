/** Two runs side by side: baseline (left) and edited or second prompt (right), each with its value. */
import type { AttributionSummary, DebugResponse } from "../../client/api";
import type { HeatMode } from "../../lib/urlState";
import { CandidatesTable, type RoleSpec } from "../Candidates/CandidatesTable";
import { PairedCandidates } from "../Candidates/PairedCandidates";
import { ValueBadge } from "../Candidates/ValueBadge";
import { HeatmapBox } from "./HeatmapBox";

interface Props {
  data: DebugResponse & { right: AttributionSummary };
  rightName: string;
  spec: RoleSpec;
  heat: HeatMode;
  onHeat: (m: HeatMode) => void;
}

export function PairedResult({ data, rightName, spec, heat, onHeat }: Props) {
  const { left, right } = data;
  return (
    <div className="paired">
      <div className="value-strip box">
        <ValueBadge label="left · baseline" value={left.value} testId="value-left" sub={left.direction} />
        <ValueBadge label="Δ right − left" value={data.value_diff ?? right.value - left.value} testId="value-diff" />
        <ValueBadge label={`right · ${rightName}`} value={right.value} testId="value-right" sub={right.direction} />
      </div>
      <div className="pane-grid">
        <section className="box pane left-pane" data-testid="pane-left">
          <h3><span className="pane-tag left">left</span> baseline: candidates</h3>
          <div className="table-scroll short">
            <CandidatesTable candidates={left.candidates} spec={spec} testId="candidates-left" />
          </div>
        </section>
        <section className="box">
          <h3>Candidates on both runs</h3>
          <div className="table-scroll short">
            <PairedCandidates candidates={data.candidates ?? []} spec={spec} />
          </div>
        </section>
        <section className="box pane right-pane" data-testid="pane-right">
          <h3><span className="pane-tag right">right</span> {rightName}: candidates</h3>
          <div className="table-scroll short">
            <CandidatesTable candidates={right.candidates} spec={spec} testId="candidates-right" />
          </div>
        </section>
      </div>
      <div className="heat-pair">
        <HeatmapBox summary={left} mode={heat} onMode={onHeat} title="Token effects · left (baseline)" testId="heatmap-left" />
        <HeatmapBox summary={right} mode={heat} onMode={onHeat} title={`Token effects · right (${rightName})`} testId="heatmap-right" />
      </div>
    </div>
  );
}
