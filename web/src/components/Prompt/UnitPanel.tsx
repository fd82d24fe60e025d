/** The right pane: the picked unit's activation over every token of the prompt, the corpus
 * windows that activate it most (the collated dataset), and links to its node page and the Debugger. */
import { post, type KindInfo } from "../../client/api";
import { useResource } from "../../hooks/useApi";
import { datasetDone, type DatasetState } from "../../hooks/useDatasetStatus";
import { divergingColor, maxAbs, textColor } from "../../lib/color";
import { fmt, signed } from "../../lib/format";
import { kindOf, unitLabel } from "../../lib/kinds";
import type { PickedUnit } from "../../lib/promptState";
import { unitSeries, type DecodedGrid } from "../../lib/unitGrid";
import { nodePath, withPrompt } from "../../routes/nodeHref";
import { ErrorBox } from "../common/ErrorBox";
import { Link } from "../common/Link";
import { Spinner } from "../common/Spinner";
import { Tok } from "../common/Tok";
import { DatasetNeeded } from "../Dataset/DatasetStatusLine";
import { ExampleList } from "../Dataset/ExampleList";

export const TOP_EXAMPLES = 8;

interface Props {
  grid: DecodedGrid;
  unit: PickedUnit;
  pos: number;
  prompt: string;
  kinds: KindInfo[] | null;
  model: string | null;
  dataset: DatasetState;
  onPos: (pos: number) => void;
  /** load a corpus window as the prompt */
  onPrompt: (text: string) => void;
}

export function UnitPanel({ grid, unit, pos, prompt, kinds, model, dataset, onPos, onPrompt }: Props) {
  const row = grid.layers.indexOf(unit.layer);
  const kind = kindOf(kinds, grid.kind);
  const label = unitLabel(kinds, grid.kind, unit.layer ?? 0, unit.index);
  const values = row >= 0 ? unitSeries(grid, row, unit.index) : [];
  const max = maxAbs(values);
  const page = withPrompt(nodePath(grid.kind, unit.layer, unit.index, model), prompt, pos);
  return (
    <section className="box prompt-unit" data-testid="unit-panel" data-unit={label}>
      <div className="box-head">
        <h3>
          <span className="mono">{label}</span> <span className="muted small">{kind?.label ?? grid.kind}</span>
        </h3>
      </div>
      <div className="prompt-unit-links small">
        <Link href={page} data-testid="unit-node-link">node page →</Link>
        <Link href={`/?${new URLSearchParams({ prompt }).toString()}`} data-testid="unit-debugger-link">open the prompt in the Debugger →</Link>
      </div>
      <h4>On this prompt <span className="muted small">({kind?.value_label ?? "activation"}; peak |a| {fmt(max, 3)})</span></h4>
      <div className="prompt-unit-acts" data-testid="unit-acts">
        {grid.tokens.map((t, i) => (
          <button key={i} type="button" className={"prompt-act" + (i === pos ? " on" : "")} data-pos={i} data-value={values[i]?.toFixed(4)}
            title={`token ${i} ${JSON.stringify(t)}: ${signed(values[i], 4)}`} onClick={() => onPos(i)}
            style={{ background: divergingColor(values[i], max), color: textColor(values[i], max) }}>
            <Tok t={t} />
          </button>
        ))}
      </div>
      <h4>Top corpus examples</h4>
      {!kind?.collated ? (
        <p className="muted small">Collated datasets hold no examples of {kind?.label ?? grid.kind}s.</p>
      ) : datasetDone(dataset.status) ? (
        <TopExamples kind={grid.kind} unit={unit} onPrompt={onPrompt} />
      ) : (
        <DatasetNeeded s={dataset.status} error={dataset.error} what="the corpus windows that activate it most" />
      )}
    </section>
  );
}

function TopExamples({ kind, unit, onPrompt }: { kind: string; unit: PickedUnit; onPrompt: (text: string) => void }) {
  const key = JSON.stringify([kind, unit.layer, unit.index]);
  const r = useResource(key, (signal) =>
    post("/api/dataset/node", { kind, layer: unit.layer ?? 0, index: unit.index, n: TOP_EXAMPLES }, signal),
  );
  const d = r.dataKey === key ? r.data : null;
  const top = d?.top ?? [];
  return (
    <div className="prompt-unit-examples">
      {r.loading && <Spinner label="loading examples" />}
      {r.error && <ErrorBox error={r.error} />}
      {d && (
        <>
          <ExampleList examples={top} max={d.stats?.max_activation ?? maxAbs(top.map((e) => e.activation))} testId="unit-top-examples" />
          {top.length > 0 && (
            <div className="prompt-use small">
              <span className="muted" title="the example's window becomes the prompt; this unit stays picked">explore an example here, keeping this unit:</span>
              {top.map((e, i) => (
                <button key={i} type="button" className="btn small" data-testid="use-example"
                  title={`window ${e.window_id}${e.title ? ` (${e.title})` : ""}: load its text as the prompt`}
                  onClick={() => onPrompt(e.tokens.join(""))}>
                  #{i + 1}
                </button>
              ))}
            </div>
          )}
        </>
      )}
    </div>
  );
}
