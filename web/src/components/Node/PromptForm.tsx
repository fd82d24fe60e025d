/** Run the node on your own prompt: sets ?prompt=&token= (the last token; click a token of the result to move). */
import { useEffect, useState } from "react";
import { ApiError, post } from "../../client/api";
import { navigate } from "../../hooks/useLocation";
import { withPrompt } from "../../routes/nodeHref";
import { ErrorBox } from "../common/ErrorBox";
import { Link } from "../common/Link";

interface Props {
  /** the node page's path, without the query */
  path: string;
  prompt: string | null;
  token: number;
}

export function PromptForm({ path, prompt, token }: Props) {
  const [text, setText] = useState(prompt ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => setText(prompt ?? ""), [prompt]);

  const run = async () => {
    if (!text) return;
    if (text === prompt) {
      navigate(withPrompt(path, text, token));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      // The last token of the prompt as the model runs it (BOS as the model adds it).
      const { tokens } = await post("/api/tokenize", { text, add_bos: null });
      navigate(withPrompt(path, text, Math.max(0, tokens.length - 1)));
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, String(e)));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="box prompt-form" data-testid="prompt-form"
      onSubmit={(e) => { e.preventDefault(); void run(); }}>
      <label className="prompt-label" htmlFor="node-prompt">Your prompt</label>
      <input id="node-prompt" className="mono" type="text" value={text} data-testid="prompt-input"
        placeholder="Run this node on a prompt of your own…" onChange={(e) => setText(e.target.value)} />
      <button type="submit" className="btn primary" disabled={!text || busy} data-testid="prompt-run">{busy ? "…" : "Run"}</button>
      {prompt !== null && (
        <Link href={path} className="btn small" data-testid="prompt-clear">clear</Link>
      )}
      <span className="muted small">{prompt !== null ? "click a token of the result to move the node there" : "runs at the last token; click another token in the result to move"}</span>
      {error && <ErrorBox error={error} />}
    </form>
  );
}
