/** The attribution graph drawn in SVG: one column per prompt token, one row per layer (embeddings at
 * the bottom, logits on top). Edges are lines, as wide as |weight| (relative to the largest), blue
 * for positive and red for negative; the clicked node's edges are drawn on top and the rest fade. */
import { memo, useEffect, useMemo, useRef, useState, type MouseEvent } from "react";
import { divergingColor } from "../../lib/color";
import { fmt, pct, showToken, signed } from "../../lib/format";
import { layoutGraph, type Layout, type LayoutItem } from "../../lib/graphLayout";
import type { GraphResponse, GraphView, ViewEdge, ViewNode } from "../../lib/graphView";

interface Props {
  graph: GraphResponse;
  view: GraphView;
  clicked: string | null;
  pinned: Set<string>;
  /** the explained edge, `source>sink` */
  selectedEdge: string | null;
  onNode: (key: string, pin: boolean) => void;
  onEdge: (e: ViewEdge) => void;
  onBackground: () => void;
}

const CHAR = 6.6; // px per character of the 11px monospace labels
const clip = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + "…" : s);
const tokenText = (v: ViewNode) => clip(showToken(v.label), 14);
const logitText = (v: ViewNode) => clip(showToken(v.label), 10);
const superText = (v: ViewNode) => clip(v.label, 22);

/** The box a node is drawn in. */
export function nodeSize(v: ViewNode): { w: number; h: number } {
  switch (v.type) {
    case "token":
      return { w: Math.max(30, tokenText(v).length * CHAR + 12), h: 20 };
    case "logit":
      return { w: Math.max(40, logitText(v).length * CHAR + 12), h: 30 };
    case "supernode":
      return { w: superText(v).length * 6.2 + 16, h: 16 };
    case "error":
      return { w: 11, h: 11 };
    default:
      return { w: 13, h: 13 };
  }
}

interface Hover {
  key: string;
  /** the pointer in the scrolled content */
  x: number;
  y: number;
  flipX: boolean;
  flipY: boolean;
}

const TYPE_ORDER = { supernode: 0, latent: 1, error: 2, token: 3, logit: 3 };

export function GraphCanvas({ graph, view, clicked, pinned, selectedEdge, onNode, onEdge, onBackground }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(1000);
  useEffect(() => {
    const el = box.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    setWidth(el.clientWidth || 1000);
    return () => ro.disconnect();
  }, []);

  const nPos = graph.prompt_tokens.length;
  const layout = useMemo(() => {
    const items: LayoutItem[] = view.nodes.map((v) => ({
      key: v.key, row: v.row, pos: v.pos, width: nodeSize(v).w,
      // logits stay in the server's order (the explained one first); the rest by influence
      order: v.type === "logit" ? 0 : TYPE_ORDER[v.type] * 10 - v.influence,
    }));
    return layoutGraph(items, nPos, graph.n_layers, { width: width - 2 });
  }, [view, nPos, graph.n_layers, width]);

  // the clicked node, or the supernode it is drawn in
  const focus = clicked === null ? null : view.byKey.has(clicked) ? clicked : (view.memberOf.get(clicked) ?? null);

  // A new graph wider or taller than the box: show the clicked node, or else the last position
  // and the logits (the right end).
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const p = focus ? layout.at.get(focus) : undefined;
    if (p) {
      el.scrollLeft = p.x - el.clientWidth / 2;
      el.scrollTop = p.y - el.clientHeight / 2;
    } else el.scrollLeft = el.scrollWidth;
  }, [graph]); // eslint-disable-line react-hooks/exhaustive-deps

  const [hover, setHover] = useState<Hover | null>(null);
  const find = (t: EventTarget) => (t as Element).closest?.("[data-key],[data-edge]") as SVGElement | null;
  const onMove = (e: MouseEvent) => {
    const el = find(e.target);
    const key = el?.dataset.key ?? (el?.dataset.edge ? "edge:" + el.dataset.edge : null);
    const r = box.current?.getBoundingClientRect();
    if (!key || !r || !box.current) return setHover(null);
    // near the right or bottom edge the tooltip goes to the other side of the pointer
    const flipX = e.clientX - r.left > r.width - 340;
    const flipY = e.clientY - r.top > r.height - 160;
    setHover({ key, x: e.clientX - r.left + box.current.scrollLeft, y: e.clientY - r.top + box.current.scrollTop, flipX, flipY });
  };
  const edgesByKey = useMemo(() => new Map(view.edges.map((e) => [e.key, e])), [view]);
  const onClick = (e: MouseEvent) => {
    const el = find(e.target);
    if (el?.dataset.key) onNode(el.dataset.key, e.ctrlKey || e.metaKey);
    else if (el?.dataset.edge) {
      const edge = edgesByKey.get(el.dataset.edge);
      if (edge) onEdge(edge);
    } else onBackground();
  };

  return (
    <div className="graph-scroll" ref={box} onMouseLeave={() => setHover(null)}>
      <svg className="graph-svg" width={layout.width} height={layout.height} data-testid="graph-svg"
        onMouseMove={onMove} onClick={onClick} role="img" aria-label="attribution graph">
        <Grid layout={layout} tokens={graph.prompt_tokens} nLayers={graph.n_layers} />
        <Edges view={view} layout={layout} focus={focus} selected={selectedEdge} />
        <Nodes view={view} layout={layout} focus={focus} pinned={pinned} />
      </svg>
      {hover && <Tooltip hover={hover} view={view} edges={edgesByKey} tokens={graph.prompt_tokens} pinned={pinned} />}
      {view.edges.length > MAX_DRAWN && (
        <div className="graph-note muted small" data-testid="edges-capped">
          the strongest {MAX_DRAWN.toLocaleString("en")} of {view.edges.length.toLocaleString("en")} links are drawn; a clicked node's all
        </div>
      )}
    </div>
  );
}

