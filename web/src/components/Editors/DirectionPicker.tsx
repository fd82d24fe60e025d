/** What the Debugger explains: the logit difference (targets − distractors), the log-prob of a
 * continuation, or a probe direction at a layer/point (a node's write, or a pasted vector). */
import { RESID_POINTS, type ResidPoint } from "../../lib/debugDirection";
import type { DirectionDraft } from "./directionDraft";

interface Props {
  draft: DirectionDraft;
  onChange: (d: DirectionDraft) => void;
  errorField: string | null;
  dModel: number | null;
  disabled: boolean;
}

const KINDS: { kind: DirectionDraft["kind"]; label: string }[] = [
  { kind: "logit_diff", label: "logit difference" },
  { kind: "logprob", label: "log-prob of a continuation" },
  { kind: "probe", label: "probe" },
];

export function DirectionPicker({ draft, onChange, errorField, dModel, disabled }: Props) {
  const set = (patch: Partial<DirectionDraft>) => onChange({ ...draft, ...patch });
  const bad = (f: string) => (errorField === `direction.${f}` || errorField === "direction" ? "invalid" : "");
  return (
    <fieldset className={"dbg-dir" + (errorField?.startsWith("direction") ? " invalid" : "")} data-field="direction" disabled={disabled}>
      <legend>Explain</legend>
      <div className="dbg-dir-kinds" role="radiogroup">
        {KINDS.map((k) => (
          <label key={k.kind} className="toggle">
            <input type="radio" name="direction-kind" checked={draft.kind === k.kind} data-testid={`dir-${k.kind}`}
              onChange={() => set({ kind: k.kind })} />
            {k.label}
          </label>
        ))}
      </div>
      {draft.kind === "logprob" && (
        <label className="dbg-ive-field wide">
          continuation
          <input className={"mono " + bad("continuation")} value={draft.continuation} data-testid="dir-continuation" placeholder=" Mary went"
            onChange={(e) => set({ continuation: e.target.value })} />
        </label>
      )}
      {draft.kind === "probe" && (
        <>
          <div className="dbg-ive-row">
            <label className="dbg-ive-field">
              layer
              <input type="number" min={0} className={"num " + bad("layer")} value={draft.layer} data-testid="dir-layer"
                onChange={(e) => set({ layer: e.target.value })} />
            </label>
            <label className="dbg-ive-field">
              point
              <select value={draft.point} onChange={(e) => set({ point: e.target.value as ResidPoint })}>
                {RESID_POINTS.map((p) => <option key={p}>{p}</option>)}
              </select>
            </label>
            <label className="toggle"><input type="checkbox" checked={draft.normalize} onChange={(e) => set({ normalize: e.target.checked })} /> unit norm</label>
          </div>
          <div className="dbg-ive-row">
            <label className="toggle"><input type="radio" checked={draft.source === "node"} onChange={() => set({ source: "node" })} /> a node’s write</label>
            <label className="toggle"><input type="radio" checked={draft.source === "vector"} data-testid="dir-source-vector"
              onChange={() => set({ source: "vector" })} /> paste a vector</label>
          </div>
          {draft.source === "node" ? (
            <label className="dbg-ive-field wide">
              node
              <input className={"mono " + bad("node")} value={draft.node} placeholder="L3.mlp_neuron.12@0" data-testid="dir-node"
                onChange={(e) => set({ node: e.target.value })} />
            </label>
          ) : (
            <label className="dbg-ive-field wide">
              vector{dModel ? ` (${dModel} numbers)` : ""}
              <textarea rows={2} className={"mono " + bad("vector")} value={draft.vector} data-testid="dir-vector"
                onChange={(e) => set({ vector: e.target.value })} />
            </label>
          )}
          <p className="muted small">The residual stream at this layer and point, at the scored position, dotted with the probe.</p>
        </>
      )}
    </fieldset>
  );
}
