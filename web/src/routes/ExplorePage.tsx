/** The dataset explorer (/explore): which nodes fire on a token (?token=) and which corpus windows
 * contain a text (?q=), over the collated dataset the node pages read. */
import { useEffect, useRef, useState } from "react";
import { post } from "../client/api";
import { ErrorBox } from "../components/common/ErrorBox";
import { Spinner } from "../components/common/Spinner";
import { Tok } from "../components/common/Tok";
import { DatasetStatusLine } from "../components/Dataset/DatasetStatusLine";
import { exploreHref, parseQuery, tokenRequest, type ExploreQuery, type SearchHit, type TokenNode } from "../components/Explore/explore";
import { SearchHits } from "../components/Explore/SearchHits";
import { ExplanationHits } from "../components/Explanation/ExplanationHits";
import type { NodeExplanation } from "../components/Explanation/explanations";
import { TokenNodes } from "../components/Explore/TokenNodes";
import { useModelInfo, useResource, type Resource } from "../hooks/useApi";
import { useDatasetStatus } from "../hooks/useDatasetStatus";
import { navigate } from "../hooks/useLocation";
import { useShortcuts } from "../hooks/useShortcuts";

/** How many nodes / windows one query asks for. */
export const TOKEN_N = 50;
export const SEARCH_N = 25;
export const EXPLANATION_N = 25;
const MAX_SEARCH = 200; // SearchRequest.text's max_length

const SUGGESTED_TOKENS = [" the", " Paris", " war"];
const SUGGESTED_SEARCHES = ["photosynthesis", "Roman Empire"];

/** The answer to `key` (or, dimmed, the previous one while `key` loads); null after an error. */
function answer<T>(r: Resource<T>, key: string | null): { data: T | null; stale: boolean } {
  if (key === null || r.data === null) return { data: null, stale: false };
  if (r.dataKey === key) return { data: r.data, stale: false };
  return r.loading ? { data: r.data, stale: true } : { data: null, stale: false };
}