const Grid = memo(function Grid({ layout, tokens, nLayers }: { layout: Layout; tokens: string[]; nLayers: number }) {
  const top = layout.rows[nLayers + 1]!;
  const bottom = layout.rows[0]!;
  const y0 = top.y - top.height / 2;
  const y1 = bottom.y + bottom.height / 2;
  const x0 = layout.columns[0]?.x ?? 0;
  const x1 = layout.columns.length ? layout.columns[layout.columns.length - 1]!.x + layout.columns[layout.columns.length - 1]!.width : 0;
  return (
    <g className="graph-grid">
      {layout.columns.map((c) => (
        <g key={c.pos}>
          {c.pos % 2 === 1 && <rect className="band" x={c.x} y={y0} width={c.width} height={y1 - y0} />}
          <text className="pos-label" x={c.x + c.width / 2} y={y1 + 11} textAnchor="middle">
            <title>{JSON.stringify(tokens[c.pos] ?? "")}</title>
            {c.pos}
          </text>
        </g>
      ))}
      {layout.rows.map((r) => {
        const label = r.row === 0 ? "emb" : r.row === nLayers + 1 ? "logits" : `L${r.row - 1}`;
        return (
          <g key={r.row}>
            {r.row > 0 && r.row <= nLayers && <line className="row-line" x1={x0} x2={x1} y1={r.y} y2={r.y} />}
            <text className={"row-label" + (r.row > 0 && r.row <= nLayers && (r.row - 1) % 5 !== 0 ? " minor" : "")}
              x={x0 - 6} y={r.y + 3.5} textAnchor="end">
              {label}
            </text>
          </g>
        );
      })}
    </g>
  );
});

const strokeOf = (w: number) => divergingColor(w > 0 ? 1 : -1, 1);
/** Links drawn besides the clicked node's: the strongest ones (a long prompt's graph has tens of
 * thousands, which would only paint the page purple and slow every click). */
export const MAX_DRAWN = 1500;

const Edges = memo(function Edges({ view, layout, focus, selected }: { view: GraphView; layout: Layout; focus: string | null; selected: string | null }) {
  const lit: ViewEdge[] = [];
  let rest: ViewEdge[] = [];
  for (const e of view.edges) (e.source === focus || e.target === focus || e.key === selected ? lit : rest).push(e);
  rest = rest.slice(-MAX_DRAWN); // view.edges is weakest first
  const line = (e: ViewEdge, cls: string, opacity: number | undefined) => {
    const a = layout.at.get(e.source);
    const b = layout.at.get(e.target);
    if (!a || !b) return null;
    const t = Math.abs(e.weight) / view.maxWeight;
    return (
      <line key={e.key} className={cls} x1={a.x} y1={a.y} x2={b.x} y2={b.y} stroke={strokeOf(e.weight)}
        strokeWidth={0.6 + 4 * t} strokeOpacity={opacity} data-edge={e.key} data-testid="graph-edge"
        data-source={e.source} data-target={e.target} data-weight={e.weight} />
    );
  };
  return (
    <g className={"graph-edges" + (focus || selected ? " focused" : "")}>
      <g className="faint">
        {rest.map((e) => line(e, "edge", focus || selected ? undefined : 0.12 + 0.7 * (Math.abs(e.weight) / view.maxWeight)))}
      </g>
      <g className="lit">
        {lit.map((e) => {
          if (e.key !== selected) return line(e, "edge lit", undefined);
          const a = layout.at.get(e.source);
          const b = layout.at.get(e.target);
          const w = 0.6 + 4 * (Math.abs(e.weight) / view.maxWeight);
          // the explained edge: drawn last, on a dark outline
          return a && b ? <line key={e.key + "-outline"} className="edge-outline" x1={a.x} y1={a.y} x2={b.x} y2={b.y} strokeWidth={w + 4} /> : null;
        })}
        {lit.filter((e) => e.key === selected).map((e) => line(e, "edge lit selected", undefined))}
      </g>
      <g className="hits">
        {lit.map((e) => {
          const a = layout.at.get(e.source);
          const b = layout.at.get(e.target);
          return a && b ? <line key={e.key} className="edge-hit" x1={a.x} y1={a.y} x2={b.x} y2={b.y} data-edge={e.key} data-testid="graph-edge-hit" /> : null;
        })}
      </g>
    </g>
  );
});

