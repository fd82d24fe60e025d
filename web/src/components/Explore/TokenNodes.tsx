/** The nodes whose top examples peak on a token: a sortable table linking to their node pages. */
import { useMemo, useState } from "react";
import { fmt } from "../../lib/format";
import { Link } from "../common/Link";
import { Tok } from "../common/Tok";
import { unitLabel, useKinds } from "../../lib/kinds";
import { sortTokenNodes, unitHref, unitNoun, type TokenNode, type TokenSort } from "./explore";

const COLUMNS: { col: TokenSort; label: string; help: string; num: boolean }[] = [
  { col: "label", label: "node", help: "layer and unit (N: neuron, H: head, ...); opens the node page", num: false },
  { col: "kind", label: "kind", help: "the kind of unit", num: false },
  { col: "token", label: "token", help: "the token the examples peak on, as the model spells it", num: false },
  { col: "n_examples", label: "top examples", help: "how many of the node's top examples peak on this token", num: true },
  { col: "max_activation", label: "max act", help: "the node's largest activation over those examples (a head: |z|)", num: true },
];

export function TokenNodes({ rows, model }: { rows: TokenNode[]; model: string | null }) {
  const kinds = useKinds();
  const [sort, setSort] = useState<{ col: TokenSort; desc: boolean }>({ col: "n_examples", desc: true });
  const shown = useMemo(() => sortTokenNodes(rows, sort.col, sort.desc), [rows, sort]);
  const click = (col: TokenSort) =>
    setSort((s) => (s.col === col ? { col, desc: !s.desc } : { col, desc: col === "n_examples" || col === "max_activation" }));
  return (
    <div className="table-scroll">
      <table className="grid token-nodes" data-testid="token-nodes">
        <thead>
          <tr>
            {COLUMNS.map(({ col, label, help, num }) => (
              <th key={col} className={(num ? "num " : "") + "sortable" + (col === sort.col ? " sorted" : "")} title={help}
                aria-sort={col === sort.col ? (sort.desc ? "descending" : "ascending") : "none"} data-col={col} onClick={() => click(col)}>
                {label}
                {col === sort.col && <span className="arrow">{sort.desc ? "▼" : "▲"}</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => {
            const label = unitLabel(kinds, r.kind, r.layer, r.unit);
            const href = unitHref(kinds, r.kind, r.layer, r.unit, model);
            return (
              <tr key={`${r.kind}/${r.layer}/${r.unit}/${r.token}`} data-testid="token-node" data-label={label} data-kind={r.kind}>
                <td className="mono label-cell">
                  {href ? (
                    <Link href={href} data-testid="node-link">{label}</Link>
                  ) : (
                    label
                  )}
                </td>
                <td>{unitNoun(kinds, r.kind)}</td>
                <td><Tok t={r.token} /></td>
                <td className="num">{r.n_examples}</td>
                <td className="num">{fmt(r.max_activation, 3)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
