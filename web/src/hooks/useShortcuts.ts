/** Page-wide single-key shortcuts (j/k on node pages, / on the explorer), ignored while typing. */
import { useEffect, useLayoutEffect, useRef } from "react";

/** Is the key press meant for a text field (or a shortcut of the browser)? */
export function typing(e: KeyboardEvent): boolean {
  if (e.ctrlKey || e.metaKey || e.altKey) return true;
  const t = e.target as HTMLElement | null;
  if (!t || typeof t.tagName !== "string") return false;
  return t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName);
}

/** Run `actions[e.key]` on a key press outside text fields (a null action: the key does nothing).
 * One listener for the component's life; it reads the latest actions. They are taken in a layout
 * effect, which runs as the render is committed: a key pressed once the page shows its new state
 * acts on that state (a passive effect may still be pending then, and the key would act on the
 * page before it). */
export function useShortcuts(actions: Record<string, (() => void) | null>): void {
  const latest = useRef(actions);
  useLayoutEffect(() => {
    latest.current = actions;
  });
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (typing(e)) return;
      const act = latest.current[e.key];
      if (act) {
        e.preventDefault();
        act();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}
