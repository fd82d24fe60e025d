import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, get, post } from "./api";

const respond = (body: string, status: number, headers: Record<string, string> = {}) =>
  vi.fn(async () => new Response(body, { status, headers }));

afterEach(() => vi.unstubAllGlobals());

describe("api client", () => {
  it("posts JSON and returns the parsed body", async () => {
    const fetchMock = respond(JSON.stringify({ tokens: [{ id: 1, token: "a" }] }), 200);
    vi.stubGlobal("fetch", fetchMock);
    const r = await post("/api/tokenize", { text: "a", add_bos: false });
    expect(r.tokens[0]?.token).toBe("a");
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/tokenize");
    expect(init.method).toBe("POST");
    expect(JSON.parse(init.body as string)).toEqual({ text: "a", add_bos: false });
    expect((init.headers as Record<string, string>)["content-type"]).toBe("application/json");
  });

  it("throws ApiError with the ErrorBody message and field", async () => {
    vi.stubGlobal("fetch", respond(JSON.stringify({ error: "k is 500; the limit is 100 (max_k)", field: "k" }), 422));
    const e = await post("/api/debug", { prompt: "x", targets: [" a"], k: 500 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 422, message: "k is 500; the limit is 100 (max_k)", field: "k" });
  });

  it("reads Retry-After on 503", async () => {
    vi.stubGlobal("fetch", respond(JSON.stringify({ error: "busy", field: null }), 503, { "retry-after": "3" }));
    await expect(get("/api/model")).rejects.toMatchObject({ status: 503, message: "busy", field: null, retryAfter: 3 });
  });

  it("handles non-JSON error bodies", async () => {
    vi.stubGlobal("fetch", respond("<html>Bad Gateway</html>", 502));
    await expect(get("/api/model")).rejects.toMatchObject({ status: 502, field: null, message: "HTTP 502: <html>Bad Gateway</html>" });
  });

  it("reports an unreachable server as status 0", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    await expect(get("/api/model")).rejects.toMatchObject({ status: 0, message: "cannot reach the server (Failed to fetch)" });
  });

  it("refuses a 200 whose body is not JSON", async () => {
    vi.stubGlobal("fetch", respond("not json", 200));
    await expect(get("/api/model")).rejects.toBeInstanceOf(ApiError);
  });
});
