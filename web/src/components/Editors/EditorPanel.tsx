/** The request editors: prompt, targets, distractors, optional second prompt, what is explained
 * (logit difference, log-prob, probe); Ctrl/Cmd+Enter submits. */
import { useTokens } from "../../hooks/useApi";
import { DirectionPicker } from "./DirectionPicker";
import type { DirectionDraft } from "./directionDraft";
import { TokenChips } from "./TokenChips";
import { TokenListEditor } from "./TokenListEditor";

export interface Draft {
  prompt: string;
  prompt2: string | null;
  targets: string[];
  distractors: string[];
  direction: DirectionDraft;
}

interface Props {
  draft: Draft;
  onChange: (d: Draft) => void;
  onSubmit: () => void;
  errorField: string | null;
  tracing: boolean;
  loading: boolean;
  maxTokens?: number;
  dModel?: number;
}

export function EditorPanel({ draft, onChange, onSubmit, errorField, tracing, loading, maxTokens, dModel }: Props) {
  const noTargets = tracing || draft.direction.kind !== "logit_diff";
  const set = (patch: Partial<Draft>) => onChange({ ...draft, ...patch });
  const onKeyDown = (e: React.KeyboardEvent) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      onSubmit();
    }
  };
  return (
    <form
      className="editors"
      onKeyDown={onKeyDown}
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit();
      }}
    >
      <PromptField label="Prompt" name="prompt" value={draft.prompt} invalid={errorField === "prompt"} maxTokens={maxTokens}
        onChange={(prompt) => set({ prompt })} />
      <label className="toggle">
        <input type="checkbox" checked={draft.prompt2 !== null}
          onChange={(e) => set({ prompt2: e.target.checked ? draft.prompt : null })} />
        compare with a second prompt
      </label>
      {draft.prompt2 !== null && (
        <PromptField label="Prompt 2 (right pane)" name="prompt2" value={draft.prompt2} invalid={errorField === "prompt2"}
          maxTokens={maxTokens} onChange={(prompt2) => set({ prompt2 })} />
      )}
      <div className="token-lists">
        <TokenListEditor label="Targets" name="targets" items={draft.targets} prompt={draft.prompt}
          invalid={errorField === "targets"} disabled={noTargets} onChange={(targets) => set({ targets })} />
        <TokenListEditor label="Distractors" name="distractors" items={draft.distractors} prompt={draft.prompt}
          invalid={errorField === "distractors"} disabled={noTargets} onChange={(distractors) => set({ distractors })} />
      </div>
      <DirectionPicker draft={draft.direction} onChange={(direction) => set({ direction })} errorField={errorField}
        dModel={dModel ?? null} disabled={tracing} />
      {tracing && <div className="muted small">Targets and the direction are not used while a trace is active.</div>}
      <div className="submit-row">
        <button type="submit" className="btn primary" data-testid="submit">
          {loading ? "Running…" : "Run"}
        </button>
        <span className="muted small">Ctrl/⌘ + Enter</span>
      </div>
    </form>
  );
}

interface FieldProps {
  label: string;
  name: string;
  value: string;
  invalid: boolean;
  maxTokens?: number;
  onChange: (v: string) => void;
}

function PromptField({ label, name, value, invalid, maxTokens, onChange }: FieldProps) {
  const { tokens } = useTokens(value, null);
  const over = tokens && maxTokens ? tokens.length > maxTokens : false;
  return (
    <div className={"field" + (invalid ? " invalid" : "")} data-field={name}>
      <label className="field-label">
        {label}
        {tokens && (
          <span className={"muted small" + (over ? " neg" : "")}>
            {" "}
            {tokens.length} tokens{maxTokens ? ` / ${maxTokens}` : ""}
          </span>
        )}
        <textarea className="mono" rows={3} value={value} spellCheck={false} aria-label={label}
          onChange={(e) => onChange(e.target.value)} />
      </label>
      {tokens && value && <TokenChips tokens={tokens} testId={`${name}-tokens`} />}
    </div>
  );
}
