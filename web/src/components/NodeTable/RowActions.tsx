/** Per-row actions: ablate, trace (through the choices the node's kind offers), open the node page. */
import type { Node, Through } from "../../client/api";
import { traceChoices, useKinds } from "../../lib/kinds";

export interface NodeActions {
  onAblate: (n: Node) => void;
  /** open the intervention editor on this node (any op) */
  onEdit?: (n: Node) => void;
  onTrace: (n: Node, through: Through | null) => void;
  nodeHref: (n: Node) => string;
  onOpen: (n: Node) => void;
}

export function RowActions({ node, actions, ablated }: { node: Node; actions: NodeActions; ablated: boolean }) {
  const traces = traceChoices(node, useKinds());
  return (
    <span className="row-actions">
      <button type="button" className="act" data-testid="ablate" disabled={ablated}
        title={ablated ? "already ablated" : "zero-ablate this node (adds an intervention)"} onClick={() => actions.onAblate(node)}>
        ablate
      </button>
      {actions.onEdit && (
        <button type="button" className="act" data-testid="edit-iv" title="edit this node: pick an op (mean, resample, scale, set, …)"
          onClick={() => actions.onEdit?.(node)}>
          edit
        </button>
      )}
      {traces.length > 0 && (
        <span className="act-group" title="trace: explain this node's activation instead">
          {traces[0]?.through && <span className="act-label">trace</span>}
          {traces.map((t) => (
            <button key={t.label} type="button" className="act" data-testid={`trace-${t.label}`}
              title={t.through ? `trace through ${t.through}` : "trace this node"} onClick={() => actions.onTrace(node, t.through)}>
              {t.label}
            </button>
          ))}
        </span>
      )}
      <a className="act" href={actions.nodeHref(node)} data-testid="open-node" title="open the node page"
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          actions.onOpen(node);
        }}>
        open
      </a>
    </span>
  );
}
