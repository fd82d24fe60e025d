/** The active interventions (each editable and removable, with its op) and the trace banner. */
import type { Intervention, Node, Through } from "../../client/api";
import { formatNode, interventionLabel } from "../../lib/nodes";

interface ListProps {
  interventions: Intervention[];
  invalid: boolean;
  onRemove: (i: number) => void;
  onClear: () => void;
  /** open the editor on intervention i, or on a new one (null) */
  onEdit: (i: number | null) => void;
}

export function InterventionList({ interventions, invalid, onRemove, onClear, onEdit }: ListProps) {
  return (
    <section className={"box interventions" + (invalid ? " invalid" : "")} data-field="interventions" data-testid="interventions">
      <div className="box-head">
        <h3>Interventions</h3>
        <button type="button" className="link" data-testid="iv-add" onClick={() => onEdit(null)}>
          + add
        </button>
        {interventions.length > 0 && (
          <button type="button" className="link" onClick={onClear}>
            clear all
          </button>
        )}
      </div>
      {interventions.length === 0 ? (
        <p className="muted small">
          None. Use “ablate” in the node table to zero-ablate a node, “edit” to pick another op (mean, resample, scale, set,
          steer), or “+ add” for any unit or the residual stream; the result appears side by side.
        </p>
      ) : (
        <ul className="iv-list">
          {interventions.map((iv, i) => (
            <li key={i} className="iv" title={JSON.stringify(iv)}>
              <code>{interventionLabel(iv)}</code>
              <button type="button" className="link small" data-testid="iv-edit" onClick={() => onEdit(i)}>
                edit
              </button>
              <button type="button" className="icon" aria-label={`remove ${interventionLabel(iv)}`} onClick={() => onRemove(i)}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

interface TraceProps {
  node: Node;
  through: Through | null;
  onClear: () => void;
}

export function TraceBanner({ node, through, onClear }: TraceProps) {
  return (
    <div className="trace-banner" data-testid="trace-banner">
      <span>
        Tracing <code>{formatNode(node)}</code>
        {through && (
          <>
            {" "}
            through <code>{through}</code>
          </>
        )}
        <span className="muted"> — the node’s activation is the direction explained, not the logit difference</span>
      </span>
      <button type="button" className="btn small" onClick={onClear}>
        clear trace
      </button>
    </div>
  );
}
