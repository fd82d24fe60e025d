/** The Maps page ("/maps"): the served dataset's prompts and units on 2-D maps (t-SNE of what fires
 * where, computed once per dataset: docs/maps.md). Colour units by layer, kind or explanation score,
 * search by explanation, label or text; click a unit for its node page, a prompt for the prompt
 * explorer. The whole view lives in the URL (components/Maps/mapsState.ts). */
import { useEffect, useMemo, useRef, useState } from "react";
import { ApiError, type KindInfo, type ModelInfo } from "../client/api";
import { computeMaps, getPromptsMap, getUnitsMap, type MapInfo, type PromptsMap, type UnitsMap } from "../client/maps";
import { ErrorBox } from "../components/common/ErrorBox";
import { Link } from "../components/common/Link";
import { explorerPromptHref, PromptLinks } from "../components/common/PromptLinks";
import { Spinner } from "../components/common/Spinner";
import { categorical, COLORS, continuous, decodeMapsState, mapsHref, matches, type MapsState, type Palette, type Tab } from "../components/Maps/mapsState";
import { Scatter } from "../components/Maps/Scatter";
import { fitBox, type ViewBox } from "../components/Maps/scatter";
import { useResource } from "../hooks/useApi";
import { navigate } from "../hooks/useLocation";
import { kindOf, unitLabel } from "../lib/kinds";
import { nodePath } from "./nodeHref";

const POLL_MS = 2000;
const COLOR_LABELS: Record<string, string> = { layer: "layer", kind: "kind", score: "explanation score", document: "document", order: "dataset order" };

/** A prompt's click: the prompt explorer on the window's text, at its first token. */
const explorerHref = (text: string) => explorerPromptHref(text, 0);

export function MapsPage({ search, model }: { search: string; model: ModelInfo | null }) {
  const s = decodeMapsState(search);
  const go = (next: Partial<MapsState>, mode: "push" | "replace" = "replace") => navigate(mapsHref({ ...s, ...next }), mode);
  const [nonce, setNonce] = useState(0);
  const res = useResource<PromptsMap | UnitsMap>(`${s.tab}:${nonce}`, (signal) => (s.tab === "prompts" ? getPromptsMap(signal) : getUnitsMap(signal)));
  const data = res.dataKey?.startsWith(s.tab + ":") ? res.data : null;
  const [computeError, setComputeError] = useState<ApiError | null>(null);

  // While the server computes this map, ask again every few seconds.
  const computing = data?.status === "computing";
  useEffect(() => {
    if (!computing) return;
    const id = window.setTimeout(() => setNonce((n) => n + 1), POLL_MS);
    return () => window.clearTimeout(id);
  }, [computing, nonce]);

  const compute = (force: boolean) => {
    setComputeError(null);
    computeMaps({ what: "both", force, seed: data?.info?.seed ?? 0 })
      .then(() => setNonce((n) => n + 1))
      .catch((e: unknown) => setComputeError(e instanceof ApiError ? e : new ApiError(0, String(e))));
  };

  return (
    <main className="maps-page" data-testid="maps-page">
      <div className="maps-head">
        <div className="maps-tabs" role="tablist">
          {(["units", "prompts"] as Tab[]).map((t) => (
            <button key={t} type="button" role="tab" aria-selected={s.tab === t} className={"maps-tab" + (s.tab === t ? " on" : "")}
              data-testid={`maps-tab-${t}`} onClick={() => t !== s.tab && navigate(mapsHref({ tab: t, color: COLORS[t][0], q: "", view: null }))}>
              {t === "units" ? "Units" : "Prompts"}
            </button>
          ))}
        </div>
        <span className="muted">
          {s.tab === "units"
            ? "each collated unit, placed by the dataset windows it fires in"
            : "each dataset window, placed by the units that fire over it"}
        </span>
      </div>
      {res.error && <ErrorBox error={res.error} onRetry={() => setNonce((n) => n + 1)} />}
      {computeError && <ErrorBox error={computeError} />}
      {!data && !res.error && <Spinner label="loading the map" />}
      {data && data.status !== "ready" && (
        <MapStatusBox data={data} onCompute={() => compute(data.status === "stale")} />
      )}
      {data && data.x.length > 0 && (
        <MapView key={s.tab} s={s} go={go} data={data} model={model} onRecompute={() => compute(true)} />
      )}
    </main>
  );
}

