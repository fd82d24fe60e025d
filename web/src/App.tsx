import { Link } from "./components/common/Link";
import { useModelInfo } from "./hooks/useApi";
import { useLocation } from "./hooks/useLocation";
import { DebuggerPage } from "./routes/DebuggerPage";
import { ExplorePage } from "./routes/ExplorePage";
import { GraphPage } from "./routes/GraphPage";
import { NodePage } from "./routes/NodePage";

export function App() {
  const { path, search } = useLocation();
  const model = useModelInfo();
  const explore = path === "/explore" || path === "/explore/";
  const graph = path === "/graph" || path === "/graph/";
  return (
    <div className="app">
      <header className="topbar">
        <Link href="/" className="brand">
          mechscope
        </Link>
        <span className="muted">transformer debugger</span>
        <nav className="topnav" aria-label="pages">
          <TopLink href="/" label="Debugger" on={path === "/"} testId="nav-debugger" />
          <TopLink href="/graph" label="Graph" on={graph} testId="nav-graph" />
          <TopLink href="/explore" label="Explore dataset" on={explore} testId="nav-explore" />
        </nav>
        <span className="spacer" />
        {model ? (
          <span className="model" data-testid="model-name" title={`${model.architecture}, ${model.weights}`}>
            {model.name} <span className="muted">· {model.n_layers} layers · {model.n_heads} heads · d_mlp {model.d_mlp}</span>
          </span>
        ) : (
          <span className="muted">connecting…</span>
        )}
      </header>
      {path.startsWith("/node/") ? (
        <NodePage path={path} search={search} />
      ) : explore ? (
        <ExplorePage search={search} />
      ) : graph ? (
        <GraphPage search={search} model={model} />
      ) : (
        <DebuggerPage search={search} model={model} />
      )}
    </div>
  );
}

function TopLink({ href, label, on, testId }: { href: string; label: string; on: boolean; testId: string }) {
  return (
    <Link href={href} className={"topnav-link" + (on ? " on" : "")} aria-current={on ? "page" : undefined} data-testid={testId}>
      {label}
    </Link>
  );
}
