export function Spinner({ label = "working" }: { label?: string }) {
  return (
    <span className="spinner" role="status" aria-label={label}>
      <span className="spinner-dot" />
      <span className="spinner-text">{label}…</span>
    </span>
  );
}