function MapStatusBox({ data, onCompute }: { data: PromptsMap | UnitsMap; onCompute: () => void }) {
  if (data.status === "computing")
    return (
      <div className="maps-status" data-testid="maps-status" data-status="computing">
        <Spinner label={`computing the maps in the background (${data.job.seconds ?? 0} s so far)`} />
      </div>
    );
  const why = {
    missing: "This dataset has no maps yet.",
    stale: "The stored maps were made from another version of this dataset.",
    failed: `Computing the maps failed: ${data.job.error ?? "see the server log"}.`,
  }[data.status as "missing" | "stale" | "failed"];
  return (
    <div className="maps-status" data-testid="maps-status" data-status={data.status}>
      <p>
        {why} Computing them takes about a minute per 50,000 units on 2 cores (no model run), or run{" "}
        <code>mechscope maps DATASET</code>.
      </p>
      <button type="button" className="btn" data-testid="maps-compute" onClick={onCompute}>
        Compute maps
      </button>
    </div>
  );
}

interface Derived {
  palette: Palette;
  texts: (i: number) => (string | null | undefined)[];
  label: (i: number) => string;
}

function derive(color: MapsState["color"], data: PromptsMap | UnitsMap, kinds: KindInfo[] | null): Derived {
  if ("text" in data) {
    const titles = new Map<string, number>();
    const cats = data.title.map((t) => titles.get(t) ?? (titles.set(t, titles.size), titles.size - 1));
    const palette =
      color === "order"
        ? continuous(data.window_id, 0, Math.max(0, data.window_id.length - 1), "first window", "last window")
        : {
            ...categorical(cats.map((c) => c % 10), Array.from({ length: Math.min(10, titles.size) }, (_, i) => `document ${i + 1}`)),
            legend: [{ label: titles.size === 1 ? "1 document" : `${titles.size} documents${titles.size > 10 ? " (colours repeat)" : ""}`, color: "#4e79a7" }],
          };
    return { palette, texts: (i) => [data.text[i], data.title[i]], label: (i) => `window ${data.window_id[i]}` };
  }
  const u = data as UnitsMap;
  const name = (i: number) => u.kinds[u.kind[i]!]!;
  const label = (i: number) => unitLabel(kinds, name(i), u.layer[i]!, u.index[i]!);
  let palette: Palette;
  if (color === "kind") {
    // In the registry's order (GET /api/model); kinds the model does not list come last.
    const order = [...(kinds ?? []).map((k) => k.name).filter((k) => u.kinds.includes(k)), ...u.kinds.filter((k) => !kindOf(kinds, k))];
    const pos = u.kinds.map((k) => order.indexOf(k));
    palette = categorical(u.kind.map((k) => pos[k]!), order.map((k) => kindOf(kinds, k)?.label ?? k));
  } else if (color === "score") {
    const vals = u.score.filter((v): v is number => v != null);
    const lo = vals.length ? Math.min(...vals) : 0, hi = vals.length ? Math.max(...vals) : 1;
    palette = continuous(u.score, lo, hi, `score ${lo.toFixed(2)}`, `score ${hi.toFixed(2)}`);
  } else {
    const layered = u.kinds.map((k) => kindOf(kinds, k)?.layered ?? true);
    const maxLayer = u.layer.reduce((m, l) => Math.max(m, l), 0);
    palette = continuous(u.layer.map((l, i) => (layered[u.kind[i]!] ? l : null)), 0, maxLayer, "layer 0", `layer ${maxLayer}`);
  }
  return { palette, label, texts: (i) => [label(i), u.explanation[i], name(i)] };
}

