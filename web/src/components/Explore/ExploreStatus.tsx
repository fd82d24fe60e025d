/** The collated dataset's state while it cannot be explored: how far collation got, or how to build one. */
import type { Schemas } from "../../client/api";

type DatasetStatus = Schemas["DatasetStatus"];

export function ExploreStatus({ s }: { s: DatasetStatus }) {
  if (s.status === "running") {
    const f = Math.max(0, Math.min(1, s.fraction ?? 0));
    const n = (x: number | null | undefined) => (x ?? 0).toLocaleString("en-US");
    return (
      <div className="box dataset-status" data-testid="dataset-status" data-status="running">
        <p>
          Collating the dataset{s.corpus ? ` (${s.corpus})` : ""}: {(f * 100).toFixed(1)}% · {n(s.tokens_done)} / {n(s.tokens_total)} tokens.{" "}
          {s.preview_tokens
            ? `The results come from the first ${n(s.preview_tokens)} tokens and fill in as it goes on.`
            : "The explorer opens after its first shard."}
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
        : "No collated dataset for this model: run `mechscope collate` or start `mechscope demo`, then come back to explore it.";
  return (
    <p className="box dataset-status muted" data-testid="dataset-status" data-status={s.status}>
      {text}
    </p>
  );
}
