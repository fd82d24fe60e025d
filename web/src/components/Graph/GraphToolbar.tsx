/** Above the graph: the pinned-only view, supernodes, the causal check, the Neuronpedia export, the
 * Debugger, and a legend. */
import { useState, type FormEvent } from "react";
import { PromptLinks } from "../common/PromptLinks";

interface Props {
  pinned: number;
  /** pinned latents and errors in no supernode yet */
  groupable: number;
  pinnedOnly: boolean;
  onPinnedOnly: (on: boolean) => void;
  onGroup: (label: string) => void;
  onClearPins: () => void;
  onCheck: () => void;
  checkLabel: string;
  onExport: () => void;
  exporting: boolean;
  /** the graph's prompt, and the Debugger on it scoring the graph's target */
  prompt: string;
  debuggerHref: string;
}

export function GraphToolbar(p: Props) {
  const [label, setLabel] = useState("");
  const group = (e: FormEvent) => {
    e.preventDefault();
    if (p.groupable < 2) return;
    p.onGroup(label);
    setLabel("");
  };
  return (
    <div className="graph-toolbar">
      <label className="toggle" title="the pinned nodes and supernodes, with every token and logit">
        <input type="checkbox" checked={p.pinnedOnly} onChange={(e) => p.onPinnedOnly(e.target.checked)} data-testid="pinned-only" />
        show pinned only
      </label>
      <span className="muted small" data-testid="pinned-count">
        {p.pinned} pinned
      </span>
      {p.pinned > 0 && (
        <button type="button" className="link" onClick={p.onClearPins} data-testid="clear-pins">
          clear
        </button>
      )}
      <form className="group-form" onSubmit={group}>
        <input type="text" value={label} placeholder="supernode label" onChange={(e) => setLabel(e.target.value)}
          data-testid="group-label" aria-label="supernode label" />
        <button type="submit" className="btn small" disabled={p.groupable < 2} data-testid="group-button"
          title={p.groupable < 2 ? "pin two or more latents or errors first (ctrl/cmd-click)" : `group the ${p.groupable} pinned nodes into one box`}>
          group pinned
        </button>
      </form>
      <button type="button" className="btn small" onClick={p.onCheck} data-testid="check-button" title={p.checkLabel}>
        Causal check
      </button>
      <span className="spacer" />
      <button type="button" className="btn small" onClick={p.onExport} disabled={p.exporting} data-testid="export-button"
        title="the pruned graph as Neuronpedia's graph JSON, with the pinned nodes and supernodes">
        {p.exporting ? "exporting…" : "Export for Neuronpedia"}
      </button>
      <PromptLinks prompt={p.prompt} debuggerHref={p.debuggerHref} debuggerTestId="debugger-link" />
    </div>
  );
}

export function GraphLegend() {
  return (
    <div className="graph-legend muted small">
      <span><svg width="12" height="12"><circle cx="6" cy="6" r="5" className="lg-latent" /></svg> latent</span>
      <span><svg width="12" height="12"><path d="M6 1 L11 6 L6 11 L1 6 Z" className="lg-error" /></svg> error</span>
      <span><svg width="14" height="12"><rect x="1" y="2" width="12" height="8" rx="2" className="lg-token" /></svg> token</span>
      <span><svg width="14" height="12"><rect x="1" y="2" width="12" height="8" rx="2" className="lg-logit" /></svg> logit</span>
      <span><svg width="14" height="12"><rect x="1" y="2" width="12" height="8" rx="4" className="lg-supernode" /></svg> supernode</span>
      <span><svg width="12" height="12"><circle cx="6" cy="6" r="4.5" className="lg-latent lg-pinned" /></svg> pinned</span>
      <span><span className="sw pos-sw" /> positive edge</span>
      <span><span className="sw neg-sw" /> negative edge</span>
      <span>click: select · ctrl/cmd-click: pin · Esc: deselect</span>
    </div>
  );
}
