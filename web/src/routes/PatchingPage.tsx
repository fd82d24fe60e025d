/** The Patching page ("/patching"): a clean and a corrupted prompt of the same length, the answer
 * and its competitor, a site; exact activation patching and attribution patching of every cell
 * side by side, with their correlation. A cell opens what it is (a head's node page, or the
 * Debugger on the clean prompt). The whole view lives in the URL (lib/patchingState.ts). */
import { useEffect, useMemo, useState } from "react";
import { post, type ModelInfo } from "../client/api";
import { ErrorBox } from "../components/common/ErrorBox";
import { Link } from "../components/common/Link";
import { Spinner } from "../components/common/Spinner";
import { PairBuilder } from "../components/Patching/PairBuilder";
import { DivergingLegend, PatchHeatmap, type Cell } from "../components/Patching/PatchHeatmap";
import { PromptBox } from "../components/Patching/PromptBox";
import { useResource, useTokens } from "../hooks/useApi";
import { navigate } from "../hooks/useLocation";
import { maxAbs } from "../lib/color";
import { fmt, showToken } from "../lib/format";
import { kindOf, useKinds } from "../lib/kinds";
import {
  cellRef, decodePatchingState, PATCH_SITES, patchingHref, toCompareRequest, type CompareResponse, type PatchingState, type PatchSite,
} from "../lib/patchingState";
import { DEFAULT_STATE, encodeState } from "../lib/urlState";
import { nodePath, withPrompt } from "./nodeHref";

interface Draft {
  clean: string;
  corrupted: string;
  target: string;
  distractor: string;
}

const draftOf = (s: PatchingState): Draft => ({ clean: s.clean, corrupted: s.corrupted, target: s.targets[0] ?? "", distractor: s.distractors[0] ?? "" });

export const debuggerHref = (prompt: string, targets: string[] = [], distractors: string[] = []): string =>
  "/?" + encodeState({ ...DEFAULT_STATE, prompt, targets, distractors });
export const explorerHref = (prompt: string, pos: number): string => `/prompt?${new URLSearchParams({ prompt, pos: String(pos) }).toString()}`;

