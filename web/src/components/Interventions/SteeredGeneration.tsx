/** With interventions active: the greedy continuation without and with them, side by side, the first
 * token where they part marked (POST /api/generate, twice). */
import { post, type Intervention, type TokenInfo } from "../../client/api";
import { useResource } from "../../hooks/useApi";
import { ErrorBox } from "../common/ErrorBox";
import { Spinner } from "../common/Spinner";
import { Tok } from "../common/Tok";
import { NumberInput } from "../Verify/NumberInput";
import { firstDifference } from "./generationDiff";

interface Props {
  prompt: string;
  interventions: Intervention[];
  maxNewTokens: number;
  maxAllowed: number;
  onMaxNewTokens: (n: number) => void;
  /** wait (keeping what is shown): the model thread is busy with the page's main request, which goes first */
  hold: boolean;
}

export function SteeredGeneration({ prompt, interventions, maxNewTokens, maxAllowed, onMaxNewTokens, hold }: Props) {
  const base = { prompt, max_new_tokens: maxNewTokens, temperature: 0 };
  const plainKey = JSON.stringify(base);
  const steeredKey = JSON.stringify({ ...base, interventions });
  const plain = useResource(hold ? null : plainKey, (signal) => post("/api/generate", base, signal));
  const steered = useResource(hold ? null : steeredKey, (signal) => post("/api/generate", { ...base, interventions }, signal));
  const fresh = plain.dataKey === plainKey && steered.dataKey === steeredKey;
  const a = plain.data?.tokens ?? [];
  const b = steered.data?.tokens ?? [];
  const diff = plain.data && steered.data ? firstDifference(a.map((t) => t.id), b.map((t) => t.id)) : null;
  return (
    <section className="box dbg-gen" data-testid="generation">
      <div className="box-head">
        <h3>
          Generation <span className="muted small">greedy, without vs with the interventions</span>
        </h3>
        {(plain.loading || steered.loading) && <Spinner label="generating" />}
        <label className="small" title="new tokens per continuation">
          new tokens{" "}
          <NumberInput value={maxNewTokens} min={1} max={maxAllowed} onCommit={onMaxNewTokens} className="dbg-gen-n" testId="gen-tokens" />
        </label>
      </div>
      {plain.error && <ErrorBox error={plain.error} />}
      {steered.error && <ErrorBox error={steered.error} />}
      <div className={"dbg-gen-cols" + (fresh ? "" : " stale")}>
        <Continuation title="without interventions" tokens={a} diff={diff} testId="gen-plain" />
        <Continuation title="with interventions" tokens={b} diff={diff} testId="gen-steered" />
      </div>
      {plain.data && steered.data && (
        <p className="muted small" data-testid="gen-diff">
          {diff === null ? "The interventions do not change the continuation." : `They part at new token ${diff + 1} (marked).`}
        </p>
      )}
    </section>
  );
}

function Continuation({ title, tokens, diff, testId }: { title: string; tokens: TokenInfo[]; diff: number | null; testId: string }) {
  return (
    <div className="dbg-gen-col">
      <div className="muted small">{title}</div>
      <div className="dbg-gen-text" data-testid={testId}>
        {tokens.map((t, i) => (
          <Tok key={i} t={t.token} className={diff !== null && i === diff ? "dbg-gen-first-diff" : diff !== null && i > diff ? "dbg-gen-after" : undefined} />
        ))}
      </div>
    </div>
  );
}