export function ExplorePage({ search, pollMs = 3000 }: { search: string; pollMs?: number }) {
  const query = parseQuery(search);
  const model = useModelInfo();
  const modelName = model?.name || null;
  const status = useDatasetStatus(true, pollMs); // polled while the dataset is being collated
  const st = status.status;
  // While collating, the server answers from the newest preview (the windows done so far), if any:
  // the queries run on it and again on each newer preview and on the finished dataset.
  const preview = st?.status === "running" ? (st.preview_tokens ?? null) : null;
  const ready = st?.status === "done" || preview !== null;
  const version = st?.status === "done" ? "done" : `preview:${preview}`;
  // Submitting the query already shown runs it again (e.g. after "server busy").
  const [nonce, setNonce] = useState(0);

  const tokenKey = ready && query.token.trim() !== "" ? `token:${query.token}@${version}#${nonce}` : null;
  const tokens = useResource<{ token: string; rows: TokenNode[] }>(tokenKey, (signal) => {
    const token = query.token;
    return post("/api/dataset/token", { token: tokenRequest(token), n: TOKEN_N }, signal).then((rows) => ({ token, rows }));
  });
  const searchKey = ready && query.q.trim() !== "" ? `q:${query.q}@${version}#${nonce}` : null;
  const hits = useResource<{ q: string; hits: SearchHit[] }>(searchKey, (signal) => {
    const q = query.q;
    return post("/api/dataset/search", { text: q, n: SEARCH_N }, signal).then((h) => ({ q, hits: h }));
  });

  const [explPage, setExplPage] = useState(0);
  const semantic = query.sem === "1";
  useEffect(() => setExplPage(0), [query.expl, semantic]);
  const explKey = ready && query.expl.trim() !== "" ? `expl:${semantic ? "sem:" : ""}${query.expl}@${version}:${explPage}#${nonce}` : null;
  const expl = useResource<{ q: string; semantic: boolean; hits: NodeExplanation[]; more: boolean; offset: number }>(explKey, (signal) => {
    const q = query.expl;
    const offset = explPage * EXPLANATION_N;
    return post("/api/explanations/search", { text: q, n: EXPLANATION_N, offset, semantic }, signal).then((r) => ({ q, semantic, ...r, offset }));
  });

  const searchInput = useRef<HTMLInputElement>(null);
  useShortcuts({
    "/": () => {
      searchInput.current?.focus();
      searchInput.current?.select();
    },
  });

  const set = (name: keyof ExploreQuery, value: string) => {
    const href = exploreHref(search, name, value);
    if (href === window.location.pathname + window.location.search) setNonce((n) => n + 1);
    else navigate(href, "push");
  };

  const showToken = ready && query.token.trim() !== "";
  const showSearch = ready && query.q.trim() !== "";
  const showExpl = ready && query.expl.trim() !== "";
  const n = (x: number | undefined) => (x ?? 0).toLocaleString("en-US");

  return (
    <div className="page explore-page" data-testid="explore-page">
      <div className="page-head">
        <h2>Dataset explorer</h2>
        {st?.corpus && (
          <span className="muted small" data-testid="explore-corpus">
            corpus: {st.corpus}
            {st.status === "done" && (st.tokens_total ?? 0) > 0 ? ` · ${n(st.tokens_total)} tokens` : ""}
          </span>
        )}
        {status.loading && !st && <Spinner label="loading the dataset's status" />}
      </div>
      <p className="muted explore-intro">
        Which neurons and heads fire on a token, and which windows of the collated corpus contain a text: each links to
        its node page.
      </p>
      <div className="explore-forms">
        <QueryForm id="explore-token" label="Which nodes fire on a token?" value={query.token} testId="token-form"
          placeholder="a token, e.g.  Paris  or #7042" button="Find nodes" onSubmit={(v) => set("token", v)}
          hint="the token's text (case and surrounding spaces ignored) or its id as #id" />
        <QueryForm id="explore-search" label="Search the corpus" value={query.q} testId="search-form" inputRef={searchInput}
          placeholder="text to find, e.g. photosynthesis" button="Search" maxLength={MAX_SEARCH} onSubmit={(v) => set("q", v)}
          hint={<>windows containing the text, ignoring case · press <kbd>/</kbd> to search</>} />
        <QueryForm id="explore-expl" label="Search explanations" value={query.expl} testId="expl-form"
          placeholder={semantic ? "e.g. names of composers" : "e.g. parenthes"} button="Find nodes" maxLength={MAX_SEARCH}
          onSubmit={(v) => set("expl", v)}
          hint={<>
            <label className="check" title="rank every node's explanation by its sentence-embedding similarity (all-MiniLM-L6-v2) to the text">
              <input type="checkbox" checked={semantic} data-testid="expl-semantic" onChange={(e) => set("sem", e.target.checked ? "1" : "")} />
              by meaning
            </label>{" "}
            {semantic ? "closest explanations first, by sentence embedding" : "explanations containing the text, ignoring case; best simulation score first"}
          </>} />
      </div>
      {status.error && <ErrorBox error={status.error} onRetry={status.retry} />}
      {st && st.status !== "done" && (
        <DatasetStatusLine s={st} className="box" shown="The results" waiting="The explorer opens after its first shard." />
      )}
      {ready && !showToken && !showSearch && !showExpl && <Suggestions onToken={(t) => set("token", t)} onSearch={(q) => set("q", q)} />}
      {(showToken || showSearch) && (
        <div className={"explore-results" + (showToken && showSearch ? " two" : "")}>
          {showToken && (
            <ResultSection testId="token-results" resource={tokens} resourceKey={tokenKey} loadingLabel="finding nodes"
              title={<>Nodes whose top examples peak on{" "}
                {typeof tokenRequest(query.token) === "number" ? `token id ${tokenRequest(query.token)}` : <Tok t={query.token} />}</>}>
              {(d) => d.rows.length > 0 ? (
                <>
                  <p className="muted small explore-count" data-testid="token-count">
                    {count(d.rows.length, TOKEN_N, "node")}, most examples first; click a column to sort
                  </p>
                  <TokenNodes rows={d.rows} model={modelName} />
                </>
              ) : (
                <p className="muted" data-testid="token-empty">
                  No node's top examples peak on this token. The token is matched as one whole token of the model
                  (e.g. <code> Paris</code>, not <code>Paris is</code>); a rare token may have no examples in this corpus.
                </p>
              )}
            </ResultSection>
          )}
          {showSearch && (
            <ResultSection testId="search-results" resource={hits} resourceKey={searchKey} loadingLabel="searching"
              title={<>Windows containing <span className="mono explore-q">“{query.q}”</span></>}>
              {(d) => d.hits.length > 0 ? (
                <>
                  <p className="muted small explore-count" data-testid="search-count">
                    {count(d.hits.length, SEARCH_N, "window")}, in corpus order, each with the nodes that have it among their top
                    examples (strongest first)
                  </p>
                  <SearchHits hits={d.hits} query={d.q} model={modelName} />
                </>
              ) : (
                <p className="muted" data-testid="search-empty">No window of the corpus contains this text.</p>
              )}
            </ResultSection>
          )}
        </div>
      )}
      {showExpl && (
        <ResultSection testId="expl-results" resource={expl} resourceKey={explKey} loadingLabel="searching explanations"
          title={<>Nodes whose explanation {semantic ? "is closest in meaning to" : "contains"} <span className="mono explore-q">“{query.expl}”</span></>}>
          {(d) => d.hits.length > 0 ? (
            <>
              <p className="muted small explore-count" data-testid="expl-count">
                {d.offset + 1}–{d.offset + d.hits.length}{d.more ? " (more after these)" : ""},{" "}
                {d.semantic ? "most similar first (cosine of sentence embeddings)" : "best simulation score first"}
              </p>
              <ExplanationHits hits={d.hits} query={d.semantic ? "" : d.q} kinds={model?.kinds ?? null} model={modelName} />
              <div className="pager">
                {explPage > 0 && <button type="button" className="btn small" onClick={() => setExplPage((p) => p - 1)}>← previous</button>}
                {d.more && <button type="button" className="btn small" data-testid="expl-more" onClick={() => setExplPage((p) => p + 1)}>next →</button>}
              </div>
            </>
          ) : (
            <p className="muted" data-testid="expl-empty">
              {semantic ? "No explanation has a sentence embedding yet (explained without the embedder)." : "No explanation contains this text."}
            </p>
          )}
        </ResultSection>
      )}
      {ready && st?.attribution && (
        <p className="attribution muted small" data-testid="attribution">
          Corpus: {st.attribution}
        </p>
      )}
    </div>
  );
}

