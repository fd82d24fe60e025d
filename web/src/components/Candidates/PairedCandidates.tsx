/** Candidates of both runs: each side's logit and prob, and the change. */
import type { CandidatePair } from "../../client/api";
import { divergingColor, maxAbs } from "../../lib/color";
import { fmt, pct, signed } from "../../lib/format";
import { Tok } from "../common/Tok";
import { pinCandidates, type RoleSpec } from "./CandidatesTable";

export function PairedCandidates({ candidates, spec }: { candidates: CandidatePair[]; spec: RoleSpec }) {
  const diff = (c: CandidatePair) => (c.left_logit != null && c.right_logit != null ? c.right_logit - c.left_logit : null);
  const max = maxAbs(candidates.map(diff));
  const rows = pinCandidates(candidates, spec);
  return (
    <table className="grid candidates paired" data-testid="candidates-paired">
      <thead>
        <tr>
          <th>token</th>
          <th className="num" title="baseline logit (prob in the tooltip)">left</th>
          <th className="num" title="right logit − left logit">Δ logit</th>
          <th className="num" title="right logit (prob in the tooltip)">right</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ row: c, role }) => {
          const d = diff(c);
          return (
            <tr key={c.id} className={role ? "pinned " + role : ""} data-token={c.token} data-role={role ?? ""}>
              <td>
                <Tok t={c.token} />
                {role && <span className={"tag " + role}>{role === "target" ? "T" : "D"}</span>}
              </td>
              <td className="num" title={`prob ${pct(c.left_prob)}`}>
                {fmt(c.left_logit, 2)}
              </td>
              <td className="num" style={{ background: divergingColor(d, max) }}>
                {signed(d, 2)}
              </td>
              <td className="num" title={`prob ${pct(c.right_prob)}`}>
                {fmt(c.right_logit, 2)}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
