/** Node table filters: kind groups (checkboxes, from the registry) and a text filter. */
import type { Group } from "../../lib/kinds";

interface Props {
  /** every group the model's kinds have, in order */
  groups: Group[];
  /** the groups shown; null = all */
  selected: string[] | null;
  filter: string;
  counts: Record<string, number>;
  onGroups: (g: string[] | null) => void;
  onFilter: (f: string) => void;
}

export function NodeTableControls({ groups, selected, filter, counts, onGroups, onFilter }: Props) {
  const shown = (g: string) => selected === null || selected.includes(g);
  const toggle = (g: string, on: boolean) => {
    const next = groups.map((x) => x.name).filter((x) => (x === g ? on : shown(x)));
    onGroups(next.length === groups.length ? null : next);
  };
  return (
    <div className="table-controls">
      {groups.map((g) => (
        <label key={g.name} className="check">
          <input type="checkbox" checked={shown(g.name)} onChange={(e) => toggle(g.name, e.target.checked)} />
          {g.label} <span className="muted">{counts[g.name] ?? 0}</span>
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
