/** Several targets (or distractors): one text input each, its tokenisation and warnings. */
import { useTokens } from "../../hooks/useApi";
import { leadingSpaceWarning, multiTokenWarning } from "../../lib/warnings";
import { TokenChips } from "./TokenChips";

interface Props {
  label: string;
  name: "targets" | "distractors";
  items: string[];
  prompt: string;
  invalid: boolean;
  disabled?: boolean;
  onChange: (items: string[]) => void;
}

export function TokenListEditor({ label, name, items, prompt, invalid, disabled, onChange }: Props) {
  const rows = items.length ? items : [""];
  const set = (i: number, v: string) => onChange(rows.map((x, j) => (j === i ? v : x)));
  return (
    <fieldset className={"token-list" + (invalid ? " invalid" : "")} data-field={name} disabled={disabled}>
      <legend>
        {label}
        <button type="button" className="link" onClick={() => onChange([...rows, ""])} title={`add a ${label.toLowerCase()}`}>
          + add
        </button>
      </legend>
      {rows.map((t, i) => (
        <TokenItem
          key={i}
          name={name}
          i={i}
          value={t}
          prompt={prompt}
          onChange={(v) => set(i, v)}
          onRemove={rows.length > 1 || t ? () => onChange(rows.filter((_, j) => j !== i)) : undefined}
        />
      ))}
    </fieldset>
  );
}

interface ItemProps {
  name: string;
  i: number;
  value: string;
  prompt: string;
  onChange: (v: string) => void;
  onRemove?: () => void;
}

function TokenItem({ name, i, value, prompt, onChange, onRemove }: ItemProps) {
  const { tokens } = useTokens(value, false);
  const warnings = [leadingSpaceWarning(prompt, value), tokens ? multiTokenWarning(tokens.length) : null].filter(
    (w): w is string => w !== null,
  );
  return (
    <div className="token-item">
      <div className="token-item-row">
        <input
          type="text"
          className="mono"
          value={value}
          spellCheck={false}
          aria-label={`${name} ${i + 1}`}
          placeholder={name === "targets" ? "' Mary'" : "' John'"}
          onChange={(e) => onChange(e.target.value)}
        />
        {tokens && value && <TokenChips tokens={tokens} positions={false} />}
        {onRemove && (
          <button type="button" className="icon" onClick={onRemove} title="remove" aria-label={`remove ${name} ${i + 1}`}>
            ×
          </button>
        )}
      </div>
      {warnings.map((w) => (
        <div className="warn" key={w}>
          ⚠ {w}
        </div>
      ))}
    </div>
  );
}
