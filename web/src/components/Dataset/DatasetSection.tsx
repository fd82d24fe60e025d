/** What makes a unit (neuron, head, latent, ...) fire over the collated corpus: statistics, histogram and example windows. */
import { useEffect, useRef, useState } from "react";
import { post, type KindInfo, type Schemas } from "../../client/api";
import { useResource } from "../../hooks/useApi";
import { useDatasetStatus, type DatasetStatus } from "../../hooks/useDatasetStatus";
import { maxAbs } from "../../lib/color";
import { ErrorBox } from "../common/ErrorBox";
import { Spinner } from "../common/Spinner";
import { DatasetStatusLine } from "./DatasetStatusLine";
import { ExampleList, type HeadRef } from "./ExampleList";
import { Histogram, StatsTable } from "./Histogram";

export type { DatasetStatus } from "../../hooks/useDatasetStatus";
type DatasetNode = Schemas["DatasetNode"];

const TOP_N = 20;

interface Props {
  kind: KindInfo;
  /** 0 for a kind without layers */
  layer: number;
  index: number;
  /** how often GET /api/dataset is polled while the dataset is being built */
  pollMs?: number;
}

export function DatasetSection({ kind: info, layer, index, pollMs = 3000 }: Props) {
  const kind = info.name;
  const [gen, setGen] = useState(0);
  const r = useResource<DatasetNode>(JSON.stringify({ kind, layer, index, gen }), (signal) =>
    post("/api/dataset/node", { kind, layer, index, n: TOP_N }, signal),
  );
  const fetched = r.data?.status ?? null;
  // GET /api/dataset, shared with the page and polled while the dataset is being built
  const live = useDatasetStatus(true, pollMs).status;
  const status = fetched?.status === "done" ? fetched : (live ?? fetched);
  // The preview the examples come from (or were last asked for): a newer one, or the finished
  // dataset, refetches them once.
  const asked = useRef<string | null>(null);
  useEffect(() => {
    if (!fetched || !live || fetched.status === "done") return;
    const version = (s: DatasetStatus) => (s.status === "done" ? "done" : s.preview_tokens != null ? `preview:${s.preview_tokens}` : null);
    const v = version(live);
    if (v === null || v === version(fetched) || v === asked.current) return;
    asked.current = v;
    setGen((g) => g + 1);
  }, [live, fetched]);

  return (
    <section className="box dataset" data-testid="dataset-section">
      <div className="box-head">
        <h3>Dataset examples</h3>
        {status?.corpus && <span className="muted small">corpus: {status.corpus}</span>}
        {r.loading && <Spinner label="loading examples" />}
      </div>
      {r.error && <ErrorBox error={r.error} />}
      {status && status.status !== "done" && (
        <DatasetStatusLine s={status} shown="The examples below" waiting="The first examples appear after its first shard." />
      )}
      {r.data?.stats && <DatasetBody d={r.data} attribution={status?.attribution ?? null} head={info.pattern ? { layer, head: index } : null} />}
    </section>
  );
}

function DatasetBody({ d, attribution, head }: { d: DatasetNode; attribution: string | null; head: HeadRef | null }) {
  const [tab, setTab] = useState<"random" | "quantile" | null>("random");
  const top = d.top ?? [];
  const random = d.random ?? [];
  const quantile = d.quantile ?? [];
  const all = [...top, ...random, ...quantile];
  const max = maxAbs(all.flatMap((e) => e.acts ?? [])) || (d.stats?.max_activation ?? 0);
  const more = tab === "random" ? random : tab === "quantile" ? quantile : [];
  return (
    <div className="dataset-body">
      {d.stats ? (
        <div className="dataset-stats">
          <StatsTable s={d.stats} />
          <Histogram s={d.stats} />
        </div>
      ) : (
        <p className="muted small">No statistics for this node.</p>
      )}
      <h4>Top {top.length} examples <span className="muted small">(colour: activation at each token, scale ±{max.toFixed(2)}; outlined: the peak{top.some((e) => e.key_position != null) ? "; orange underline: its strongest key" : ""})</span></h4>
      <ExampleList examples={top} max={max} testId="top-examples" head={head} />
      <div className="ex-tabs">
        <span className="seg" role="tablist">
          <button type="button" role="tab" aria-selected={tab === "random"} className={tab === "random" ? "on" : ""} onClick={() => setTab(tab === "random" ? null : "random")}>
            Random examples ({random.length})
          </button>
          <button type="button" role="tab" aria-selected={tab === "quantile"} className={tab === "quantile" ? "on" : ""} onClick={() => setTab(tab === "quantile" ? null : "quantile")}>
            By quantile ({quantile.length})
          </button>
        </span>
        <span className="muted small">
          {tab === "random" ? "windows drawn uniformly from the corpus" : tab === "quantile" ? "one window per quantile of the node's window peaks, labelled with its percentile range" : "click a tab to show more samples"}
        </span>
      </div>
      {tab && <ExampleList examples={more} max={max} testId={`${tab}-examples`} quantiles={tab === "quantile"} head={head} />}
      {attribution && <p className="attribution muted small" data-testid="attribution">Corpus: {attribution}</p>}
    </div>
  );
}
