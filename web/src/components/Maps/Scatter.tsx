/** A canvas scatter for tens of thousands of points: one pass per colour, a grid for hover
 * hit-testing, zoom with the wheel around the cursor, pan by dragging, click to pick a point.
 * The canvas states its current transform (data-transform="s,ox,oy": px = ox + x*s) for tests. */
import { useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import type { Palette } from "./mapsState";
import { buildGrid, nearest, panBy, toData, transformOf, visibleBox, zoomAt, type Size, type ViewBox } from "./scatter";

interface Props {
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
  palette: Palette;
  /** 1 for points the search matches (drawn on top; the others dimmed); null: no search */
  highlight: Uint8Array | null;
  view: ViewBox;
  /** the view while dragging or zooming (`done` false) and once it settles (`done` true) */
  onView: (box: ViewBox, done: boolean) => void;
  onHover: (i: number) => void;
  onPick: (i: number) => void;
  tooltip: (i: number) => ReactNode;
  height?: number;
}

const HIT_PX = 8; // how near (pixels) the pointer must be to a point to hover it
const CLICK_PX = 4; // a press that moves less than this is a click, not a drag

export function Scatter({ xs, ys, palette, highlight, view, onView, onHover, onPick, tooltip, height = 620 }: Props) {
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [size, setSize] = useState<Size>({ width: 800, height });
  const [hover, setHover] = useState<{ i: number; px: number; py: number } | null>(null);
  const drag = useRef<{ x: number; y: number; box: ViewBox; moved: boolean } | null>(null);
  const live = useRef({ view, size, onView });
  live.current = { view, size, onView };
  const grid = useMemo(() => buildGrid(xs, ys), [xs, ys]);
  // Points by colour: one fillStyle per colour per frame.
  const buckets = useMemo(() => {
    const out: number[][] = palette.colors.map(() => []);
    for (let i = 0; i < palette.index.length; i++) out[palette.index[i]!]?.push(i);
    return out;
  }, [palette]);

  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => ro.disconnect();
  }, [height]);

  const t = transformOf(view, size);
  useEffect(() => {
    const c = canvas.current;
    const ctx = c?.getContext("2d");
    if (!c || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(size.width * dpr);
    c.height = Math.round(size.height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, size.width, size.height);
    const n = xs.length;
    const r = n > 20000 ? 1.25 : n > 2000 ? 1.75 : 3;
    const draw = (pass: "dim" | "all" | "match") => {
      const big = pass === "match" ? r + 0.75 : r;
      ctx.globalAlpha = pass === "dim" ? 0.12 : 0.85;
      buckets.forEach((idx, ci) => {
        ctx.fillStyle = palette.colors[ci]!;
        ctx.beginPath();
        for (const i of idx) {
          if (pass !== "all" && (highlight![i] === 1) !== (pass === "match")) continue;
          const px = t.ox + xs[i]! * t.s, py = t.oy + ys[i]! * t.s;
          if (px < -4 || py < -4 || px > size.width + 4 || py > size.height + 4) continue;
          ctx.rect(px - big, py - big, 2 * big, 2 * big);
        }
        ctx.fill();
      });
    };
    if (highlight) {
      draw("dim");
      draw("match");
    } else draw("all");
    ctx.globalAlpha = 1;
  }, [xs, ys, buckets, palette, highlight, t.s, t.ox, t.oy, size]);

  // The wheel needs a non-passive listener to keep the page from scrolling.
  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    let settle = 0;
    const wheel = (e: WheelEvent) => {
      e.preventDefault();
      const { view: v, size: s, onView: cb } = live.current;
      const rect = c.getBoundingClientRect();
      const box = zoomAt(v, s, e.clientX - rect.left, e.clientY - rect.top, Math.exp(-e.deltaY * 0.0015));
      cb(box, false);
      window.clearTimeout(settle);
      settle = window.setTimeout(() => live.current.onView(live.current.view, true), 250);
    };
    c.addEventListener("wheel", wheel, { passive: false });
    return () => {
      c.removeEventListener("wheel", wheel);
      window.clearTimeout(settle);
    };
  }, []);

  const at = (e: React.MouseEvent) => {
    const rect = canvas.current!.getBoundingClientRect();
    return { px: e.clientX - rect.left, py: e.clientY - rect.top };
  };
  const pick = (px: number, py: number) => {
    const [x, y] = toData(t, px, py);
    return nearest(grid, x, y, HIT_PX / t.s, highlight ? (i) => highlight[i] === 1 : undefined);
  };
  const hoverAt = (px: number, py: number) => {
    const i = pick(px, py);
    if (i !== (hover?.i ?? -1)) onHover(i);
    setHover(i < 0 ? null : { i, px, py });
  };

  const hp = hover ? [t.ox + xs[hover.i]! * t.s, t.oy + ys[hover.i]! * t.s] : null;
  return (
    <div className="maps-scatter" ref={wrap} style={{ height }}>
      <canvas
        ref={canvas}
        data-testid="maps-canvas"
        data-points={xs.length}
        data-transform={`${t.s},${t.ox},${t.oy}`}
        data-hover={hover?.i ?? -1}
        style={{ width: size.width, height: size.height, cursor: drag.current?.moved ? "grabbing" : hover ? "pointer" : "grab" }}
        onMouseDown={(e) => {
          if (e.button !== 0) return;
          const { px, py } = at(e);
          drag.current = { x: px, y: py, box: visibleBox(view, size), moved: false };
        }}
        onMouseMove={(e) => {
          const { px, py } = at(e);
          const d = drag.current;
          if (d && (e.buttons & 1) === 1) {
            if (!d.moved && Math.hypot(px - d.x, py - d.y) < CLICK_PX) return;
            d.moved = true;
            setHover(null);
            onView(panBy(d.box, size, px - d.x, py - d.y), false);
            return;
          }
          hoverAt(px, py);
        }}
        onMouseUp={(e) => {
          const d = drag.current;
          drag.current = null;
          if (!d) return;
          if (d.moved) {
            onView(live.current.view, true);
            return;
          }
          const { px, py } = at(e);
          const i = pick(px, py);
          if (i >= 0) onPick(i);
        }}
        onMouseLeave={() => {
          if (drag.current?.moved) onView(live.current.view, true);
          drag.current = null;
          setHover(null);
        }}
      />
      {hover && hp && (
        <>
          <div className="maps-ring" style={{ left: hp[0]! - 6, top: hp[1]! - 6 }} />
          <div
            className="maps-tooltip"
            data-testid="maps-tooltip"
            style={{ left: Math.min(hover.px + 14, size.width - 320), top: Math.min(hover.py + 14, height - 120) }}
          >
            {tooltip(hover.i)}
          </div>
        </>
      )}
    </div>
  );
}
