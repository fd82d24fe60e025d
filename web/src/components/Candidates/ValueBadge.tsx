import { signClass, signed } from "../../lib/format";

/** The direction's value, large, coloured by sign. */
export function ValueBadge({ label, value, testId, sub }: { label: string; value: number | null | undefined; testId: string; sub?: string }) {
  return (
    <div className="value-badge">
      <div className="value-label">{label}</div>
      <div className={"value-num " + signClass(value)} data-testid={testId} data-value={value ?? ""}>
        {signed(value, 3)}
      </div>
      {sub && <div className="value-sub muted" title={sub}>{sub}</div>}
    </div>
  );
}
