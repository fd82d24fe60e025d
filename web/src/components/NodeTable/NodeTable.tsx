/** The node table: one run (activation, write, direct and total effect) or two runs paired (left/diff/right). */
import { useMemo } from "react";
import { divergingColor, maxAbs, textColor } from "../../lib/color";
import { fmt, signed } from "../../lib/format";
import { nodeGroup, nodeGroups, useKinds } from "../../lib/kinds";
import { formatNode } from "../../lib/nodes";
import { ABS_COLUMNS, PAIRED_COLUMNS, queryRows, SINGLE_COLUMNS, type TableRow } from "../../lib/nodeTable";
import type { SortColumn } from "../../lib/urlState";
import { Link } from "../common/Link";
import { Tok } from "../common/Tok";
import { ExplanationCell } from "../Explanation/ExplanationCell";
import { unitKey, useExplanations } from "../Explanation/explanations";
import { NodeTableControls } from "./NodeTableControls";
import { RowActions, type NodeActions } from "./RowActions";

const HEADERS: Record<SortColumn, { label: string; help: string }> = {
  label: { label: "node", help: "layer.kind.index@token (<-key for head pairs)" },
  token: { label: "token", help: "the node's token (the query token for heads) and, for pairs, the key token" },
  activation: { label: "act", help: "neuron activation / attention probability of a pair" },
  write_norm: { label: "write", help: "norm of the node's write to the residual stream" },
  direct_effect: { label: "direct", help: "direct effect on the direction (through the unembedding only)" },
  total_effect: { label: "total (est.)", help: "estimated total effect (activation × gradient)" },
  left: { label: "left total", help: "estimated total effect in the baseline run" },
  diff: { label: "Δ", help: "right − left total effect" },
  right: { label: "right total", help: "estimated total effect in the right run" },
};

export interface TableQuery {
  sort: SortColumn;
  desc: boolean;
  groups: string[] | null;
  filter: string;
}

interface Props {
  rows: TableRow[];
  paired: boolean;
  query: TableQuery;
  onQuery: (q: Partial<TableQuery>) => void;
  actions: NodeActions;
  ablated: Set<string>;
  toolbar?: React.ReactNode;
}

export function NodeTable({ rows, paired, query, onQuery, actions, ablated, toolbar }: Props) {
  const columns = paired ? PAIRED_COLUMNS : SINGLE_COLUMNS;
  // A sort column the table does not have (e.g. "diff" on one run) falls back to its default.
  const sort = columns.includes(query.sort) ? query.sort : paired ? "diff" : "total_effect";
  const desc = columns.includes(query.sort) ? query.desc : true;
  const kinds = useKinds();
  const shown = useMemo(() => queryRows(rows, { ...query, sort, desc }, kinds), [rows, query, sort, desc, kinds]);
  const groups = useMemo(() => nodeGroups(kinds), [kinds]);
  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    for (const r of rows) {
      const g = nodeGroup(r.node, kinds);
      c[g] = (c[g] ?? 0) + 1;
    }
    return c;
  }, [rows, kinds]);
  // One request for the visible rows' explanations; the column shows once the server has some.
  const shownNodes = useMemo(() => shown.map((r) => r.node), [shown]);
  const explanations = useExplanations(shownNodes, kinds);
  const numeric = columns.filter((c) => c !== "label" && c !== "token");
  const max = Object.fromEntries(numeric.map((c) => [c, maxAbs(shown.map((r) => r[c as keyof TableRow] as number | null))]));
  const clickSort = (c: SortColumn) =>
    onQuery(c === sort ? { sort: c, desc: !desc } : { sort: c, desc: c !== "label" && c !== "token" });
  return (
    <div className="node-table-wrap">
      <div className="node-table-bar">
        <NodeTableControls groups={groups} selected={query.groups} filter={query.filter} counts={counts}
          onGroups={(groups) => onQuery({ groups })} onFilter={(filter) => onQuery({ filter })} />
        {toolbar}
      </div>
      <div className="table-scroll">
        <table className="grid nodes" data-testid="node-table" data-paired={paired ? "true" : "false"}>
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c} className={(c === "label" || c === "token" ? "" : "num ") + "sortable" + (c === sort ? " sorted" : "")}
                  title={HEADERS[c].help + (ABS_COLUMNS.has(c) ? " (sorted by |value|)" : "")} onClick={() => clickSort(c)}
                  aria-sort={c === sort ? (desc ? "descending" : "ascending") : "none"} data-col={c}>
                  {HEADERS[c].label}
                  {c === sort && <span className="arrow">{desc ? "▼" : "▲"}</span>}
                </th>
              ))}
              {explanations && (
                <th className="explanation-col" data-col="explanation"
                  title="the node's newest explanation; the badge is its first score with a value (hover: name, n, 95% CI)">
                  explanation
                </th>
              )}
              <th className="actions-col">actions</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.id} data-testid="node-row" data-kind={r.node.kind} data-pair={r.node.key != null ? "true" : "false"} data-label={formatNode(r.node)}>
                {columns.map((c) => (
                  <Cell key={c} row={r} col={c} max={max[c] ?? 0} href={actions.nodeHref(r.node)} />
                ))}
                {explanations && (
                  <ExplanationCell e={r.node.index != null ? explanations.get(unitKey(r.node.kind, r.node.layer ?? 0, r.node.index)) : undefined} />
                )}
                <td className="actions-col">
                  <RowActions node={r.node} actions={actions} ablated={ablated.has(formatNode(r.node))} />
                </td>
              </tr>
            ))}
            {shown.length === 0 && (
              <tr>
                <td colSpan={columns.length + (explanations ? 2 : 1)} className="muted empty">
                  No nodes match the filters.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function Cell({ row, col, max, href }: { row: TableRow; col: SortColumn; max: number; href: string }) {
  if (col === "label")
    return (
      <td className="mono label-cell" title={`${row.label}: open its node page`}>
        <Link href={href} data-testid="node-link">{row.label}</Link>
      </td>
    );
  if (col === "token")
    return (
      <td className="token-cell">
        <Tok t={row.token} />
        {row.keyToken != null && (
          <span className="key-tok">
            {" "}
            <span className="muted">←</span> <Tok t={row.keyToken} />
          </span>
        )}
      </td>
    );
  const v = row[col as keyof TableRow] as number | null;
  if (col === "write_norm") {
    const w = v != null && max > 0 ? (100 * v) / max : 0;
    return (
      <td className="num" style={{ background: `linear-gradient(90deg, #e5e7eb ${w}%, transparent ${w}%)` }}>
        {fmt(v, 2)}
      </td>
    );
  }
  const effect = col !== "activation";
  return (
    <td className="num" style={{ background: divergingColor(v, max), color: textColor(v, max) }}>
      {effect ? signed(v, 3) : fmt(v, 3)}
    </td>
  );
}
