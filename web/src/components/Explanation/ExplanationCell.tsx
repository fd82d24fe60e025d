/** The node table's explanation cell: the text, cut to fit, and its headline score as a badge. */
import { headlineScore, type NodeExplanation } from "./explanations";
import { ScoreBadge } from "./ScoreBadge";

export function ExplanationCell({ e }: { e: NodeExplanation | undefined }) {
  if (!e) return <td className="explanation-cell muted">–</td>;
  const head = headlineScore(e);
  return (
    <td className="explanation-cell" data-testid="explanation-cell">
      {head && <ScoreBadge name={head[0]} score={head[1]} />}{" "}
      <span className="explanation-text" title={`${e.explanation ?? e.failure ?? ""} (${e.explainer}: ${e.backend}, ${e.model})`}>
        {e.explanation ?? <span className="muted">failed: {e.failure}</span>}
      </span>
    </td>
  );
}
