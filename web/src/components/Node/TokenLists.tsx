/** Tokens a node promotes and suppresses at the output, and (neurons) the input tokens that drive it. */
import { post, type Schemas } from "../../client/api";
import { useResource } from "../../hooks/useApi";
import { divergingColor, maxAbs } from "../../lib/color";
import { signed } from "../../lib/format";
import { ErrorBox } from "../common/ErrorBox";
import { Spinner } from "../common/Spinner";
import { Tok } from "../common/Tok";

export type NodeTokens = Schemas["NodeTokens"];
type TokenValue = Schemas["TokenValue"];

const K = 10;

export function TokenList({ title, items, tip, testId }: { title: string; items: TokenValue[]; tip?: string; testId?: string }) {
  const max = maxAbs(items.map((x) => x.value));
  return (
    <section className="token-list" data-testid={testId}>
      <h3 title={tip}>{title}</h3>
      <table className="grid">
        <tbody>
          {items.map((x) => (
            <tr key={x.id} data-token={x.token}>
              <td><Tok t={x.token} /></td>
              <td className="num" style={{ background: divergingColor(x.value, max) }}>{signed(x.value, 3)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Promoted, suppressed and (when given) driving tokens side by side. */
export function OutputTokens({ tokens, testId }: { tokens: NodeTokens; testId?: string }) {
  return (
    <div className="token-lists-3" data-testid={testId}>
      <TokenList title="Promoted output tokens" items={tokens.promoted} testId="promoted"
        tip="the write through the final norm's gain and the unembedding: logit per unit of activation" />
      <TokenList title="Suppressed output tokens" items={tokens.suppressed} testId="suppressed" />
      {tokens.drivers && <TokenList title="Driving input tokens" items={tokens.drivers} testId="drivers"
        tip="the neuron's pre-activation for each token's embedding fed straight into its norm" />}
    </div>
  );
}

/** A unit's tokens from its weights alone (a neuron's): the same on every prompt, so shown without one. */
export function WeightTokens({ kind, layer, index }: { kind: string; layer: number | null; index: number }) {
  const r = useResource<NodeTokens>(JSON.stringify({ kind, layer, index }), (signal) =>
    post("/api/node/tokens", { kind, layer: layer ?? 0, index, k: K }, signal),
  );
  return (
    <section className="box" data-testid="weight-tokens">
      <div className="box-head">
        <h3>Output and input tokens <span className="muted small">(from the weights: the same on every prompt)</span></h3>
        {r.loading && <Spinner label="reading the weights" />}
      </div>
      {r.error && <ErrorBox error={r.error} />}
      {r.data && <OutputTokens tokens={r.data} />}
    </section>
  );
}
