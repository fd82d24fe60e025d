/** Next-token candidates of one run: targets and distractors pinned on top and marked. */
import type { TokenScore } from "../../client/api";
import { fmt, pct } from "../../lib/format";
import { Tok } from "../common/Tok";

export type Role = "target" | "distractor";

/** A candidate's role: its token is one of the targets/distractors (as text or id), or its first token (by id). */
export function roleOf(c: { id: number; token: string }, spec: RoleSpec): Role | null {
  const hit = (texts: string[], ids: number[]) => texts.some((t) => t === c.token || t === String(c.id)) || ids.includes(c.id);
  if (hit(spec.targets, spec.targetIds)) return "target";
  if (hit(spec.distractors, spec.distractorIds)) return "distractor";
  return null;
}

export interface RoleSpec {
  targets: string[];
  distractors: string[];
  targetIds: number[];
  distractorIds: number[];
}

/** Pinned rows (targets, then distractors, in rank order) first, then the rest by rank. */
export function pinCandidates<T extends { id: number; token: string }>(rows: T[], spec: RoleSpec): { row: T; role: Role | null }[] {
  const tagged = rows.map((row) => ({ row, role: roleOf(row, spec) }));
  const order = (r: Role | null) => (r === "target" ? 0 : r === "distractor" ? 1 : 2);
  return tagged.map((t, i) => ({ ...t, i })).sort((a, b) => order(a.role) - order(b.role) || a.i - b.i);
}

export function CandidatesTable({ candidates, spec, testId }: { candidates: TokenScore[]; spec: RoleSpec; testId: string }) {
  const rows = pinCandidates(candidates, spec);
  return (
    <table className="grid candidates" data-testid={testId}>
      <thead>
        <tr>
          <th className="num">#</th>
          <th>token</th>
          <th className="num">logit</th>
          <th className="num">prob</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ row: c, role }) => (
          <tr key={c.id} className={role ? "pinned " + role : ""} data-token={c.token} data-role={role ?? ""}>
            <td className="num muted">{c.rank + 1}</td>
            <td>
              <Tok t={c.token} />
              {role && <span className={"tag " + role}>{role === "target" ? "T" : "D"}</span>}
            </td>
            <td className="num">{fmt(c.logit, 2)}</td>
            <td className="num">{pct(c.prob)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
