/** Nodes found by their explanation's text, each linked to its node page, with its headline score. */
import type { KindInfo } from "../../client/api";
import { kindOf } from "../../lib/kinds";
import { Link } from "../common/Link";
import { highlight, unitHref } from "../Explore/explore";
import { headlineScore, type NodeExplanation } from "./explanations";
import { ScoreBadge } from "./ScoreBadge";

interface Props {
  hits: NodeExplanation[];
  query: string;
  kinds: KindInfo[] | null;
  model: string | null;
}

export function ExplanationHits({ hits, query, kinds, model }: Props) {
  return (
    <ul className="explanation-hits" data-testid="explanation-hits">
      {hits.map((h) => {
        const href = unitHref(kinds, h.kind, h.layer, h.index, model);
        const layered = kindOf(kinds, h.kind)?.layered ?? true;
        const label = `${layered ? `L${h.layer}.` : ""}${h.kind}.${h.index}`;
        const head = headlineScore(h);
        return (
          <li key={`${h.kind}/${h.layer}/${h.index}`} data-testid="explanation-hit">
            {href ? <Link href={href} className="mono">{label}</Link> : <span className="mono">{label}</span>}{" "}
            {head && <ScoreBadge name={head[0]} score={head[1]} />}{" "}
            {h.similarity != null && (
              <span className="muted mono small" data-testid="expl-similarity" title="cosine similarity of this explanation to the search text">
                {h.similarity.toFixed(2)}
              </span>
            )}{" "}
            <span>
              {highlight(h.explanation ?? "", query).map((s, i) => (s.match ? <mark key={i}>{s.text}</mark> : <span key={i}>{s.text}</span>))}
            </span>
          </li>
        );
      })}
    </ul>
  );
}