function MapView({ s, go, data, model, onRecompute }: {
  s: MapsState; go: (next: Partial<MapsState>, mode?: "push" | "replace") => void; data: PromptsMap | UnitsMap; model: ModelInfo | null; onRecompute: () => void;
}) {
  const kinds = model?.kinds ?? null;
  // The canvas fills the window's height below the toolbar (at least 420 px).
  const [height] = useState(() => Math.max(420, Math.round(window.innerHeight - 150)));
  const xs = useMemo(() => Float64Array.from(data.x), [data.x]);
  const ys = useMemo(() => Float64Array.from(data.y), [data.y]);
  const fit = useMemo(() => fitBox(xs, ys), [xs, ys]);
  const [live, setLive] = useState<ViewBox | null>(null);
  const view = live ?? s.view ?? fit;
  const d = useMemo(() => derive(s.color, data, kinds), [s.color, data, kinds]);
  const [draft, setDraft] = useState(s.q);
  useEffect(() => setDraft(s.q), [s.q]);
  // The search reaches the URL (and the highlighting) once typing pauses.
  const goRef = useRef(go);
  goRef.current = go;
  useEffect(() => {
    if (draft === s.q) return;
    const id = window.setTimeout(() => goRef.current({ q: draft }), 250);
    return () => window.clearTimeout(id);
  }, [draft, s.q]);
  const highlight = useMemo(() => matches(xs.length, s.q, d.texts), [xs.length, s.q, d]);
  const nMatch = highlight ? highlight.reduce((a, b) => a + b, 0) : null;
  const [focus, setFocus] = useState<number>(-1);
  const isUnits = !("text" in data);
  const href = (i: number): string => {
    if ("text" in data) return explorerHref(data.text[i]!);
    const u = data as UnitsMap;
    return nodePath(u.kinds[u.kind[i]!]!, u.layer[i]!, u.index[i]!, model?.name ?? null);
  };

  return (
    <>
      <div className="maps-toolbar">
        <label>
          colour by{" "}
          <select data-testid="maps-color" value={s.color} onChange={(e) => go({ color: e.target.value as MapsState["color"] })}>
            {COLORS[s.tab].map((c) => (
              <option key={c} value={c}>
                {COLOR_LABELS[c]}
              </option>
            ))}
          </select>
        </label>
        <input className="maps-search" data-testid="maps-search" type="search" value={draft} onChange={(e) => setDraft(e.target.value)}
          placeholder={isUnits ? "search explanations or labels (L3.N17)" : "search the prompts' text"} />
        {nMatch !== null && (
          <span className="muted" data-testid="maps-matches">
            {nMatch.toLocaleString()} of {xs.length.toLocaleString()} match
          </span>
        )}
        <button type="button" className="btn small" data-testid="maps-reset" onClick={() => go({ view: null })}>
          reset view
        </button>
        <span className="spacer" />
        <Legend palette={d.palette} />
      </div>
      <div className="maps-body">
        <Scatter
          height={height}
          xs={xs} ys={ys} palette={d.palette} highlight={highlight} view={view}
          onView={(box, done) => {
            if (done) {
              setLive(null);
              go({ view: box });
            } else setLive(box);
          }}
          onHover={(i) => i >= 0 && setFocus(i)}
          onPick={(i) => navigate(href(i))}
          tooltip={(i) => <PointSummary data={data} i={i} label={d.label(i)} kinds={kinds} brief />}
        />
        <aside className="maps-side" data-testid="maps-details">
          {focus >= 0 && focus < xs.length ? (
            <>
              <PointSummary data={data} i={focus} label={d.label(focus)} kinds={kinds} />
              {"text" in data ? (
                <div className="maps-links">
                  <PromptLinks prompt={data.text[focus]!} pos={0} />
                </div>
              ) : (
                <div className="maps-links">
                  <Link href={href(focus)} data-testid="maps-open-node">open node page</Link>
                </div>
              )}
            </>
          ) : (
            <p className="muted">Hover a point for its details; click it to open its {isUnits ? "node page" : "prompt in the prompt explorer"}. Scroll to zoom, drag to pan.</p>
          )}
          {data.info && <MapFacts info={data.info} onRecompute={onRecompute} />}
        </aside>
      </div>
    </>
  );
}

function PointSummary({ data, i, label, kinds, brief = false }: { data: PromptsMap | UnitsMap; i: number; label: string; kinds: KindInfo[] | null; brief?: boolean }) {
  if ("text" in data) {
    const text = data.text[i]!;
    return (
      <div className="maps-point">
        <strong>{data.title[i] || "untitled"}</strong> <span className="muted">{label}</span>
        <div className="maps-text">{brief && text.length > 160 ? text.slice(0, 160) + "…" : text}</div>
      </div>
    );
  }
  const u = data as UnitsMap;
  const score = u.score[i];
  const kindLabel = kindOf(kinds, u.kinds[u.kind[i]!]!)?.label ?? u.kinds[u.kind[i]!];
  return (
    <div className="maps-point">
      <strong>{label}</strong> <span className="muted">{kindLabel}</span>
      <div className="maps-text">{u.explanation[i] ?? <span className="muted">no explanation yet</span>}</div>
      {score != null && <div className="muted">embedding score {score.toFixed(3)}</div>}
    </div>
  );
}

function Legend({ palette }: { palette: Palette }) {
  return (
    <span className="maps-legend" data-testid="maps-legend">
      {palette.legend.map((l) => (
        <span key={l.label} className="maps-legend-item">
          <span className="maps-swatch" style={{ background: l.color }} />
          {l.label}
        </span>
      ))}
    </span>
  );
}

function MapFacts({ info, onRecompute }: { info: MapInfo; onRecompute: () => void }) {
  return (
    <div className="maps-facts muted" data-testid="maps-info">
      {info.rows.toLocaleString()} points from a {info.rows.toLocaleString()} x {info.cols.toLocaleString()} activation matrix ({info.nnz.toLocaleString()} non-zero);{" "}
      {info.method}, {info.dims} SVD dimensions, perplexity {info.perplexity != null ? Number(info.perplexity.toFixed(2)) : "n/a"}, seed {info.seed}; computed in {info.seconds.toFixed(1)} s on {info.created.replace("T", " ")}.{" "}
      <button type="button" className="btn small" data-testid="maps-recompute" onClick={onRecompute}>
        recompute
      </button>
    </div>
  );
}
