/** The left pane: the prompt (typed, or a corpus window picked from a search of the collated
 * dataset's titles and text) and the kind of unit the grid shows. */
import { useEffect, useState } from "react";
import { post, type KindInfo } from "../../client/api";
import { useResource } from "../../hooks/useApi";
import { datasetDone, type DatasetState } from "../../hooks/useDatasetStatus";
import { highlight } from "../Explore/explore";
import { ErrorBox } from "../common/ErrorBox";
import { Spinner } from "../common/Spinner";
import { DatasetNeeded } from "../Dataset/DatasetStatusLine";

export const SEARCH_N = 20;
const MAX_SEARCH = 200; // SearchRequest.text's max_length

interface Props {
  prompt: string;
  kind: string | null;
  kinds: KindInfo[];
  q: string;
  dataset: DatasetState;
  onPrompt: (text: string) => void;
  onKind: (kind: string) => void;
  onSearch: (q: string) => void;
}

export function PromptSidebar({ prompt, kind, kinds, q, dataset, onPrompt, onKind, onSearch }: Props) {
  const [draft, setDraft] = useState(prompt);
  useEffect(() => setDraft(prompt), [prompt]);
  const [qDraft, setQDraft] = useState(q);
  useEffect(() => setQDraft(q), [q]);
  return (
    <aside className="prompt-side">
      <form className="box prompt-form" data-testid="prompt-form" onSubmit={(e) => { e.preventDefault(); if (draft.trim()) onPrompt(draft); }}>
        <label htmlFor="prompt-text" className="field-label">Prompt</label>
        <textarea id="prompt-text" className="mono" rows={4} value={draft} spellCheck={false} data-testid="prompt-input"
          placeholder="type a prompt, or pick a corpus window below" onChange={(e) => setDraft(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              if (draft.trim()) onPrompt(draft);
            }
          }} />
        <div className="prompt-form-row">
          <label className="small" htmlFor="prompt-kind">units</label>
          <select id="prompt-kind" value={kind ?? ""} data-testid="kind-select" onChange={(e) => onKind(e.target.value)}>
            {kinds.map((k) => (
              <option key={k.name} value={k.name}>{k.label}s{k.layered ? "" : " (one layer)"} · {k.size}</option>
            ))}
          </select>
          <button type="submit" className="btn primary" data-testid="prompt-submit" disabled={!draft.trim()}>Explore</button>
        </div>
        <div className="muted small">Ctrl+Enter runs it; ← → move along its tokens.</div>
      </form>
      <section className="box prompt-search" data-testid="corpus-search">
        <form role="search" aria-label="search the corpus" onSubmit={(e) => { e.preventDefault(); onSearch(qDraft.trim()); }}>
          <label htmlFor="prompt-search" className="field-label">Search the corpus</label>
          <div className="prompt-form-row">
            <input id="prompt-search" type="search" className="mono" value={qDraft} maxLength={MAX_SEARCH} spellCheck={false}
              placeholder="text or a document's title" data-testid="corpus-search-input" onChange={(e) => setQDraft(e.target.value)} />
            <button type="submit" className="btn" data-testid="corpus-search-submit">Search</button>
          </div>
        </form>
        {datasetDone(dataset.status) ? (
          q && <SearchResults q={q} onPick={onPrompt} />
        ) : (
          <DatasetNeeded s={dataset.status} error={dataset.error} what="corpus windows to pick a prompt from" />
        )}
      </section>
    </aside>
  );
}

function SearchResults({ q, onPick }: { q: string; onPick: (text: string) => void }) {
  const r = useResource(q, (signal) => post("/api/dataset/search", { text: q, n: SEARCH_N }, signal));
  const hits = r.dataKey === q ? (r.data ?? []) : [];
  return (
    <div className="prompt-hits">
      {r.loading && <Spinner label="searching" />}
      {r.error && <ErrorBox error={r.error} />}
      {r.dataKey === q && (
        <p className="muted small" data-testid="corpus-count">
          {hits.length === 0 ? "No window's text or title contains it." : `${hits.length === SEARCH_N ? `the first ${SEARCH_N}` : hits.length} window${hits.length === 1 ? "" : "s"}: click one to explore it`}
        </p>
      )}
      <ol className="prompt-hit-list">
        {hits.map((h) => (
          <li key={h.window_id}>
            <button type="button" className="prompt-hit" data-testid="corpus-hit" data-window={h.window_id} onClick={() => onPick(h.text)}
              title="explore this window as the prompt">
              <span className="prompt-hit-title">{h.title ?? "untitled document"} <span className="muted">· window {h.window_id}</span></span>
              <span className="prompt-hit-text">
                {highlight(h.text.trim(), q).map((s, i) => (s.match ? <mark key={i} className="hit-mark">{s.text}</mark> : <span key={i}>{s.text}</span>))}
              </span>
            </button>
          </li>
        ))}
      </ol>
    </div>
  );
}
