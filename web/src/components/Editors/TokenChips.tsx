import type { TokenInfo } from "../../client/api";
import { Tok } from "../common/Tok";

/** Token chips with their positions (and ids in the tooltip). */
export function TokenChips({ tokens, positions = true, testId }: { tokens: TokenInfo[]; positions?: boolean; testId?: string }) {
  return (
    <div className="chips" data-testid={testId}>
      {tokens.map((t, i) => (
        <span className="chip" key={i} title={`position ${i}, id ${t.id}: ${JSON.stringify(t.token)}`}>
          {positions && <span className="chip-pos">{i}</span>}
          <Tok t={t.token} />
        </span>
      ))}
    </div>
  );
}
