import { Link } from "./components/common/Link";
import { useModelInfo } from "./hooks/useApi";
import { useLocation } from "./hooks/useLocation";
import { AttentionPage } from "./routes/AttentionPage";
import { DebuggerPage } from "./routes/DebuggerPage";
import { ExplorePage } from "./routes/ExplorePage";
import { GraphPage } from "./routes/GraphPage";
import { LensPage } from "./routes/LensPage";
import { MapsPage } from "./routes/MapsPage";
import { NodePage } from "./routes/NodePage";
import { PatchingPage } from "./routes/PatchingPage";
import { PromptPage } from "./routes/PromptPage";

export function App() {
  const { path, search } = useLocation();
  const model = useModelInfo();
  const explore = path === "/explore" || path === "/explore/";
  const graph = path === "/graph" || path === "/graph/";
  const promptPage = path === "/prompt" || path === "/prompt/";
  const attention = path === "/attention" || path === "/attention/";
  const patching = path === "/patching" || path === "/patching/";
  const lens = path === "/lens" || path === "/lens/";
  const maps = path === "/maps" || path === "/maps/";
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
          <TopLink href="/prompt" label="Prompt explorer" on={promptPage} testId="nav-prompt" />
          <TopLink href="/attention" label="Attention" on={attention} testId="nav-attention" />
          <TopLink href="/patching" label="Patching" on={patching} testId="nav-patching" />
          <TopLink href="/lens" label="Lens" on={lens} testId="nav-lens" />
          <TopLink href="/explore" label="Explore dataset" on={explore} testId="nav-explore" />
          <TopLink href="/maps" label="Maps" on={maps} testId="nav-maps" />
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
      ) : promptPage ? (
        <PromptPage search={search} model={model} />
      ) : graph ? (
        <GraphPage search={search} model={model} />
      ) : patching ? (
        <PatchingPage search={search} model={model} />
      ) : maps ? (
        <MapsPage search={search} model={model} />
      ) : lens ? (
        <LensPage search={search} />
      ) : attention ? (
        <AttentionPage search={search} model={model} />
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