/** "the first 50 nodes" when the answer may have been cut at `max`, else "3 nodes". */
function count(n: number, max: number, noun: string): string {
  return n === max ? `the first ${max} ${noun}s` : `${n} ${noun}${n === 1 ? "" : "s"}`;
}

interface SectionProps<T> {
  testId: string;
  title: React.ReactNode;
  resource: Resource<T>;
  resourceKey: string | null;
  loadingLabel: string;
  /** the answer's body (dimmed while the next query loads) */
  children: (data: T) => React.ReactNode;
}

/** One query's results: its title and spinner, an error, and the (possibly stale) answer. */
function ResultSection<T>({ testId, title, resource, resourceKey, loadingLabel, children }: SectionProps<T>) {
  const shown = answer(resource, resourceKey);
  return (
    <section className="box explore-section" data-testid={testId}>
      <div className="box-head">
        <h3>{title}</h3>
        {resource.loading && <Spinner label={loadingLabel} />}
      </div>
      {resource.error && <ErrorBox error={resource.error} />}
      {shown.data && (
        <div className={shown.stale ? "stale" : ""} data-stale={shown.stale ? "true" : "false"}>
          {children(shown.data)}
        </div>
      )}
    </section>
  );
}

interface FormProps {
  id: string;
  label: string;
  value: string;
  placeholder: string;
  button: string;
  hint: React.ReactNode;
  testId: string;
  onSubmit: (value: string) => void;
  inputRef?: React.Ref<HTMLInputElement>;
  maxLength?: number;
}

function QueryForm({ id, label, value, placeholder, button, hint, testId, onSubmit, inputRef, maxLength }: FormProps) {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]); // back/forward and suggestion clicks
  return (
    <form className="box explore-form" role="search" aria-label={label} data-testid={testId}
      onSubmit={(e) => { e.preventDefault(); onSubmit(draft); }}>
      <label htmlFor={id} className="field-label">{label}</label>
      <div className="explore-input-row">
        <input id={id} ref={inputRef} type="search" className="mono" value={draft} placeholder={placeholder} maxLength={maxLength}
          spellCheck={false} autoComplete="off" onChange={(e) => setDraft(e.target.value)} data-testid={`${testId}-input`} />
        <button type="submit" className="btn primary" data-testid={`${testId}-submit`}>{button}</button>
      </div>
      <div className="muted small">{hint}</div>
    </form>
  );
}

function Suggestions({ onToken, onSearch }: { onToken: (t: string) => void; onSearch: (q: string) => void }) {
  return (
    <div className="box explore-suggestions" data-testid="suggestions">
      <span className="muted">Try a token:</span>
      {SUGGESTED_TOKENS.map((t) => (
        <button key={t} type="button" className="btn small" data-testid="suggest-token" onClick={() => onToken(t)}>
          <Tok t={t} />
        </button>
      ))}
      <span className="muted explore-sep">or a search:</span>
      {SUGGESTED_SEARCHES.map((q) => (
        <button key={q} type="button" className="btn small" data-testid="suggest-search" onClick={() => onSearch(q)}>
          {q}
        </button>
      ))}
    </div>
  );
}
