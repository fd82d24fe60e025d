import { useModelInfo } from "./hooks/useApi";
import { navigate, useLocation } from "./hooks/useLocation";
import { DebuggerPage } from "./routes/DebuggerPage";
import { NodePage } from "./routes/NodePage";

export function App() {
  const { path, search } = useLocation();
  const model = useModelInfo();
  return (
    <div className="app">
      <header className="topbar">
        <a href="/" className="brand" onClick={(e) => { e.preventDefault(); navigate("/"); }}>
          mechscope
        </a>
        <span className="muted">transformer debugger</span>
        <span className="spacer" />
        {model ? (
          <span className="model" data-testid="model-name" title={`${model.architecture}, ${model.weights}`}>
            {model.name} <span className="muted">· {model.n_layers} layers · {model.n_heads} heads · d_mlp {model.d_mlp}</span>
          </span>
        ) : (
          <span className="muted">connecting…</span>
        )}
      </header>
      {path.startsWith("/node/") ? <NodePage path={path} search={search} /> : <DebuggerPage search={search} model={model} />}
    </div>
  );
}
