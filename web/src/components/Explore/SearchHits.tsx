/** Corpus windows that contain a text: the window with the text marked, its document, its top nodes. */
import { fmt } from "../../lib/format";
import { Link } from "../common/Link";
import { PromptLinks } from "../common/PromptLinks";
import { unitLabel, useKinds } from "../../lib/kinds";
import { highlight, hitNodes, unitHref, unitNoun, type SearchHit, type Segment } from "./explore";

export function SearchHits({ hits, query, model }: { hits: SearchHit[]; query: string; model: string | null }) {
  return (
    <ol className="hits" data-testid="search-hits">
      {hits.map((h) => (
        <Hit key={h.window_id} hit={h} query={query} model={model} />
      ))}
    </ol>
  );
}

const SPECIAL = /(<\|[^|<>\s]{1,40}\|>)/;

/** Text with special tokens such as `<|endoftext|>` (the document separator of the corpus stream) dimmed. */
function Plain({ text }: { text: string }) {
  const parts = text.split(SPECIAL);
  if (parts.length === 1) return <span>{text}</span>;
  return (
    <span>
      {parts.map((p, i) => (i % 2 === 1 ? <span key={i} className="hit-special" title="a special token: e.g. the separator between two documents of the corpus stream">{p}</span> : p))}
    </span>
  );
}

/** Leading and trailing white space of the window dropped, except where it is part of a match. */
function trimmed(segs: Segment[]): Segment[] {
  const out = segs.map((s) => ({ ...s }));
  const first = out[0];
  if (first && !first.match) first.text = first.text.trimStart();
  const last = out[out.length - 1];
  if (last && !last.match) last.text = last.text.trimEnd();
  return out.filter((s) => s.text !== "");
}

function Hit({ hit, query, model }: { hit: SearchHit; query: string; model: string | null }) {
  const nodes = hitNodes(hit);
  const kinds = useKinds();
  return (
    <li className="hit" data-testid="search-hit" data-window={hit.window_id}>
      <div className="hit-head">
        <span className="hit-title" title={hit.title ?? undefined}>{hit.title ?? "untitled document"}</span>
        <span className="muted small">window {hit.window_id}</span>
        <PromptLinks prompt={hit.text} />
      </div>
      <div className="hit-text" data-testid="hit-text">
        {trimmed(highlight(hit.text, query)).map((s, i) =>
          s.match ? (
            <mark key={i} className="hit-mark">{s.text}</mark>
          ) : (
            <Plain key={i} text={s.text} />
          ),
        )}
      </div>
      <div className="hit-nodes">
        {nodes.length === 0 ? (
          <span className="muted small">no node has this window among its top examples</span>
        ) : (
          <>
            <span className="muted small">top example of</span>
            {nodes.map((n) => {
              const label = unitLabel(kinds, n.kind, n.layer, n.unit);
              const href = unitHref(kinds, n.kind, n.layer, n.unit, model);
              const title = `${unitNoun(kinds, n.kind)} ${label}: ${fmt(n.activation, 3)} at its peak${n.position != null ? `, token ${n.position} of the window` : ""}`;
              const body = (
                <>
                  <span className="mono">{label}</span> <span className="node-chip-act">{fmt(n.activation, 2)}</span>
                </>
              );
              return href ? (
                <Link key={label} href={href} className="node-chip" data-testid="node-link" title={title}>
                  {body}
                </Link>
              ) : (
                <span key={label} className="node-chip" title={title}>{body}</span>
              );
            })}
          </>
        )}
      </div>
    </li>
  );
}
