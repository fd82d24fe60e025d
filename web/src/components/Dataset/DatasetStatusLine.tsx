/** Why a collated dataset cannot be shown (yet): the collation's progress, or how to build one. */
import type { ApiError } from "../../client/api";
import type { DatasetStatus } from "../../hooks/useDatasetStatus";

interface Props {
  s: DatasetStatus;
  /** what the page shows from a preview, e.g. "The examples below" */
  shown: string;
  /** what happens before the first preview, e.g. "The first examples appear after its first shard." */
  waiting: string;
  className?: string;
}

export function DatasetStatusLine({ s, shown, waiting, className = "" }: Props) {
  const n = (x: number | null | undefined) => (x ?? 0).toLocaleString("en-US");
  if (s.status === "running") {
    const f = Math.max(0, Math.min(1, s.fraction ?? 0));
    return (
      <div className={`${className} dataset-status`.trim()} data-testid="dataset-status" data-status="running">
        <p>
          Collating the dataset{s.corpus ? ` (${s.corpus})` : ""}: {(f * 100).toFixed(1)}% · {n(s.tokens_done)} / {n(s.tokens_total)} tokens.{" "}
          {s.preview_tokens ? `${shown} come from the first ${n(s.preview_tokens)} tokens and fill in as it goes on.` : waiting}
        </p>
        <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(f * 100)}>
          <div className="progress-fill" style={{ width: `${f * 100}%` }} />
        </div>
      </div>
    );
  }
  const text =
    s.status === "failed"
      ? "Collating the dataset failed: see the server's log, then run `mechscope collate` again."
      : s.status === "missing"
        ? "The collated dataset for this model has not been built yet: run `mechscope collate` (or start `mechscope demo`)."
        : "No collated dataset on this server: run `mechscope collate`, then `mechscope serve --dataset DIR` (or start `mechscope demo`).";
  return (
    <p className={`${className} dataset-status muted`.trim()} data-testid="dataset-status" data-status={s.status}>
      {text}
    </p>
  );
}

const count = (x: number | null | undefined) => (x ?? 0).toLocaleString("en-US");

/** One quiet line where a part of a page needs a finished dataset and the server has none (yet):
 * `what` (e.g. "top examples and explanations") and why they are not shown. */
export function DatasetNeeded({ s, error, what }: { s: DatasetStatus | null; error?: ApiError | null; what: string }) {
  let text: React.ReactNode;
  if (!s) {
    if (!error) return null;
    text = <>Cannot ask the server for its dataset ({error.message}): no {what}.</>;
  } else if (s.status === "running") {
    const f = Math.max(0, Math.min(1, s.fraction ?? 0));
    text = <>Collating the dataset: {(f * 100).toFixed(1)}% ({count(s.tokens_done)} / {count(s.tokens_total)} tokens); {what} appear when it is done.</>;
  } else if (s.status === "failed") {
    text = <>Collating the dataset failed (see the server's log): {what} need a finished one.</>;
  } else if (s.status === "missing") {
    text = <>The server's dataset folder holds no collated dataset yet: {what} need <code>mechscope collate</code> into it.</>;
  } else if (s.status !== "done") {
    text = <>No collated dataset on this server: {what} need <code>serve --dataset DIR</code>.</>;
  } else return null;
  return (
    <p className="muted small dataset-needed" data-testid="dataset-needed" data-status={s?.status ?? "error"}>
      {text}
    </p>
  );
}
