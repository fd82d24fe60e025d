/** How good the graph is (replacement and completeness scores, whole and pruned), what pruning kept,
 * counts and timings. */
import { pct } from "../../lib/format";
import type { GraphIndex, GraphResponse } from "../../lib/graphView";

const SCORES: [keyof GraphResponse["scores"], string, string][] = [
  ["replacement", "replacement", "the fraction of the logits' end-to-end influence that flows from tokens through latents, not errors"],
  ["completeness", "completeness", "the fraction of the inputs to nodes that comes from nodes (not errors), influence-weighted"],
  ["pruned_replacement", "pruned replacement", "the replacement score of the pruned graph (pruned latents counted as errors)"],
  ["pruned_completeness", "pruned completeness", "the completeness score of the pruned graph"],
];

export function GraphStats({ g, idx }: { g: GraphResponse; idx: GraphIndex }) {
  const count = (t: string) => idx.nodes.filter((n) => n.type === t).length;
  const timings = Object.entries(g.timings).filter(([k]) => k !== "total");
  return (
    <div className="graph-stats" data-testid="graph-stats">
      {SCORES.map(([k, label, title]) => (
        <div className="stat" key={k} title={title}>
          <span className="stat-label">{label}</span>
          <b data-testid={`score-${k}`} data-value={g.scores[k]}>{pct(g.scores[k])}</b>
        </div>
      ))}
      <div className="stat" title="node influence kept by pruning (the node threshold asked for)">
        <span className="stat-label">kept node influence</span>
        <b data-testid="kept-node-influence">{pct(g.kept_node_influence)}</b>
      </div>
      <div className="stat" title="edge influence kept by pruning (the edge threshold asked for)">
        <span className="stat-label">kept edge influence</span>
        <b data-testid="kept-edge-influence">{pct(g.kept_edge_influence)}</b>
      </div>
      <div className="stat" title="nodes and links of the pruned graph">
        <span className="stat-label">shown</span>
        <b data-testid="graph-counts">
          {count("latent")} latents · {count("error")} errors · {g.links.length} links
        </b>
      </div>
      <div className="stat" title="active latents on the prompt; latents whose inputs were computed (at most max_features)">
        <span className="stat-label">latents active / visited</span>
        <b>
          {g.active_features} / {g.visited_features}
        </b>
      </div>
      <div className="stat timings" title="seconds by phase of building the graph (once per prompt, target and max_features)">
        <span className="stat-label">built in {(g.timings.total ?? 0).toFixed(1)} s</span>
        <span className="muted small">{timings.map(([k, v]) => `${k.replace(/_/g, " ")} ${v.toFixed(1)} s`).join(" · ")}</span>
      </div>
    </div>
  );
}
