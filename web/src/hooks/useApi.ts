/** Requests with loading/error state; the last good result is kept while the next one loads. */
import { useEffect, useRef, useState } from "react";
import { ApiError, get, isAbort, post, type ModelInfo, type TokenInfo } from "../client/api";

export interface Resource<T> {
  data: T | null;
  /** the request `data` answers */
  dataKey: string | null;
  loading: boolean;
  error: ApiError | null;
}

/** Runs `fetcher` whenever `key` changes (null = nothing to fetch); aborts the previous request. */
export function useResource<T>(key: string | null, fetcher: (signal: AbortSignal) => Promise<T>): Resource<T> {
  const [state, setState] = useState<Resource<T>>({ data: null, dataKey: null, loading: false, error: null });
  const fetchRef = useRef(fetcher);
  fetchRef.current = fetcher;
  useEffect(() => {
    if (key === null) {
      setState((s) => ({ ...s, loading: false, error: null }));
      return;
    }
    const ctrl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    fetchRef
      .current(ctrl.signal)
      .then((data) => setState({ data, dataKey: key, loading: false, error: null }))
      .catch((e: unknown) => {
        if (isAbort(e)) return;
        const err = e instanceof ApiError ? e : new ApiError(0, e instanceof Error ? e.message : String(e));
        setState((s) => ({ ...s, loading: false, error: err }));
      });
    return () => ctrl.abort();
  }, [key]);
  return state;
}

let modelPromise: Promise<ModelInfo> | null = null;

export function useModelInfo(): ModelInfo | null {
  const [info, setInfo] = useState<ModelInfo | null>(null);
  useEffect(() => {
    modelPromise ??= get("/api/model");
    let live = true;
    modelPromise.then((m) => live && setInfo(m)).catch(() => (modelPromise = null));
    return () => {
      live = false;
    };
  }, []);
  return info;
}

/** Debounced tokenisation preview of `text`. */
export function useTokens(text: string, addBos: boolean | null, delayMs = 250): { tokens: TokenInfo[] | null; error: string | null } {
  const [debounced, setDebounced] = useState(text);
  useEffect(() => {
    const t = setTimeout(() => setDebounced(text), delayMs);
    return () => clearTimeout(t);
  }, [text, delayMs]);
  const key = debounced ? JSON.stringify([debounced, addBos]) : null;
  const r = useResource(key, (signal) => post("/api/tokenize", { text: debounced, add_bos: addBos }, signal));
  // the previous tokens stay while the next ones load (no flicker while typing)
  return { tokens: key !== null ? (r.data?.tokens ?? null) : null, error: key !== null ? (r.error?.message ?? null) : null };
}
