/** An edge explained (POST /api/graph/edge): the attention heads that carry it, with their shares of
 * the edge, and the (query, key) pairs that carry most of each head's share, to trace in the Debugger. */
import { useEffect, useRef } from "react";
import type { KindInfo, Schemas } from "../../client/api";
import type { Resource } from "../../hooks/useApi";
import { showToken, signed } from "../../lib/format";
import type { GraphEdgeRef } from "../../lib/graphState";
import type { GraphIndex } from "../../lib/graphView";
import { ErrorBox } from "../common/ErrorBox";
import { Link } from "../common/Link";
import { Spinner } from "../common/Spinner";
import { headHref, traceHref } from "./graphLinks";
import { LatentPageLink, nodeName } from "./NodePanel";

export type GraphEdgeResponse = Schemas["GraphEdgeResponse"];

interface Props {
  edge: GraphEdgeRef;
  r: Resource<GraphEdgeResponse>;
  idx: GraphIndex;
  tokens: string[];
  prompt: string;
  kinds: KindInfo[] | null;
  model: string | null;
  onSelect: (id: string) => void;
  onRetry: () => void;
  onClose: () => void;
}

/** a share as a fraction of the edge's weight */
const part = (share: number, weight: number) => (weight !== 0 ? `${((100 * share) / weight).toFixed(1)}%` : "–");

export function EdgePanel({ edge, r, idx, tokens, prompt, kinds, model, onSelect, onRetry, onClose }: Props) {
  // a click on an edge row of the node panel above: bring the answer into view (in braces: recent
  // Chromium's scrollIntoView returns a promise, which an effect must not return)
  const box = useRef<HTMLElement>(null);
  useEffect(() => {
    box.current?.scrollIntoView?.({ block: "nearest" });
  }, [edge.source, edge.sink]);
  const src = idx.byId.get(edge.source);
  const dst = idx.byId.get(edge.sink);
  const link = idx.outputs.get(edge.source)?.find((l) => l.target === edge.sink);
  const d = r.data;
  const tok = (p: number) => showToken(tokens[p] ?? "");
  return (
    <section className="box graph-panel" data-testid="edge-panel" ref={box}>
      <div className="box-head">
        <h3>edge</h3>
        {r.loading && <Spinner label="finding its heads" />}
        <button type="button" className="icon" onClick={onClose} title="close" aria-label="close">×</button>
      </div>
      <div className="edge-ends">
        <button type="button" className="link" onClick={() => onSelect(edge.source)}>{src ? nodeName(src) : edge.source}</button>{" "}
        <LatentPageLink node={src} ctx={{ prompt, kinds, model }} />
        <span className="muted"> @{src?.pos ?? "?"} → </span>
        <button type="button" className="link" onClick={() => onSelect(edge.sink)}>{dst ? nodeName(dst) : edge.sink}</button>{" "}
        <LatentPageLink node={dst} ctx={{ prompt, kinds, model }} />
        <span className="muted"> @{dst?.pos ?? "?"}</span>
        {link && <span className="mono"> · weight {signed(link.weight)}</span>}
      </div>
      {r.error && <ErrorBox error={r.error} onRetry={onRetry} />}
      {d && (
        <div className={r.loading ? "stale" : ""} data-testid="edge-heads">
          <p className="small">
            Through attention: <b className="mono" data-testid="through-attention">{signed(d.through_attention)}</b>{" "}
            <span className="muted">({part(d.through_attention, d.weight)} of the edge's {signed(d.weight)}; the rest is the residual stream)</span>
          </p>
          {d.heads.length === 0 ? (
            <p className="muted small" data-testid="no-heads">No head carries a part of this edge.</p>
          ) : (
            <table className="grid heads-table">
              <thead>
                <tr>
                  <th>head / (query ← key)</th>
                  <th className="num" title="the part of the edge's weight that goes when the head's pattern (or this entry of it) is zeroed">
                    share
                  </th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {d.heads.map((h) => {
                  const page = h.pairs[0]?.trace ? headHref(h.pairs[0].trace, prompt, model) : null;
                  return [
                    <tr key={`${h.layer}.${h.head}`} className="head-row" data-testid="head-row">
                      <td>
                        {page ? <Link href={page} className="mono">L{h.layer}.H{h.head}</Link> : <span className="mono">L{h.layer}.H{h.head}</span>}
                      </td>
                      <td className="num" title={`${signed(h.share)} of the edge's ${signed(d.weight)}`} data-share={h.share}>
                        {part(h.share, d.weight)}
                      </td>
                      <td />
                    </tr>,
                    ...h.pairs.map((p) => {
                      const href = p.trace ? traceHref(prompt, p.trace) : null;
                      return (
                        <tr key={`${h.layer}.${h.head}:${p.query}<-${p.key}`} className="pair-row" data-testid="pair-row">
                          <td className="pair">
                            {p.query} <span className="mono">{tok(p.query)}</span> ← {p.key} <span className="mono">{tok(p.key)}</span>
                          </td>
                          <td className="num muted" title={`${signed(p.share)} of the edge's ${signed(d.weight)}`} data-share={p.share}>
                            {part(p.share, d.weight)}
                          </td>
                          <td>
                            {href && (
                              <Link href={href} className="small nowrap" data-testid="trace-link" title={`trace Q/K in the Debugger: open ${p.trace} there, traced through its query and key`}>
                                trace Q/K ↗
                              </Link>
                            )}
                          </td>
                        </tr>
                      );
                    }),
                  ];
                })}
              </tbody>
            </table>
          )}
          <p className="muted small">
            <b>trace Q/K ↗</b> opens the (query ← key) pair in the Debugger, traced through its query and key: why the head attends there.
          </p>
          <p className="muted small">A share (in % of the edge; hover for its value) is the part of the edge's weight that goes when the head's frozen pattern (or one entry of it) is zeroed: heads of opposite signs cancel, and a path through two heads counts for both.</p>
        </div>
      )}
    </section>
  );
}
