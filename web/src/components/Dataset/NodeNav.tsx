/** Previous/next node (index ∓1 in the layer) and layer (same index), as links and keys j/k and h/l ([ ]). */
import type { ModelInfo, NodeKind } from "../../client/api";
import { navigate } from "../../hooks/useLocation";
import { useShortcuts } from "../../hooks/useShortcuts";
import { neighbourHref } from "../../routes/nodeHref";
import { Link } from "../common/Link";

interface Props {
  kind: NodeKind;
  layer: number;
  index: number;
  search: string;
  model: ModelInfo | null;
  /** the model named in the links (the page's own, else the served one; null: model-less links) */
  modelName: string | null;
}

export function NodeNav({ kind, layer, index, search, model, modelName }: Props) {
  const units = model ? (kind === "mlp_neuron" ? model.d_mlp : model.n_heads) : null;
  const layers = model?.n_layers ?? null;
  const targets = {
    prevNode: index > 0 ? neighbourHref(kind, layer, index - 1, search, modelName) : null,
    nextNode: units !== null && index + 1 < units ? neighbourHref(kind, layer, index + 1, search, modelName) : null,
    prevLayer: layer > 0 ? neighbourHref(kind, layer - 1, index, search, modelName) : null,
    nextLayer: layers !== null && layer + 1 < layers ? neighbourHref(kind, layer + 1, index, search, modelName) : null,
  };
  const go = (href: string | null) => (href ? () => navigate(href) : null);
  useShortcuts({
    j: go(targets.prevNode), k: go(targets.nextNode),
    h: go(targets.prevLayer), l: go(targets.nextLayer), "[": go(targets.prevLayer), "]": go(targets.nextLayer),
  });
  const unit = kind === "mlp_neuron" ? "neuron" : "head";
  const link = (href: string | null, label: string, shortcut: string, testId: string) =>
    href ? (
      <Link href={href} className="btn small" data-testid={testId} title={`${label} (key ${shortcut})`}>
        {label}
      </Link>
    ) : (
      <span className="btn small disabled" aria-disabled="true" data-testid={testId}>{label}</span>
    );
  return (
    <nav className="node-nav" data-testid="node-nav" aria-label="neighbouring nodes">
      {link(targets.prevNode, `← ${unit} ${index > 0 ? index - 1 : "–"}`, "j", "nav-prev-node")}
      {link(targets.nextNode, `${unit} ${targets.nextNode ? index + 1 : "–"} →`, "k", "nav-next-node")}
      <span className="nav-sep" />
      {link(targets.prevLayer, `↑ layer ${layer > 0 ? layer - 1 : "–"}`, "h or [", "nav-prev-layer")}
      {link(targets.nextLayer, `layer ${targets.nextLayer ? layer + 1 : "–"} ↓`, "l or ]", "nav-next-layer")}
      <span className="muted small">keys j/k: {unit}, h/l: layer</span>
    </nav>
  );
}
