/** Node table filters: kind groups (checkboxes) and a text filter. */
import { NODE_GROUPS, type NodeGroup } from "../../lib/nodes";

const GROUP_LABEL: Record<NodeGroup, string> = {
  neurons: "neurons",
  heads: "heads",
  pairs: "head pairs",
  layers: "layer outputs",
  embeddings: "embeddings",
};

interface Props {
  groups: NodeGroup[];
  filter: string;
  counts: Record<NodeGroup, number>;
  onGroups: (g: NodeGroup[]) => void;
  onFilter: (f: string) => void;
}

export function NodeTableControls({ groups, filter, counts, onGroups, onFilter }: Props) {
  return (
    <div className="table-controls">
      {NODE_GROUPS.map((g) => (
        <label key={g} className="check">
          <input
            type="checkbox"
            checked={groups.includes(g)}
            onChange={(e) => onGroups(e.target.checked ? NODE_GROUPS.filter((x) => x === g || groups.includes(x)) : groups.filter((x) => x !== g))}
          />
          {GROUP_LABEL[g]} <span className="muted">{counts[g]}</span>
        </label>
      ))}
      <input
        type="search"
        className="filter"
        placeholder="filter: label or token"
        aria-label="filter nodes"
        value={filter}
        onChange={(e) => onFilter(e.target.value)}
      />
    </div>
  );
}
