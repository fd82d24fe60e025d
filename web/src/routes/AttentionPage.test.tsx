import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { MODEL, mockServer } from "../test/mockServer";

const R = 3; // start token + 2 x 3 tokens
const TOKENS = ["<s>", "a", "b", "c", "a", "b", "c"];

/** An induction pattern: the second half attends r - 1 back, the rest to the start token. */
const induction = (): number[][] => TOKENS.map((_, q) => Array.from({ length: q + 1 }, (_, k) => (q > R ? (k === q - (R - 1) ? 1 : 0) : k === 0 ? 1 : 0)));

const view = (heads: number[], layer: number) => ({
  kind: "attn_head", tokens: TOKENS, ids: TOKENS.map((_, i) => i), layer, heads, text: "abcabc",
  patterns: heads.map(() => induction()),
});

const grid = (best: [number, number], v: number) =>
  Array.from({ length: MODEL.n_layers }, (_, l) => Array.from({ length: MODEL.n_heads }, (_, h) => (l === best[0] && h === best[1] ? v : 0.01)));

const DETECTION = {
  kind: "attn_head", n_layers: MODEL.n_layers, n_heads: MODEL.n_heads, rows: 8, length: 2 * R + 1, tokens: TOKENS, window_id: null,
  detectors: [
    { name: "previous_token", label: "previous token", description: "d", scores: grid([1, 1], 0.8), queries: 48 },
    { name: "duplicate_token", label: "duplicate token", description: "d", scores: grid([2, 2], 0.6), queries: 24 },
    { name: "induction", label: "induction", description: "d", scores: grid([18, 6], 0.93), queries: 24 },
    { name: "attention_sink", label: "attention sink", description: "d", scores: grid([3, 3], 1), queries: 48 },
  ],
};

const server = () =>
  mockServer((path, body) => {
    const b = body as { layer: number; head?: number };
    if (path === "/api/attention") return { status: 200, body: view(b.head != null ? [b.head] : Array.from({ length: MODEL.n_heads }, (_, h) => h), b.layer) };
    if (path === "/api/heads/detect") return { status: 200, body: DETECTION };
    return undefined;
  });

const q = () => new URLSearchParams(window.location.search);

beforeEach(() => {
  window.history.replaceState(null, "", `/attention?r=${R}`);
  // jsdom has no canvas (the small multiples draw on one): a null context, quietly
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(null);
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("Attention page", () => {
  it("draws the detector grids; a click opens that head on the detectors' sequence", async () => {
    const calls = server();
    render(<App />);
    await waitFor(() => expect(screen.getAllByTestId("detector-grid")).toHaveLength(4));
    expect(calls.find((c) => c.path === "/api/heads/detect")?.body).toEqual({ source: "repeated", length: R, n: 8, seed: 0 });
    expect(calls.some((c) => c.path === "/api/attention")).toBe(false); // no prompt yet
    expect(screen.getByTestId("nav-attention")).toHaveAttribute("aria-current", "page");
    const cells = screen.getAllByTestId("detector-cell");
    expect(cells).toHaveLength(4 * MODEL.n_layers * MODEL.n_heads);
    const best = document.querySelector('[data-detector="induction"] [data-testid="detector-best"]')!;
    expect(best).toHaveTextContent("best L18.H6 0.93");

    fireEvent.click(document.querySelector('[data-detector="induction"] [data-testid="detector-cell"][data-layer="18"][data-head="6"]')!);
    expect(q().get("src")).toBe("repeated");
    expect(q().get("layer")).toBe("18");
    expect(q().get("head")).toBe("6");
    await waitFor(() => screen.getByTestId("pattern"));
    expect(calls.find((c) => c.path === "/api/attention")?.body).toEqual({ repeated: { length: R, seed: 0 }, layer: 18, head: 6 });
    expect(screen.getByTestId("induction-stripe")).toHaveAttribute("data-value", "1.0000");
    expect(screen.getByTestId("sequence-tokens").querySelectorAll(".tok")).toHaveLength(TOKENS.length);
    expect(screen.getByTestId("node-page-link").getAttribute("href")).toBe("/node/TestModel/attn_head/18/6?prompt=abcabc&token=6");
    expect(screen.getByTestId("open-debugger").getAttribute("href")).toBe("/?prompt=abcabc");
    expect(screen.getByTestId("open-in-explorer").getAttribute("href")).toBe("/prompt?prompt=abcabc&pos=6");
    expect(document.querySelectorAll('[data-testid="pattern-heatmap"] rect[data-q]')).toHaveLength((TOKENS.length * (TOKENS.length + 1)) / 2);
    // the selected head is outlined in every grid
    expect(document.querySelectorAll('[data-testid="detector-cell"].on')).toHaveLength(4);
  });

  it("hovering a token keeps only its lines; all heads are small multiples", async () => {
    window.history.replaceState(null, "", `/attention?src=repeated&r=${R}&layer=18&head=6&det=off`);
    const calls = server();
    render(<App />);
    await waitFor(() => screen.getByTestId("pattern-lines"));
    expect(calls.some((c) => c.path === "/api/heads/detect")).toBe(false);
    fireEvent.mouseEnter(screen.getAllByTestId("lines-query")[5]!);
    const lit = [...document.querySelectorAll("[data-testid=pattern-lines] line.lit")].map((l) => [(l as SVGElement).dataset.q, (l as SVGElement).dataset.k]);
    expect(lit).toEqual([["5", "3"]]);

    fireEvent.change(screen.getByTestId("head-select"), { target: { value: "all" } });
    expect(q().get("head")).toBeNull();
    await waitFor(() => expect(screen.getAllByTestId("multiple")).toHaveLength(MODEL.n_heads));
    fireEvent.click(screen.getAllByTestId("multiple")[2]!);
    expect(q().get("head")).toBe("2");
  });

  it("a refusal shows the server's message and no grid", async () => {
    window.history.replaceState(null, "", "/attention?det=dataset&n=4");
    const calls = mockServer((path) =>
      path === "/api/heads/detect" ? { status: 422, body: { error: "no collated dataset yet (none); see GET /api/dataset", field: "source" } } : undefined,
    );
    render(<App />);
    await waitFor(() => expect(screen.getByTestId("error")).toHaveTextContent("no collated dataset yet"));
    expect(calls.find((c) => c.path === "/api/heads/detect")?.body).toEqual({ source: "dataset", n: 4 });
    expect(screen.queryByTestId("detector-grid")).toBeNull();
  });

  it("a prompt goes to the URL and to both requests", async () => {
    window.history.replaceState(null, "", "/attention?det=prompt");
    const calls = server();
    render(<App />);
    fireEvent.change(await screen.findByTestId("attention-prompt"), { target: { value: "hello there" } });
    fireEvent.click(screen.getByTestId("attention-run"));
    expect(q().get("prompt")).toBe("hello there");
    await waitFor(() => expect(calls.find((c) => c.path === "/api/heads/detect")?.body).toEqual({ source: "prompt", prompt: "hello there" }));
    await waitFor(() => expect(calls.find((c) => c.path === "/api/attention")?.body).toEqual({ prompt: "hello there", layer: 0 }));
  });
});
