/** A small typed fetch wrapper over the generated OpenAPI types (src/client/schema.ts). */
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type DebugRequest = Schemas["DebugRequest"];
export type DebugResponse = Schemas["DebugResponse"];
export type VerifyRequest = Schemas["VerifyRequest"];
export type Verification = Schemas["Verification"];
export type NodeRequest = Schemas["NodeRequest"];
export type NodeDetail = Schemas["NodeDetail"];
export type ModelInfo = Schemas["ModelInfo"];
export type TokenInfo = Schemas["TokenInfo"];
export type Intervention = Schemas["Intervention"];
export type Node = Schemas["Node"];
export type NodeKind = Node["kind"];
export type NodeRow = Schemas["NodeRow"];
export type NodePair = Schemas["NodePair"];
export type AttributionSummary = Schemas["AttributionSummary"];
export type TokenScore = Schemas["TokenScore"];
export type CandidatePair = Schemas["CandidatePair"];
export type TokenEffects = Schemas["TokenEffects"];
export type Through = NonNullable<Schemas["Trace"]["through"]>;
export type KindInfo = Schemas["KindInfo"];
export type ThroughChoice = Schemas["ThroughChoice"];
export type ErrorBody = Schemas["ErrorBody"];

/** A non-2xx answer: the server's ErrorBody message and field, or a description of what came back. */
export class ApiError extends Error {
  readonly status: number;
  readonly field: string | null;
  readonly retryAfter: number | null;

  constructor(status: number, message: string, field: string | null = null, retryAfter: number | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

type PostPath = { [P in keyof paths]: paths[P] extends { post: unknown } ? P : never }[keyof paths];
type GetPath = { [P in keyof paths]: paths[P] extends { get: unknown } ? P : never }[keyof paths];
type JsonOf<T> = T extends { content: { "application/json": infer B } } ? B : never;
export type RequestBody<P extends PostPath> = paths[P]["post"] extends { requestBody: infer R } ? JsonOf<R> : never;
export type ResponseBody<M> = M extends { responses: { 200: infer R } } ? JsonOf<R> : never;

async function errorFrom(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  const retry = res.headers.get("retry-after");
  const retryAfter = retry !== null && retry !== "" && !Number.isNaN(Number(retry)) ? Number(retry) : null;
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (body !== null && typeof body === "object" && typeof (body as ErrorBody).error === "string") {
    const b = body as ErrorBody;
    return new ApiError(res.status, b.error, b.field ?? null, retryAfter);
  }
  const snippet = text.trim().slice(0, 200);
  const msg = `HTTP ${res.status}${res.statusText ? " " + res.statusText : ""}${snippet ? ": " + snippet : ""}`;
  return new ApiError(res.status, msg, null, retryAfter);
}

async function request<T>(method: "GET" | "POST", path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, `cannot reach the server (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!res.ok) throw await errorFrom(res);
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiError(res.status, `the server answered ${path} with a body that is not JSON`);
  }
}

export function post<P extends PostPath>(
  path: P,
  body: RequestBody<P>,
  signal?: AbortSignal,
): Promise<ResponseBody<paths[P]["post"]>> {
  return request("POST", path, body, signal);
}

export function get<P extends GetPath>(path: P, signal?: AbortSignal): Promise<ResponseBody<paths[P]["get"]>> {
  return request("GET", path, undefined, signal);
}

export const isAbort = (e: unknown): boolean => e instanceof DOMException && e.name === "AbortError";
