/** Every head of a layer at once: one small heatmap per head, drawn on a canvas (nine heads of a
 * long prompt would be hundreds of thousands of SVG cells); click one to open it. */
import { useEffect, useRef } from "react";
import { divergingColor } from "../../lib/color";
import { scaleMax } from "./PatternHeatmap";

const SIDE = 150;

interface Props {
  tokens: string[];
  heads: number[];
  patterns: number[][][];
  onPick: (head: number) => void;
}

export function SmallMultiples({ heads, patterns, onPick }: Props) {
  return (
    <div className="attention-multiples" data-testid="small-multiples">
      {heads.map((h, i) => (
        <button key={h} type="button" className="attention-multiple" data-testid="multiple" data-head={h} onClick={() => onPick(h)} title={`open head ${h}`}>
          <span className="small">head {h}</span>
          <MiniPattern pattern={patterns[i]!} />
        </button>
      ))}
    </div>
  );
}

function MiniPattern({ pattern }: { pattern: number[][] }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const ctx = ref.current?.getContext("2d");
    if (!ctx) return; // jsdom has no canvas
    const n = pattern.length;
    const cell = SIDE / Math.max(1, n);
    const max = scaleMax(pattern);
    ctx.fillStyle = "#f3f4f6";
    ctx.fillRect(0, 0, SIDE, SIDE);
    pattern.forEach((row, q) =>
      row.forEach((v, k) => {
        ctx.fillStyle = divergingColor(Math.min(v, max), max);
        ctx.fillRect(k * cell, q * cell, Math.ceil(cell), Math.ceil(cell));
      }),
    );
  }, [pattern]);
  return <canvas ref={ref} width={SIDE} height={SIDE} className="attention-mini" aria-label="attention, query by key" />;
}
