/** A node on the user's prompt: its value at every token (click one to move the node there), a head's
 * attention row, and what a head's write at that token promotes and suppresses. */
import type { KindInfo, Node, NodeDetail } from "../../client/api";
import { divergingColor, maxAbs, textColor } from "../../lib/color";
import { fmt, signed } from "../../lib/format";
import { Tok } from "../common/Tok";
import { OutputTokens } from "./TokenLists";

interface Props {
  d: NodeDetail;
  node: Node;
  /** the node's kind (null until /api/model has answered) */
  kind: KindInfo | null;
  stale: boolean;
  /** move the node to another token of the prompt */
  onPick: (position: number) => void;
}

export function OnPrompt({ d, node, kind, stale, onPick }: Props) {
  const q = node.token;
  const at = d.activations.tokens[q] ?? "";
  return (
    <div className={"node-body" + (stale ? " stale" : "")} data-testid="on-prompt">
      <section className="box">
        <h3>{kind?.value_label ?? "value"} at every token <span className="muted small">(click a token to move the node there)</span></h3>
        <TokenRow tokens={d.activations.tokens} values={d.activations.values} mark={q} onPick={onPick} testId="node-activations" />
      </section>
      {d.activations.pattern && (
        <section className="box">
          <h3>Attention of query token {q} (<Tok t={at} />) over keys</h3>
          <TokenRow tokens={d.activations.tokens} values={d.activations.pattern} mark={node.key ?? null} percent />
        </section>
      )}
      {kind?.weight_tokens ? null : d.tokens ? (
        <section className="box" data-testid="prompt-tokens-out">
          <h3>
            What the {kind?.unit ?? "node"} writes at token {q} (<Tok t={at} />){node.key != null ? ` from key ${node.key}` : ""}
            <span className="muted small"> promotes and suppresses</span>
          </h3>
          <OutputTokens tokens={d.tokens} />
        </section>
      ) : (
        <p className="muted small">This kind of node has no single output direction, so no promoted or suppressed tokens.</p>
      )}
    </div>
  );
}

function TokenRow({ tokens, values, mark, percent, onPick, testId }: {
  tokens: string[]; values: number[]; mark: number | null; percent?: boolean; onPick?: (i: number) => void; testId?: string;
}) {
  const max = maxAbs(values);
  return (
    <div className="token-row" data-testid={testId}>
      {tokens.map((t, i) => {
        const v = values[i] ?? 0;
        const style = { background: divergingColor(v, max), color: textColor(v, max) };
        const tip = `position ${i} ${JSON.stringify(t)}: ${percent ? (v * 100).toFixed(2) + "%" : signed(v, 4)}`;
        const body = (
          <>
            <span className="chip-pos">{i}</span>
            <Tok t={t} />
            <span className="chip-val">{percent ? (v * 100).toFixed(0) + "%" : fmt(v, 2)}</span>
          </>
        );
        const cls = "heat-chip" + (i === mark ? " marked" : "");
        return onPick ? (
          <button type="button" key={i} className={cls + " pick"} style={style} title={tip + "\nclick: move the node here"}
            aria-pressed={i === mark} data-position={i} onClick={() => onPick(i)}>
            {body}
          </button>
        ) : (
          <span key={i} className={cls} style={style} title={tip}>{body}</span>
        );
      })}
    </div>
  );
}
