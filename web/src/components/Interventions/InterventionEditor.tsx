/** Add or edit one intervention: the target (a node kind's unit(s) or the residual stream), the op and
 * its parameters, checked inline as you type (interventionDraft.ts) before it joins the list. */
import type { Intervention, ModelInfo } from "../../client/api";
import { RESID_POINTS, type ResidPoint } from "../../lib/debugDirection";
import { kindOf } from "../../lib/kinds";
import { buildIntervention, OP_CHOICES, RESIDUAL, type IvDraft, type OpKind } from "./interventionDraft";

interface Props {
  draft: IvDraft;
  model: ModelInfo;
  /** the index being edited in the list, or null when adding */
  editing: number | null;
  onChange: (d: IvDraft) => void;
  onSave: (iv: Intervention) => void;
  onCancel: () => void;
}

export function InterventionEditor({ draft, model, editing, onChange, onSave, onCancel }: Props) {
  const ctx = { kinds: model.kinds, nLayers: model.n_layers, dModel: model.d_model, maxBatch: model.limits.max_batch ?? 16 };
  const built = buildIntervention(draft, ctx);
  const bad = built.ok ? null : built.field;
  const set = (patch: Partial<IvDraft>) => onChange({ ...draft, ...patch });
  const kind = draft.target === RESIDUAL ? null : kindOf(model.kinds, draft.target);
  const layered = draft.target === RESIDUAL || (kind?.layered ?? false);
  const input = (field: keyof IvDraft, label: string, props: React.InputHTMLAttributes<HTMLInputElement> = {}, wide = false) => (
    <label className={"dbg-ive-field" + (wide ? " wide" : "")}>
      {label}
      <input {...props} value={String(draft[field])} data-testid={`iv-${field}`} className={(props.className ?? "") + (bad === field ? " invalid" : "")}
        onChange={(e) => set({ [field]: e.target.value } as Partial<IvDraft>)} />
    </label>
  );
  return (
    <form className="box dbg-ive" data-testid="iv-editor" onSubmit={(e) => {
      e.preventDefault();
      if (built.ok) onSave(built.iv);
    }}>
      <div className="box-head">
        <h3>{editing === null ? "Add an intervention" : `Edit intervention ${editing + 1}`}</h3>
        <button type="button" className="link" onClick={onCancel}>cancel</button>
      </div>
      <div className="dbg-ive-row">
        <label className="dbg-ive-field">
          target
          <select value={draft.target} data-testid="iv-target" onChange={(e) => set({ target: e.target.value, key: "" })}>
            {model.kinds.map((k) => <option key={k.name} value={k.name}>{k.label}</option>)}
            <option value={RESIDUAL}>residual stream</option>
          </select>
        </label>
        {layered && input("layer", "layer", { type: "number", min: 0, max: model.n_layers - 1, className: "num" })}
        {kind?.unit != null && input("index", kind.unit + (kind.size != null ? ` (0..${kind.size - 1})` : ""), { placeholder: "3 or 3, 7" })}
        {draft.target === RESIDUAL && (
          <label className="dbg-ive-field">
            point
            <select value={draft.point} data-testid="iv-point" onChange={(e) => set({ point: e.target.value as ResidPoint })}>
              {RESID_POINTS.map((p) => <option key={p}>{p}</option>)}
            </select>
          </label>
        )}
      </div>
      <div className="dbg-ive-row">
        {input("positions", "positions", { placeholder: "all (or 5, -1)" })}
        {kind?.pairs && input("key", "key (a pair)", { placeholder: "none" })}
      </div>
      <div className="dbg-ive-row">
        <label className="dbg-ive-field">
          op
          <select value={draft.op} data-testid="iv-op" className={bad === "op" ? "invalid" : ""}
            onChange={(e) => set({ op: e.target.value as OpKind })}>
            {OP_CHOICES.map((c) => <option key={c.op} value={c.op} title={c.help}>{c.label}</option>)}
          </select>
        </label>
        {draft.op === "scale" && input("factor", "factor", { inputMode: "decimal" })}
        {(draft.op === "set" || draft.op === "add") && input("value", "value", { placeholder: "1.5 or 1, 2, …" })}
        {draft.op === "resample" && input("prompt", "prompt")}
        {draft.op === "steer" && input("coefficient", "coefficient", { inputMode: "decimal" })}
      </div>
      {draft.op === "mean" && (
        <label className="dbg-ive-field wide">
          reference prompts (one a line)
          <textarea rows={3} value={draft.reference} data-testid="iv-reference" className={bad === "reference" ? "invalid" : ""}
            onChange={(e) => set({ reference: e.target.value })} />
        </label>
      )}
      {draft.op === "steer" && (
        <div className="dbg-ive-steer">
          <div className="dbg-ive-row">
            <label className="toggle"><input type="radio" checked={draft.source === "node"} onChange={() => set({ source: "node" })} /> a node’s write</label>
            <label className="toggle"><input type="radio" checked={draft.source === "vector"} data-testid="iv-source-vector"
              onChange={() => set({ source: "vector" })} /> a pasted vector</label>
            <label className="toggle"><input type="checkbox" checked={draft.normalize} onChange={(e) => set({ normalize: e.target.checked })} /> unit norm</label>
          </div>
          {draft.source === "node" ? (
            <div className="dbg-ive-row">
              {input("node", "node (its write is the direction)", { placeholder: "L3.mlp_neuron.12@0", className: "mono" }, true)}
              {input("writePrompt", "read on prompt (only for kinds whose write depends on one, e.g. heads)", {}, true)}
            </div>
          ) : (
            <label className="dbg-ive-field wide">
              vector ({model.d_model} numbers)
              <textarea rows={2} value={draft.vector} data-testid="iv-vector" className={bad === "vector" ? "invalid" : ""}
                onChange={(e) => set({ vector: e.target.value })} />
            </label>
          )}
        </div>
      )}
      <p className="muted small dbg-ive-help">{OP_CHOICES.find((c) => c.op === draft.op)?.help}</p>
      {!built.ok && <p className="dbg-ive-error small" data-testid="iv-error">{built.message}</p>}
      <div className="submit-row">
        <button type="submit" className="btn primary" data-testid="iv-save" disabled={!built.ok}>
          {editing === null ? "Add" : "Save"}
        </button>
      </div>
    </form>
  );
}
