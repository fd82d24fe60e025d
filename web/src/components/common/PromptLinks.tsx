/** A prompt shown anywhere opens elsewhere: in the Debugger (`/?prompt=`) and in the prompt explorer
 * (`/prompt?prompt=&pos=`, at the token position when it is known). */
import { EMPTY_PROMPT_STATE, promptHref } from "../../lib/promptState";
import { DEFAULT_STATE, encodeState } from "../../lib/urlState";
import { Link } from "./Link";

/** The Debugger on `prompt`, with every other setting at its default. */
export function debuggerPromptHref(prompt: string): string {
  return "/?" + encodeState({ ...DEFAULT_STATE, prompt });
}

/** The prompt explorer on `prompt` at token `pos` (null: its default, the last token). */
export function explorerPromptHref(prompt: string, pos: number | null = null): string {
  return promptHref({ ...EMPTY_PROMPT_STATE, prompt, pos });
}

interface Props {
  prompt: string;
  /** the token position the prompt is shown for (a dataset example's peak, a node's token) */
  pos?: number | null;
  /** a Debugger link with more state than the prompt (a target, say) */
  debuggerHref?: string;
  debuggerTestId?: string;
  className?: string;
}

export function PromptLinks({ prompt, pos = null, debuggerHref, debuggerTestId = "open-in-debugger", className }: Props) {
  if (!prompt) return null;
  const at = pos != null ? ` at token ${pos}` : "";
  return (
    <span className={"prompt-links" + (className ? " " + className : "")} data-testid="prompt-links">
      <span className="muted">open in</span>
      <Link href={debuggerHref ?? debuggerPromptHref(prompt)} data-testid={debuggerTestId} title="open this prompt in the Debugger">
        Debugger
      </Link>
      <Link href={explorerPromptHref(prompt, pos)} data-testid="open-in-explorer" title={`open this prompt in the prompt explorer${at}`}>
        prompt explorer
      </Link>
    </span>
  );
}