export function PatchingPage({ search, model }: { search: string; model: ModelInfo | null }) {
  const state = useMemo(() => decodePatchingState(search), [search]);
  const update = (p: Partial<PatchingState>, mode: "push" | "replace" = "push") => navigate(patchingHref({ ...state, ...p }), mode);
  const kinds = useKinds();
  const [draft, setDraft] = useState<Draft>(() => draftOf(state));
  const draftKey = JSON.stringify(draftOf(state));
  useEffect(() => setDraft(draftOf(state)), [draftKey]); // eslint-disable-line react-hooks/exhaustive-deps
  const cleanToks = useTokens(draft.clean, null).tokens;
  const corruptToks = useTokens(draft.corrupted, null).tokens;
  const mismatch = cleanToks !== null && corruptToks !== null && draft.clean !== "" && draft.corrupted !== "" && cleanToks.length !== corruptToks.length;

  const req = toCompareRequest(state);
  const reqKey = req ? JSON.stringify(req) : null;
  const [nonce, setNonce] = useState(0);
  const res = useResource<CompareResponse>(reqKey && `${reqKey}#${nonce}`, (signal) => post("/api/patch/compare", req!, signal));
  const data = res.data;
  const stale = res.loading || (res.dataKey !== null && res.dataKey !== `${reqKey}#${nonce}`);
  const [hover, setHover] = useState<Cell | null>(null);

  const run = () =>
    update({
      clean: draft.clean,
      corrupted: draft.corrupted,
      targets: draft.target ? [draft.target] : [],
      distractors: draft.distractor ? [draft.distractor] : [],
    });

  const max = data ? maxAbs([...(data.activation?.values.flat() ?? []), ...data.attribution.values.flat()]) || 1 : 1;
  const tokenColumns = data ? data.site !== "heads" : true;
  const changed = useMemo(() => {
    if (!cleanToks || !corruptToks || cleanToks.length !== corruptToks.length) return new Set<number>();
    return new Set(cleanToks.flatMap((t, i) => (t.id !== corruptToks[i]!.id ? [i] : [])));
  }, [cleanToks, corruptToks]);

  const open = (c: Cell) => {
    if (!data || !model) return;
    const ref = cellRef(data.site as PatchSite, c.row, c.col, model.n_heads);
    const kind = data.kind ? kindOf(kinds, data.kind) : null;
    const last = tokenColumns ? data.attribution.columns.length - 1 : (cleanToks?.length ?? 1) - 1;
    if (kind && kind.unit !== null && ref.head !== null) {
      navigate(withPrompt(nodePath(kind.name, ref.layer, ref.head, model.name || null), state.clean, ref.pos ?? last));
    } else {
      navigate(debuggerHref(state.clean, state.targets, state.distractors));
    }
  };

  // what both heatmaps share: one colour scale, one hovered cell, one click
  const shared = { max, hover, onHover: setHover, onCell: open, changed: tokenColumns ? changed : undefined, tokenColumns };

  const hoverText = (() => {
    if (!data || !hover) return "hover a cell: its value in both methods; click it to open it";
    const row = data.attribution.rows[hover.row] ?? "";
    const col = data.attribution.columns[hover.col] ?? "";
    const where = tokenColumns ? `position ${hover.col} ${JSON.stringify(col)}` : col;
    const a = data.activation ? `activation ${fmt(data.activation.values[hover.row]?.[hover.col])}, ` : "";
    const b = data.attribution.values[hover.row]?.[hover.col];
    return `${row} · ${where}: ${a}attribution ${fmt(b)}`;
  })();

  return (
    <main className="page patching-page" data-testid="patching-page">
      <div className="page-head">
        <h2>Patching</h2>
        <span className="muted">where does the clean prompt's answer live? Each cell: the clean activation patched into the corrupted run</span>
      </div>
      <PairBuilder
        key={JSON.stringify([state.pair, state.io, state.subject, state.template, state.corruption, state.others, state.length, state.seed])}
        state={state}
        onBuilt={(settings, pair) =>
          update({ ...settings, clean: pair.clean, corrupted: pair.corrupted, targets: pair.targets, distractors: pair.distractors })
        }
      />
      <form
        className="patching-form"
        onSubmit={(e) => {
          e.preventDefault();
          run();
        }}
      >
        <div className="patching-prompts">
          <PromptBox label="clean" value={draft.clean} onChange={(v) => setDraft({ ...draft, clean: v })} testId="patch-clean" count={cleanToks?.length ?? null} mismatch={mismatch} />
          <PromptBox label="corrupted" value={draft.corrupted} onChange={(v) => setDraft({ ...draft, corrupted: v })} testId="patch-corrupted" count={corruptToks?.length ?? null} mismatch={mismatch} />
        </div>
        {mismatch && (
          <div className="patching-warn" data-testid="patch-mismatch">
            the prompts have {cleanToks!.length} and {corruptToks!.length} tokens: patching needs the same number
          </div>
        )}
        <div className="patching-row">
          <label>
            target <input value={draft.target} onChange={(e) => setDraft({ ...draft, target: e.target.value })} data-testid="patch-target" size={10} />
          </label>
          <label>
            distractor <input value={draft.distractor} onChange={(e) => setDraft({ ...draft, distractor: e.target.value })} data-testid="patch-distractor" size={10} />
          </label>
          <label>
            site{" "}
            <select value={state.site} onChange={(e) => update({ site: e.target.value as PatchSite })} data-testid="patch-site">
              {PATCH_SITES.map((s) => (
                <option key={s.site} value={s.site}>
                  {s.label}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" className="btn primary" data-testid="patch-run" disabled={mismatch || !draft.clean || !draft.corrupted || !draft.target}>
            Patch
          </button>
          {state.clean && (
            <span className="patching-links">
              <Link href={debuggerHref(state.clean, state.targets, state.distractors)} data-testid="patch-open-debugger">open in Debugger</Link>
              <Link href={explorerHref(state.clean, Math.max(0, (cleanToks?.length ?? 1) - 1))} data-testid="patch-open-explorer">open in prompt explorer</Link>
            </span>
          )}
        </div>
      </form>
      {res.error && <ErrorBox error={res.error} onRetry={() => setNonce((n) => n + 1)} />}
      {res.loading && <Spinner label="patching every cell, both methods" />}
      {data && !res.error && (
        <section className={"patching-results" + (stale ? " stale" : "")} data-testid="patch-results" data-site={data.site} data-stale={String(stale)} data-changed={[...changed].join(",")}>
          <div className="patching-row">
            <span data-testid="patch-correlation">
              correlation (Pearson, all cells):{" "}
              <strong>{data.correlation !== null ? data.correlation.toFixed(3) : data.activation ? "undefined (a constant grid)" : "– (no exact grid)"}</strong>
            </span>
            <span className="muted">
              metric on clean {fmt(data.attribution.clean_value)}, on corrupted {fmt(data.attribution.corrupted_value)}; a cell&apos;s value is the fraction restored
              (1 = all of the clean behaviour, 0 = none)
            </span>
            <DivergingLegend max={max} label="scale" />
          </div>
          <div className="patching-hover" data-testid="patch-hover">
            {hoverText}
          </div>
          <div className="patching-maps">
            {data.activation ? (
              <PatchHeatmap
                title="activation patching (exact)"
                rows={data.activation.rows}
                columns={data.activation.columns}
                values={data.activation.values}
                {...shared}
                testId="patch-map-activation"
              />
            ) : (
              <div className="patching-skipped" data-testid="patch-skipped">
                <strong>activation patching (exact)</strong>
                <p>{data.skipped}</p>
                <p className="muted">It runs one forward per cell and layer; the linear estimate beside it needs two passes. A shorter prompt or a coarser site (heads) fits.</p>
              </div>
            )}
            <PatchHeatmap
              title="attribution patching (linear estimate)"
              rows={data.attribution.rows}
              columns={data.attribution.columns}
              values={data.attribution.values}
              {...shared}
              testId="patch-map-attribution"
            />
          </div>
          {tokenColumns && (
            <div className="muted patching-note">
              underlined columns: where the prompts differ ({[...changed].map((i) => showToken(data.attribution.columns[i] ?? "")).join(", ") || "none"})
            </div>
          )}
        </section>
      )}
    </main>
  );
}