const Nodes = memo(function Nodes({ view, layout, focus, pinned }: { view: GraphView; layout: Layout; focus: string | null; pinned: Set<string> }) {
  const maxLatent = view.nodes.reduce((m, v) => (v.type === "latent" ? Math.max(m, Math.abs(v.influence)) : m), 0) || 1;
  return (
    <g className="graph-nodes">
      {view.nodes.map((v) => {
        const p = layout.at.get(v.key);
        if (!p) return null;
        const { w, h } = nodeSize(v);
        const on = v.key === focus;
        const pin = v.type === "supernode" ? v.members.some((m) => pinned.has(m.id)) : pinned.has(v.key);
        const cls = `gnode t-${v.type}${pin ? " pinned" : ""}${on ? " clicked" : ""}`;
        let shape: React.ReactNode;
        if (v.type === "latent") {
          const r = 3.5 + 3 * Math.sqrt(Math.abs(v.influence) / maxLatent);
          shape = (
            <>
              {on && <circle className="halo" r={r + 4} />}
              <circle r={r} />
            </>
          );
        } else if (v.type === "error") {
          const d = w / 2;
          shape = (
            <>
              {on && <circle className="halo" r={d + 4} />}
              <path d={`M0 ${-d} L${d} 0 L0 ${d} L${-d} 0 Z`} />
            </>
          );
        } else {
          const text = v.type === "token" ? tokenText(v) : v.type === "logit" ? logitText(v) : superText(v);
          shape = (
            <>
              {on && <rect className="halo" x={-w / 2 - 3} y={-h / 2 - 3} width={w + 6} height={h + 6} rx={5} />}
              <rect x={-w / 2} y={-h / 2} width={w} height={h} rx={v.type === "supernode" ? 8 : 3} />
              <text y={v.type === "logit" ? -2 : 3.5} textAnchor="middle">{text}</text>
              {v.type === "logit" && <text className="sub" y={10} textAnchor="middle">{pct(v.node?.probability)}</text>}
            </>
          );
        }
        return (
          <g key={v.key} className={cls} transform={`translate(${p.x},${p.y})`} data-key={v.key} data-type={v.type}
            data-pos={v.pos} data-testid="graph-node" data-pinned={pin ? "true" : "false"}>
            {shape}
          </g>
        );
      })}
    </g>
  );
});

function Tooltip({ hover, view, edges, tokens, pinned }: {
  hover: Hover;
  view: GraphView;
  edges: Map<string, ViewEdge>;
  tokens: string[];
  pinned: Set<string>;
}) {
  const label = (key: string) => {
    const v = view.byKey.get(key);
    return v ? (v.type === "token" || v.type === "logit" ? showToken(v.label) : v.label) : key;
  };
  let body: React.ReactNode = null;
  if (hover.key.startsWith("edge:")) {
    const e = edges.get(hover.key.slice(5));
    if (!e) return null;
    body = (
      <>
        <div><b>{label(e.source)}</b> → <b>{label(e.target)}</b></div>
        <div className="mono">weight {signed(e.weight)}{e.count > 1 ? ` (sum of ${e.count} links)` : ""}</div>
      </>
    );
  } else {
    const v = view.byKey.get(hover.key);
    if (!v) return null;
    const n = v.node;
    body = (
      <>
        <div><b>{v.type === "token" || v.type === "logit" ? showToken(v.label) : v.label}</b> <span className="muted">{v.type}</span></div>
        {n && <div className="mono">{n.id}</div>}
        {n && <div>position {n.pos} <span className="mono">{showToken(tokens[n.pos] ?? "")}</span></div>}
        {n?.activation != null && <div>activation <span className="mono">{fmt(n.activation)}</span></div>}
        <div>influence <span className="mono">{fmt(v.influence)}</span></div>
        {n?.probability != null && <div>probability <span className="mono">{pct(n.probability)}</span></div>}
        {v.type === "supernode" && <div>{v.members.length} nodes: {v.members.map((m) => m.label).join(", ")}</div>}
        {n && pinned.has(n.id) && <div className="muted">pinned</div>}
      </>
    );
  }
  return (
    <div className="graph-tooltip" data-testid="graph-tooltip"
      style={{ left: hover.x + (hover.flipX ? -14 : 14), top: hover.y + (hover.flipY ? -12 : 12),
        transform: `translate(${hover.flipX ? "-100%" : "0"}, ${hover.flipY ? "-100%" : "0"})` }}>
      {body}
    </div>
  );
}
