/** A clicked latent's explanation and top activating examples, from the served collated dataset:
 * asked for only once GET /api/dataset reports a finished one (otherwise one quiet line says why). */
import { ApiError, post, type KindInfo, type Schemas } from "../../client/api";
import { useResource } from "../../hooks/useApi";
import { datasetDone, useDatasetStatus } from "../../hooks/useDatasetStatus";
import { maxAbs } from "../../lib/color";
import { kindOf } from "../../lib/kinds";
import { ErrorBox } from "../common/ErrorBox";
import { Spinner } from "../common/Spinner";
import { DatasetNeeded } from "../Dataset/DatasetStatusLine";
import { ExampleList } from "../Dataset/ExampleList";
import { CurrentExplanation } from "../Explanation/ExplanationSection";
import type { NodeExplanation } from "../Explanation/explanations";

type DatasetNode = Schemas["DatasetNode"];

/** Top examples shown in the panel (the node page shows 20). */
export const PANEL_TOP_N = 3;

interface Props {
  kind: string;
  /** the graph node's layer (the row it is drawn in); a latent kind has none of its own */
  layer: number | null;
  index: number;
  kinds: KindInfo[] | null;
  /** how often GET /api/dataset is polled while the dataset is being built */
  pollMs?: number;
}

export function LatentDataset({ kind, layer, index, kinds, pollMs }: Props) {
  const info = kindOf(kinds, kind);
  // The dataset's address of the unit: a kind without layers (a latent kind: the layer is in its
  // name) is collated as layer 0 (DatasetNodeRequest and ExplainNodeRef take an integer layer).
  const unit = { kind, layer: info?.layered ? (layer ?? 0) : 0, index };
  const notCollated = info !== null && !info.collated;
  const dataset = useDatasetStatus(!notCollated, pollMs);
  const done = datasetDone(dataset.status);
  const key = done && !notCollated ? JSON.stringify(unit) : null;
  const expl = useResource<NodeExplanation | null>(key, (signal) => post("/api/explanations/node", unit, signal));
  const ex = useResource<DatasetNode>(key, (signal) => post("/api/dataset/node", { ...unit, n: PANEL_TOP_N }, signal));

  if (notCollated) return <p className="muted small" data-testid="latent-dataset">This kind of node has no dataset examples.</p>;
  if (!done) {
    return (
      <div className="latent-dataset" data-testid="latent-dataset">
        {dataset.loading && !dataset.status ? (
          <Spinner label="asking for the dataset" />
        ) : (
          <DatasetNeeded s={dataset.status} error={dataset.error} what="top examples and the explanation" />
        )}
      </div>
    );
  }
  // the answers for this latent (a click on another one hides the last one's while its own load)
  const e = expl.dataKey === key ? expl.data : undefined;
  const d = ex.dataKey === key ? ex.data : null;
  const top = (d?.top ?? []).slice(0, PANEL_TOP_N);
  const max = maxAbs(top.flatMap((x) => x.acts ?? [])) || (d?.stats?.max_activation ?? 0);
  // A 422 (e.g. a dataset collated without this dictionary's latents) is a state, said quietly, once.
  const refused = [expl.error, ex.error].find((x): x is ApiError => x?.status === 422) ?? null;
  const other = [expl.error, ex.error].filter((x): x is ApiError => x !== null && x.status !== 422);
  return (
    <div className="latent-dataset" data-testid="latent-dataset">
      {refused && <p className="muted small" data-testid="latent-dataset-refused">{refused.message}</p>}
      {other.map((x, i) => <ErrorBox key={i} error={x} />)}
      {!refused && (
        <>
          <h4>explanation {expl.loading && <Spinner label="loading the explanation" />}</h4>
          {e ? (
            <CurrentExplanation e={e} />
          ) : (
            e === null && !expl.error && <p className="muted small" data-testid="no-explanation">No explanation yet.</p>
          )}
          <h4>
            top {top.length || ""} examples{" "}
            {ex.loading ? <Spinner label="loading examples" /> : d && top.length > 0 && <span className="muted">(colour: activation, scale ±{max.toFixed(2)})</span>}
          </h4>
          {d && <ExampleList examples={top} max={max} testId="panel-top-examples" />}
        </>
      )}
    </div>
  );
}
