/** One head detector's scores as a layer × head grid, coloured by score (0..1). Hover a cell: the
 * head and its score; click: that head's pattern on the detectors' sequence. */
import { divergingColor } from "../../lib/color";
import { HoverTip, useTip } from "./HoverTip";
import { bestHead } from "./attentionState";

const CELL = 13;
const L = 26;
const T = 16;

interface Props {
  name: string;
  label: string;
  description: string;
  scores: number[][];
  /** the head shown on the page, outlined */
  selected: { layer: number; head: number } | null;
  onPick: (layer: number, head: number) => void;
}

export function DetectorGrid({ name, label, description, scores, selected, onPick }: Props) {
  const { tip, show, hide } = useTip();
  const layers = scores.length;
  const heads = scores[0]?.length ?? 0;
  const best = bestHead(scores);
  return (
    <figure className="attention-grid" data-testid="detector-grid" data-detector={name}>
      <figcaption title={description}>
        <strong>{label}</strong>
        {best && (
          <span className="muted small" data-testid="detector-best" data-layer={best.layer} data-head={best.head} data-score={best.score.toFixed(4)}>
            {" "}best L{best.layer}.H{best.head} {best.score.toFixed(2)}
          </span>
        )}
      </figcaption>
      <svg width={L + heads * CELL + 2} height={T + layers * CELL + 2} role="img" aria-label={`${label} score by layer and head`} onMouseLeave={hide}>
        {Array.from({ length: heads }, (_, h) => (
          <text key={h} x={L + h * CELL + CELL / 2} y={T - 4} textAnchor="middle" className="attention-axis">{h}</text>
        ))}
        {scores.map((row, layer) => (
          <g key={layer}>
            <text x={L - 4} y={T + layer * CELL + CELL / 2} textAnchor="end" dominantBaseline="central" className="attention-axis">{layer}</text>
            {row.map((v, head) => (
              <rect key={head} x={L + head * CELL} y={T + layer * CELL} width={CELL - 1} height={CELL - 1} fill={divergingColor(v, 1)}
                data-testid="detector-cell" data-layer={layer} data-head={head} data-score={v.toFixed(4)}
                className={selected && selected.layer === layer && selected.head === head ? "on" : ""}
                onMouseMove={(e) => show(e, [`L${layer}.H${head}`, `${label} score ${v.toFixed(3)}`, "click: its pattern on this sequence"])}
                onClick={() => onPick(layer, head)} />
            ))}
          </g>
        ))}
      </svg>
      <HoverTip tip={tip} />
    </figure>
  );
}
