/** The results area: one run or two runs, the node table and the verification. */
import type { ApiError, AttributionSummary, DebugRequest, DebugResponse, Verification } from "../../client/api";
import { useFirstTokenIds } from "../../hooks/useFirstTokenIds";
import { pairedRows, singleRows } from "../../lib/nodeTable";
import type { DebugState } from "../../lib/urlState";
import type { RoleSpec } from "../Candidates/CandidatesTable";
import { NodeTable } from "../NodeTable/NodeTable";
import type { NodeActions } from "../NodeTable/RowActions";
import { VerifyPanel } from "../Verify/VerifyPanel";
import { PairedResult } from "./PairedResult";
import { SingleResult } from "./SingleResult";

interface Props {
  data: DebugResponse;
  req: DebugRequest;
  state: DebugState;
  stale: boolean;
  rightName: string;
  update: (patch: Partial<DebugState>, mode?: "push" | "replace") => void;
  actions: NodeActions;
  ablated: Set<string>;
  verify: {
    open: boolean;
    setOpen: (o: boolean) => void;
    topN: number;
    setTopN?: (n: number) => void;
    maxTopN?: number;
    data: Verification | null;
    loading: boolean;
    error: ApiError | null;
  };
}

const texts = (xs: (string | number)[] | undefined) => (xs ?? []).map(String);

export function Results({ data, req, state, stale, rightName, update, actions, ablated, verify }: Props) {
  const targets = texts(req.targets);
  const distractors = texts(req.distractors);
  const spec: RoleSpec = {
    targets,
    distractors,
    targetIds: useFirstTokenIds(targets.filter((t) => !/^\d+$/.test(t))),
    distractorIds: useFirstTokenIds(distractors.filter((t) => !/^\d+$/.test(t))),
  };
  const paired = data.right != null;
  const rows = paired ? pairedRows(data.nodes ?? []) : singleRows(data.left.nodes);
  const onHeat = (heat: DebugState["heat"]) => update({ heat }, "replace");
  return (
    <div className={"result" + (stale ? " stale" : "")} data-testid="result" data-stale={stale ? "true" : "false"}>
      {paired ? (
        <PairedResult data={data as DebugResponse & { right: AttributionSummary }} rightName={rightName} spec={spec} heat={state.heat} onHeat={onHeat} />
      ) : (
        <SingleResult summary={data.left} spec={spec} heat={state.heat} onHeat={onHeat} />
      )}
      <section className="box">
        <div className="box-head">
          <h3>
            Nodes{" "}
            <span className="muted small">
              {paired ? "both runs paired, estimated total effect (positions of the right run)" : `top ${state.k} per kind and metric`}
            </span>
          </h3>
        </div>
        <NodeTable rows={rows} paired={paired} actions={actions} ablated={ablated}
          query={{ sort: state.sort, desc: state.desc, groups: state.groups, filter: state.filter }}
          onQuery={(q) => update(q, "replace")}
          toolbar={
            <button type="button" className="btn small" data-testid="verify-button" onClick={() => verify.setOpen(true)}
              title={`zero-ablate the top ${verify.topN} nodes of the ${paired ? "right" : ""} run one at a time and compare with the estimates`}>
              Verify top {verify.topN}
            </button>
          } />
      </section>
      {verify.open && (
        <VerifyPanel result={verify.data} loading={verify.loading} error={verify.error} topN={verify.topN}
          onTopN={verify.setTopN} maxTopN={verify.maxTopN} onClose={() => verify.setOpen(false)} />
      )}
    </div>
  );
}
