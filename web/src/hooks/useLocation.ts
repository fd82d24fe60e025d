/** A tiny router: the current path and query, navigation by pushState/replaceState. */
import { useSyncExternalStore } from "react";

const EVENT = "mechscope:navigate";

function subscribe(cb: () => void): () => void {
  window.addEventListener("popstate", cb);
  window.addEventListener(EVENT, cb);
  return () => {
    window.removeEventListener("popstate", cb);
    window.removeEventListener(EVENT, cb);
  };
}

const snapshot = () => window.location.pathname + window.location.search;

export function useLocation(): { path: string; search: string } {
  const href = useSyncExternalStore(subscribe, snapshot, snapshot);
  const q = href.indexOf("?");
  return q < 0 ? { path: href, search: "" } : { path: href.slice(0, q), search: href.slice(q) };
}

/** Go to `url`: a new history entry (push) or an edit of the current one (replace). */
export function navigate(url: string, mode: "push" | "replace" = "push"): void {
  if (url === snapshot()) return;
  if (mode === "push") window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
  window.dispatchEvent(new Event(EVENT));
}
