/** A score as a small badge; hover tells the score's name, n and 95% interval. */
import { scoreTitle, scoreValue, type ExplanationScore } from "./explanations";

export function ScoreBadge({ name, score, showName = false }: { name: string; score: ExplanationScore; showName?: boolean }) {
  const v = score.value;
  const tone = v == null ? "absent" : v >= 0.5 ? "good" : v >= 0.2 ? "fair" : "poor";
  return (
    <span className={`score-badge ${tone}`} title={scoreTitle(name, score)} data-testid="score-badge" data-score={name}>
      {showName ? `${name} ` : ""}
      {scoreValue(score)}
    </span>
  );
}
