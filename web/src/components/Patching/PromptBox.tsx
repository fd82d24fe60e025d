/** A prompt box with its token count (the served tokenizer's, BOS included); red when the pair's
 * counts differ. */
export function PromptBox({ label, value, onChange, testId, count, mismatch }: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  testId: string;
  count: number | null;
  mismatch: boolean;
}) {
  return (
    <label className={"field patching-prompt" + (mismatch ? " invalid" : "")}>
      <span className="field-label">
        {label}{" "}
        <span className={mismatch ? "patching-count bad" : "patching-count muted"} data-testid={`${testId}-count`}>
          {count !== null ? `${count} tokens` : ""}
        </span>
      </span>
      <textarea rows={2} value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} spellCheck={false} />
    </label>
  );
}
