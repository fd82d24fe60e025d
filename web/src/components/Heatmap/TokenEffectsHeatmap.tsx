/** The prompt's tokens coloured by their effects: one row per source of effect, direct or total. */
import type { TokenEffects } from "../../client/api";
import { divergingColor, maxAbs, textColor } from "../../lib/color";
import { signed } from "../../lib/format";
import type { HeatMode } from "../../lib/urlState";
import { Tok } from "../common/Tok";

const ROWS: { key: "embedding" | "mlp" | "attn_from" | "attn_to"; label: string; help: string }[] = [
  { key: "embedding", label: "embedding", help: "the token's embedding" },
  { key: "mlp", label: "MLP", help: "MLP neurons at the token" },
  { key: "attn_from", label: "attn from", help: "attention heads, by the token attending (query)" },
  { key: "attn_to", label: "attn to", help: "attention heads, by the token attended to (key)" },
];

interface Props {
  tokens: string[];
  effects: TokenEffects;
  mode: HeatMode;
  position: number;
  testId?: string;
}

export function TokenEffectsHeatmap({ tokens, effects, mode, position, testId }: Props) {
  return (
    <div className="heatmap-scroll">
      <table className="heatmap" data-testid={testId}>
        <tbody>
          <tr>
            <th />
            {tokens.map((_, i) => (
              <th key={i} className={"pos" + (i === position ? " scored" : "")} title={i === position ? "scored position" : undefined}>
                {i}
              </th>
            ))}
          </tr>
          {ROWS.map((r) => {
            const values = effects[`${r.key}_${mode}`];
            const max = maxAbs(values);
            return (
              <tr key={r.key}>
                <th className="row-label" title={`${r.help}; colour scaled to the row's max |value| = ${max.toFixed(3)}`}>
                  {r.label}
                </th>
                {tokens.map((t, i) => {
                  const v = values[i] ?? 0;
                  return (
                    <td key={i} className="heat-cell" style={{ background: divergingColor(v, max), color: textColor(v, max) }}
                      title={`${r.label} ${mode} effect of ${JSON.stringify(t)} (position ${i}): ${signed(v, 4)}`}>
                      <Tok t={t} />
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
