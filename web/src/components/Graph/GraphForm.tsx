/** The graph's request: prompt, the output token to explain, pruning thresholds, max features. */
import type { FormEvent } from "react";

export interface GraphDraft {
  prompt: string;
  target: string;
  nodeThreshold: string;
  edgeThreshold: string;
  maxFeatures: string;
}

interface Props {
  draft: GraphDraft;
  onChange: (d: GraphDraft) => void;
  onSubmit: () => void;
  loading: boolean;
  /** the field a 422 names (prompt, target, max_features, ...) */
  errorField: string | null;
  maxFeatures?: number;
}

export function GraphForm({ draft, onChange, onSubmit, loading, errorField, maxFeatures }: Props) {
  const set = (patch: Partial<GraphDraft>) => onChange({ ...draft, ...patch });
  const bad = (f: string) => (errorField === f ? "invalid" : "");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onSubmit();
  };
  // noValidate: the page checks the fields itself and says what is wrong (the browser's step check
  // would silently refuse e.g. max features 4096, with step 256 from min 1)
  return (
    <form className="box graph-form" onSubmit={submit} data-testid="graph-form" noValidate>
      <label className="grow">
        <span className="field-label">prompt</span>
        <input type="text" className={"mono " + bad("prompt")} value={draft.prompt} data-testid="graph-prompt"
          placeholder="The capital of France is" onChange={(e) => set({ prompt: e.target.value })} />
      </label>
      <label title="the output token to explain (text: its first token; #id: a token id); empty: the top logits, up to 95% probability">
        <span className="field-label">target</span>
        <input type="text" className={"mono target " + bad("target")} value={draft.target} data-testid="graph-target"
          placeholder="top logits" onChange={(e) => set({ target: e.target.value })} />
      </label>
      <label title="node influence kept by pruning (0..1)">
        <span className="field-label">node threshold</span>
        <input type="number" step={0.01} min={0.01} max={1} value={draft.nodeThreshold} className={bad("node_threshold")}
          data-testid="graph-node-threshold" onChange={(e) => set({ nodeThreshold: e.target.value })} />
      </label>
      <label title="edge influence kept by pruning (0..1)">
        <span className="field-label">edge threshold</span>
        <input type="number" step={0.01} min={0.01} max={1} value={draft.edgeThreshold} className={bad("edge_threshold")}
          data-testid="graph-edge-threshold" onChange={(e) => set({ edgeThreshold: e.target.value })} />
      </label>
      <label title={`latents whose inputs are computed (the most influential first); empty: the server's default, 4096 or its limit${maxFeatures ? ` (${maxFeatures})` : ""} when lower`}>
        <span className="field-label">max features</span>
        <input type="number" step={256} min={1} max={maxFeatures} value={draft.maxFeatures} className={bad("max_features")}
          placeholder="default" data-testid="graph-max-features" onChange={(e) => set({ maxFeatures: e.target.value })} />
      </label>
      <button type="submit" className="btn primary" disabled={loading} data-testid="graph-run">
        Run
      </button>
    </form>
  );
}
