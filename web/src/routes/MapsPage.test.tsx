import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { mockServer } from "../test/mockServer";

const JOB = { status: "idle", what: [], error: null, seconds: null };
const INFO = { method: "t-SNE (openTSNE) of a truncated SVD", seed: 0, perplexity: 30, dims: 50, rows: 3, cols: 4, nnz: 7,
  seconds: 1.5, matrix_seconds: 0.1, svd_seconds: 0.1, tsne_seconds: 1.3, created: "2026-12-04T08:00:00+00:00" };
const EMPTY_UNITS = { info: null, x: [], y: [], kinds: [], kind: [], layer: [], index: [], explanation: [], score: [] };
const UNITS = { status: "ready", job: JOB, info: INFO, x: [0, 10, 5], y: [0, 0, 8], kinds: ["attn_head", "mlp_neuron"],
  kind: [1, 0, 1], layer: [3, 2, 7], index: [17, 4, 9], explanation: ["the word fox", null, "numbers"], score: [0.5, null, 0.25] };
const PROMPTS = { status: "ready", job: JOB, info: INFO, x: [0, 4], y: [0, 3], window_id: [0, 1], title: ["Foxes", "Rome"],
  text: [" The quick brown fox", " Rome ruled the sea"] };

const canvas = () => screen.getByTestId("maps-canvas");
/** Press and release the mouse over data point (x, y), using the transform the canvas states. */
function clickPoint(x: number, y: number) {
  const [s, ox, oy] = canvas().dataset.transform!.split(",").map(Number) as [number, number, number];
  const at = { clientX: ox + x * s, clientY: oy + y * s, button: 0 };
  fireEvent.mouseMove(canvas(), at);
  fireEvent.mouseDown(canvas(), at);
  fireEvent.mouseUp(canvas(), at);
}

beforeEach(() => {
  vi.stubGlobal("ResizeObserver", class { observe() {} disconnect() {} });
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(null);
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("Maps page", () => {
  it("offers to compute a missing map, then polls while the server computes it", async () => {
    window.history.replaceState(null, "", "/maps");
    let state = "missing";
    const calls = mockServer((path) => {
      if (path === "/api/maps/units") {
        if (state === "missing") return { status: 200, body: { status: "missing", job: JOB, ...EMPTY_UNITS } };
        return { status: 200, body: { status: "computing", job: { ...JOB, status: "computing", seconds: 1 }, ...EMPTY_UNITS } };
      }
      if (path === "/api/maps/compute") {
        state = "computing";
        return { status: 200, body: { ...JOB, status: "computing", what: ["prompts", "units"] } };
      }
      return undefined;
    });
    render(<App />);
    fireEvent.click(await screen.findByTestId("maps-compute"));
    await waitFor(() => expect(screen.getByTestId("maps-status")).toHaveAttribute("data-status", "computing"));
    expect(calls.find((c) => c.path === "/api/maps/compute")?.body).toEqual({ what: "both", force: false, seed: 0 });
    expect(screen.getByTestId("nav-maps")).toHaveAttribute("aria-current", "page");
  });

  it("shows a 422 as an error", async () => {
    window.history.replaceState(null, "", "/maps");
    mockServer((path) => (path === "/api/maps/units" ? { status: 422, body: { error: "the server has no dataset", field: "dataset" } } : undefined));
    render(<App />);
    expect(await screen.findByTestId("error")).toHaveTextContent("the server has no dataset");
  });

  it("draws the units, colours and searches them through the URL, and a click opens a node page", async () => {
    window.history.replaceState(null, "", "/maps?tab=units&color=layer");
    mockServer((path) => (path === "/api/maps/units" ? { status: 200, body: UNITS } : undefined));
    render(<App />);
    await waitFor(() => expect(canvas()).toHaveAttribute("data-points", "3"));
    expect(screen.getByTestId("maps-legend")).toHaveTextContent("layer 0layer 7");
    fireEvent.change(screen.getByTestId("maps-color"), { target: { value: "kind" } });
    expect(new URLSearchParams(window.location.search).get("color")).toBe("kind");
    fireEvent.change(screen.getByTestId("maps-search"), { target: { value: "FOX" } });
    await waitFor(() => expect(new URLSearchParams(window.location.search).get("q")).toBe("FOX"));
    expect(screen.getByTestId("maps-matches")).toHaveTextContent("1 of 3 match");
    // With a search, only matches can be picked: the neighbourhood of point 1 (no match) gives nothing.
    clickPoint(10, 0);
    expect(window.location.pathname).toBe("/maps");
    clickPoint(0, 0);
    expect(window.location.pathname).toBe("/node/TestModel/mlp_neuron/3/17");
  });

  it("a hovered prompt offers the explorer and the Debugger; a click opens the explorer", async () => {
    window.history.replaceState(null, "", "/maps?tab=prompts");
    mockServer((path) => (path === "/api/maps/prompts" ? { status: 200, body: PROMPTS } : undefined));
    render(<App />);
    await waitFor(() => expect(canvas()).toHaveAttribute("data-points", "2"));
    const [s, ox, oy] = canvas().dataset.transform!.split(",").map(Number) as [number, number, number];
    fireEvent.mouseMove(canvas(), { clientX: ox + 4 * s, clientY: oy + 3 * s });
    expect(screen.getByTestId("maps-tooltip")).toHaveTextContent("Rome ruled the sea");
    const links = screen.getByTestId("maps-details");
    expect(links.querySelector('[data-testid="open-in-explorer"]')?.getAttribute("href")).toBe("/prompt?prompt=+Rome+ruled+the+sea&pos=0");
    expect(links.querySelector('[data-testid="open-in-debugger"]')?.getAttribute("href")).toContain("prompt=+Rome+ruled+the+sea");
    clickPoint(4, 3);
    expect(window.location.pathname + window.location.search).toBe("/prompt?prompt=+Rome+ruled+the+sea&pos=0");
  });
});
