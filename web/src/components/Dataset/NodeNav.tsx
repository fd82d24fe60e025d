/** Previous/next node (index ∓1 in the layer) and layer (same index), as links and keys j/k and h/l ([ ]). */
import type { KindInfo, ModelInfo } from "../../client/api";
import { navigate } from "../../hooks/useLocation";
import { useShortcuts } from "../../hooks/useShortcuts";
import { neighbourHref } from "../../routes/nodeHref";
import { Link } from "../common/Link";

interface Props {
  kind: KindInfo;
  /** null for a kind without layers: only the index moves */
  layer: number | null;
  index: number;
  search: string;
  model: ModelInfo | null;
  /** the model named in the links (the page's own, else the served one; null: model-less links) */
  modelName: string | null;
}

export function NodeNav({ kind, layer, index, search, model, modelName }: Props) {
  const units = kind.size;
  const layers = model?.n_layers ?? null;
  const href = (l: number | null, i: number) => neighbourHref(kind.name, l, i, search, modelName);
  const targets = {
    prevNode: index > 0 ? href(layer, index - 1) : null,
    nextNode: units !== null && index + 1 < units ? href(layer, index + 1) : null,
    prevLayer: layer !== null && layer > 0 ? href(layer - 1, index) : null,
    nextLayer: layer !== null && layers !== null && layer + 1 < layers ? href(layer + 1, index) : null,
  };
  const go = (href: string | null) => (href ? () => navigate(href) : null);
  useShortcuts({
    j: go(targets.prevNode), k: go(targets.nextNode),
    h: go(targets.prevLayer), l: go(targets.nextLayer), "[": go(targets.prevLayer), "]": go(targets.nextLayer),
  });
  const unit = kind.unit ?? "unit";
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
      {layer !== null && (
        <>
          <span className="nav-sep" />
          {link(targets.prevLayer, `↑ layer ${layer > 0 ? layer - 1 : "–"}`, "h or [", "nav-prev-layer")}
          {link(targets.nextLayer, `layer ${targets.nextLayer ? layer + 1 : "–"} ↓`, "l or ]", "nav-next-layer")}
        </>
      )}
      <span className="muted small">keys j/k: {unit}{layer !== null ? ", h/l: layer" : ""}</span>
    </nav>
  );
}
