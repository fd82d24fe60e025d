import type { ApiError } from "../../client/api";

/** The server's ErrorBody message (and the field it is about). */
export function ErrorBox({ error, onRetry }: { error: ApiError; onRetry?: () => void }) {
  return (
    <div className="error-box" role="alert" data-testid="error">
      <strong>{error.status === 503 ? "Server busy" : error.status >= 500 ? "Server error" : "Request refused"}</strong>
      {error.status > 0 && <span className="muted"> (HTTP {error.status})</span>}
      {error.field && (
        <span className="error-field">
          {" "}
          field <code>{error.field}</code>
        </span>
      )}
      <div className="error-msg">{error.message}</div>
      {error.retryAfter != null && <div className="muted">Retry after {error.retryAfter} s.</div>}
      {onRetry && (
        <button type="button" className="btn small" onClick={onRetry}>
          retry
        </button>
      )}
    </div>
  );
}

/** Which editor an error field belongs to ("targets.0" -> "targets", "prompt2" -> "prompt2"). */
export function editorOfField(field: string | null | undefined): string | null {
  if (!field) return null;
  const head = field.split(/[.[]/)[0] ?? "";
  const known = ["prompt", "prompt2", "targets", "distractors", "interventions", "trace", "k", "position", "kinds", "top_n"];
  return known.includes(head) ? head : null;
}
