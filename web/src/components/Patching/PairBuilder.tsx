/** The pair builder: an IOI pair (names, template, corruption) or repeated random tokens (length,
 * seed). Its settings are the page's URL state; "Build pair" asks POST /api/patch/pair and hands the
 * pair to the page. */
import { useState } from "react";
import { ApiError, get, post } from "../../client/api";
import { ErrorBox } from "../common/ErrorBox";
import { useResource } from "../../hooks/useApi";
import type { Corruption, PairKind, PatchingState, PromptPair } from "../../lib/patchingState";
import { toPairRequest } from "../../lib/patchingState";

interface Props {
  state: PatchingState;
  onBuilt: (settings: Partial<PatchingState>, pair: PromptPair) => void;
}

export function PairBuilder({ state, onBuilt }: Props) {
  const [d, setD] = useState(state);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const templates = useResource<Record<string, string>>("templates", (signal) => get("/api/patch/templates", signal));
  const set = (p: Partial<PatchingState>) => setD((x) => ({ ...x, ...p }));
  const build = () => {
    setBusy(true);
    setError(null);
    post("/api/patch/pair", toPairRequest(d))
      .then((pair) => onBuilt(
        { pair: d.pair, io: d.io, subject: d.subject, template: d.template, corruption: d.corruption, others: d.others, length: d.length, seed: d.seed },
        pair,
      ))
      .catch((e: unknown) => setError(e instanceof ApiError ? e : new ApiError(0, String(e))))
      .finally(() => setBusy(false));
  };
  const preset = Object.entries(templates.data ?? {}).find(([, t]) => t === d.template)?.[0] ?? "";
  return (
    <fieldset className="patching-builder" data-testid="pair-builder">
      <legend>build a pair</legend>
      <div className="patching-row">
        {(["ioi", "repeat"] as PairKind[]).map((k) => (
          <label key={k}>
            <input type="radio" name="pair-kind" checked={d.pair === k} onChange={() => set({ pair: k })} data-testid={`pair-${k}`} />{" "}
            {k === "ioi" ? "indirect object (IOI)" : "repeated random tokens"}
          </label>
        ))}
      </div>
      {d.pair === "ioi" ? (
        <>
          <div className="patching-row">
            <label>
              answer <input value={d.io} onChange={(e) => set({ io: e.target.value })} data-testid="pair-io" size={8} />
            </label>
            <label>
              subject <input value={d.subject} onChange={(e) => set({ subject: e.target.value })} data-testid="pair-subject" size={8} />
            </label>
            <label>
              corruption{" "}
              <select value={d.corruption} onChange={(e) => set({ corruption: e.target.value as Corruption })} data-testid="pair-corruption">
                <option value="swap">swap the final clause's name</option>
                <option value="abc">ABC: other names in the first clause</option>
              </select>
            </label>
            {d.corruption === "abc" && (
              <label>
                other names{" "}
                <input value={d.others[0]} onChange={(e) => set({ others: [e.target.value, d.others[1]] })} size={7} />
                <input value={d.others[1]} onChange={(e) => set({ others: [d.others[0], e.target.value] })} size={7} />
              </label>
            )}
          </div>
          <div className="patching-row">
            <label>
              template{" "}
              <select value={preset} onChange={(e) => e.target.value && set({ template: templates.data?.[e.target.value] ?? d.template })} data-testid="pair-preset">
                <option value="">(custom)</option>
                {Object.keys(templates.data ?? {}).map((k) => (
                  <option key={k} value={k}>
                    {k}
                  </option>
                ))}
              </select>
            </label>
            <input className="patching-template" value={d.template} onChange={(e) => set({ template: e.target.value })} data-testid="pair-template" title="{A} and {B}: the first clause's names (the answer first); {S}: the final clause's subject" />
          </div>
        </>
      ) : (
        <div className="patching-row">
          <label>
            length <input type="number" min={2} value={d.length} onChange={(e) => set({ length: Number(e.target.value) })} data-testid="pair-length" />
          </label>
          <label>
            seed <input type="number" min={0} value={d.seed} onChange={(e) => set({ seed: Number(e.target.value) })} data-testid="pair-seed" />
          </label>
        </div>
      )}
      <div className="patching-row">
        <button type="button" className="btn" onClick={build} disabled={busy} data-testid="pair-build">
          {busy ? "building…" : "Build pair"}
        </button>
        <span className="muted">
          {d.pair === "ioi"
            ? "clean: {A}=answer, {B}={S}=subject; each name must be one token"
            : "clean: random tokens, then their repeat cut one short (answer: the next repeated token)"}
        </span>
      </div>
      {error && <ErrorBox error={error} />}
    </fieldset>
  );
}
