/** The prompt's tokens coloured by their effects: one row per source of effect (the rows the scored
 * kinds contribute, labelled by the server), direct or total. */
import type { TokenEffects } from "../../client/api";
import { divergingColor, maxAbs, textColor } from "../../lib/color";
import { signed } from "../../lib/format";
import type { HeatMode } from "../../lib/urlState";
import { Tok } from "../common/Tok";

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
          {effects.rows.map((r) => {
            const values = r[mode];
            const max = maxAbs(values);
            return (
              <tr key={r.name}>
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
