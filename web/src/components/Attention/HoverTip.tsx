/** A tooltip that follows the mouse: what the Attention page's heatmaps and grids show on hover. */
import { useState } from "react";

export interface Tip {
  x: number;
  y: number;
  lines: string[];
}

export function useTip() {
  const [tip, setTip] = useState<Tip | null>(null);
  const show = (e: React.MouseEvent, lines: string[]) => setTip({ x: e.clientX, y: e.clientY, lines });
  const hide = () => setTip(null);
  return { tip, show, hide };
}

export function HoverTip({ tip }: { tip: Tip | null }) {
  if (!tip) return null;
  return (
    <div className="attention-tip" data-testid="attention-tip" style={{ left: tip.x + 12, top: tip.y + 12 }}>
      {tip.lines.map((l, i) => (
        <div key={i} className={i === 0 ? "attention-tip-head" : undefined}>
          {l}
        </div>
      ))}
    </div>
  );
}
