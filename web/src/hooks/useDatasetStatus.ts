/** GET /api/dataset: is there a collated dataset to read? Asked once for every part of a page that
 * needs one (a node page's examples and explanation, the Debugger's explanation column, the Graph
 * page's latent panel, the explorer) and polled while it is being collated. The answer lives while
 * some component uses it: a page opened later asks again. Parts that read the dataset ask this
 * first: without a dataset the server refuses their requests (422). */
import { useEffect, useSyncExternalStore } from "react";
import { ApiError, get, isAbort, type Schemas } from "../client/api";

export type DatasetStatus = Schemas["DatasetStatus"];

export interface DatasetState {
  /** the last answer; null before the first one */
  status: DatasetStatus | null;
  loading: boolean;
  error: ApiError | null;
}

/** A finished dataset: examples, statistics and explanations can be asked for. */
export const datasetDone = (s: DatasetStatus | null): boolean => s?.status === "done";

const EMPTY: DatasetState = { status: null, loading: false, error: null };
let state: DatasetState = EMPTY;
const listeners = new Set<() => void>();
/** each user's poll interval (ms) while the dataset is being collated */
const users = new Map<symbol, number>();
let ctrl: AbortController | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;

function set(next: DatasetState): void {
  state = next;
  for (const l of listeners) l();
}

function subscribe(cb: () => void): () => void {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

/** Ask now (dropping a request or a poll under way); again after the shortest interval while collating. */
function load(): void {
  clearTimeout(timer);
  ctrl?.abort();
  const c = (ctrl = new AbortController());
  const again = () => {
    if (users.size > 0 && state.status?.status === "running") timer = setTimeout(load, Math.min(...users.values()));
  };
  set({ ...state, loading: true, error: null });
  get("/api/dataset", c.signal).then(
    (s) => {
      if (c !== ctrl) return;
      set({ status: s, loading: false, error: null });
      again();
    },
    (e: unknown) => {
      if (c !== ctrl || isAbort(e)) return;
      set({ ...state, loading: false, error: e instanceof ApiError ? e : new ApiError(0, e instanceof Error ? e.message : String(e)) });
      again(); // a failed poll: keep polling
    },
  );
}

/** The dataset's status (nothing is asked while `enabled` is false), and a function that asks again. */
export function useDatasetStatus(enabled = true, pollMs = 3000): DatasetState & { retry: () => void } {
  const snap = useSyncExternalStore(subscribe, () => state, () => state);
  useEffect(() => {
    if (!enabled) return;
    const id = Symbol("dataset-status-user");
    users.set(id, pollMs);
    if (users.size === 1) load(); // the first user asks; the others share its answer
    return () => {
      users.delete(id);
      if (users.size > 0) return;
      ctrl?.abort();
      ctrl = null;
      clearTimeout(timer);
      set(EMPTY);
    };
  }, [enabled, pollMs]);
  return { ...(enabled ? snap : EMPTY), retry: load };
}
