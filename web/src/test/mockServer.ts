/** A fetch mock answering the API from fixtures; records the requests. */
import { vi } from "vitest";
import single from "./fixtures/debug-single.json";
import kinds from "./fixtures/kinds.json";

export const MODEL = {
  name: "TestModel", architecture: "llama", weights: "test", n_layers: 30, n_heads: 9, n_kv_heads: 3,
  d_model: 576, d_mlp: 1536, d_vocab: 49152, n_ctx: 8192, kinds,
  limits: { max_prompt_tokens: 256, max_k: 100, max_verify: 50, max_new_tokens: 128, max_batch: 16 },
};

/** GET /api/dataset of a server without --dataset (a test that needs one answers DATASET_DONE). */
export const NO_DATASET = { status: "none", fraction: 0, tokens_done: 0, tokens_total: 0, preview_tokens: null, corpus: null, attribution: null };
export const DATASET_DONE = { status: "done", fraction: 1, tokens_done: 1000, tokens_total: 1000, preview_tokens: null, corpus: "wiki", attribution: null };

export type Handler = (path: string, body: unknown) => { status: number; body: unknown } | undefined;

export function mockServer(override?: Handler) {
  const calls: { path: string; body: unknown }[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = String(input);
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ path, body });
    const o = override?.(path, body);
    const json = (b: unknown, status = 200) => new Response(JSON.stringify(b), { status, headers: { "content-type": "application/json" } });
    if (o) return json(o.body, o.status);
    if (path === "/api/model") return json(MODEL);
    if (path === "/api/tokenize") {
      const text = (body as { text: string }).text;
      return json({ tokens: text.split(/(?= )/).map((t, i) => ({ id: 100 + i, token: t })) });
    }
    if (path === "/api/debug") return json(single);
    if (path === "/api/dataset") return json(NO_DATASET);
    return json({ error: `no mock for ${path}`, field: null }, 500);
  });
  vi.stubGlobal("fetch", fetchMock);
  return calls;
}
