/** Dataset examples as token heatmaps: one line per corpus window, coloured by the node's activation at each token. */
import { useState } from "react";
import type { Schemas } from "../../client/api";
import { divergingColor, textColor } from "../../lib/color";
import { signed } from "../../lib/format";
import { useModelInfo } from "../../hooks/useApi";
import { PromptLinks } from "../common/PromptLinks";
import { HeadPattern } from "./HeadPattern";

export type Example = Schemas["Example"];

/** The percentile range of a quantile sample ("peaks in the 25–73% quantile"). */
export function quantileLabel(e: Example): string | null {
  if (e.quantile_lo == null || e.quantile_hi == null) return null;
  const pct = (x: number) => (x * 100).toFixed(x * 100 < 10 && x > 0 ? 1 : 0);
  return `${pct(e.quantile_lo)}–${pct(e.quantile_hi)}%`;
}

/** A token as running text: spaces stay spaces (the tooltip shows the exact string), newlines and tabs as ⏎ ⇥. */
function plain(t: string): React.ReactNode {
  if (t === "") return <span className="nl">∅</span>;
  if (!/[\n\t]/.test(t)) return t;
  return <span className="nl">{t.replace(/\n/g, "⏎").replace(/\t/g, "⇥")}</span>;
}

/** The head whose examples these are: each line then gets a from/to (query × key) view. */
export interface HeadRef {
  layer: number;
  head: number;
}

interface ListProps {
  examples: Example[];
  max: number;
  testId: string;
  quantiles?: boolean;
  head?: HeadRef | null;
}

export function ExampleList({ examples, max, testId, quantiles, head }: ListProps) {
  if (examples.length === 0) return <p className="muted small">No examples.</p>;
  return (
    <ol className="examples" data-testid={testId}>
      {examples.map((e, i) => (
        <ExampleLine key={`${e.window_id}-${e.position}-${i}`} e={e} max={max} label={quantiles ? quantileLabel(e) : null} head={head ?? null} />
      ))}
    </ol>
  );
}

/** A dataset window as a prompt with its own positions: every window starts with the model's start
 * token, which a tokenizer that prepends BOS adds again, so it is left out of the text there. */
export function windowPrompt(tokens: string[], addsBos: boolean): string {
  return (addsBos ? tokens.slice(1) : tokens).join("");
}

function ExampleLine({ e, max, label, head }: { e: Example; max: number; label: string | null; head: HeadRef | null }) {
  const acts = e.acts ?? [];
  const [open, setOpen] = useState(false);
  const model = useModelInfo();
  return (
    <li className={"example" + (open ? " open" : "")} data-testid="example" data-window={e.window_id}>
      <div className="example-meta">
        {label && <span className="quantile-tag" title="the percentile range of this node's window peaks this sample comes from">{label}</span>}
        <span className="example-act mono" title="activation at the peak token">{signed(e.activation, 3)}</span>
        <span className="example-title" title={e.title ?? "untitled document"}>{e.title ?? "untitled"}</span>
        {head && (
          <button type="button" className="btn small ex-fromto" aria-expanded={open} data-testid="pattern-toggle"
            title="the head's attention on this window, every query against every key" onClick={() => setOpen(!open)}>
            {open ? "hide from/to" : "from/to view"}
          </button>
        )}
        <PromptLinks prompt={windowPrompt(e.tokens, model?.adds_bos ?? false)} pos={e.position} />
      </div>
      <div className="example-tokens">
        {e.tokens.map((t, i) => {
          const v = acts[i];
          const peak = i === e.position;
          const key = e.key_position != null && i === e.key_position;
          const cls = "ex-tok" + (peak ? " peak" : "") + (key ? " key" : "");
          const tip = [
            `position ${i} ${JSON.stringify(t)}: ${v == null ? "no value" : signed(v, 4)}`,
            peak ? "peak token" : "",
            key ? "strongest key of the peak query token" : "",
          ].filter(Boolean).join("\n");
          return (
            <span key={i} className={cls} data-peak={peak || undefined} data-key={key || undefined} title={tip}
              style={v == null ? undefined : { background: divergingColor(v, max), color: textColor(v, max) }}>
              {plain(t)}
            </span>
          );
        })}
      </div>
      {open && head && (
        <div className="example-pattern">
          <HeadPattern layer={head.layer} head={head.head} windowId={e.window_id} query={e.position} />
        </div>
      )}
    </li>
  );
}
