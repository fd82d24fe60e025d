import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { mockServer } from "../test/mockServer";

const tv = (id: number, token: string, value: number) => ({ id, token, value });
const GRID = {
  stream: "resid",
  tokens: ["The", " capital", " is"],
  layers: ["L0", "L1", "final"],
  top: [0, 1, 2].map((l) => [0, 1, 2].map((p) => [tv(10 + p, ` t${l}${p}`, 0.1 * (l + 1)), tv(99, " x", 0.01)])),
  target: null,
};
const TARGETED = { ...GRID, target: { id: 5, token: " Paris", probs: [[0, 0, 0.01], [0, 0, 0.2], [0, 0, 0.77]], ranks: [[900, 800, 40], [700, 600, 3], [500, 400, 0]] } };

const q = () => new URLSearchParams(window.location.search);

beforeEach(() => window.history.replaceState(null, "", "/lens?prompt=The+capital+is&k=2"));
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("Lens page", () => {
  it("draws the grid from the URL; hover shows the top k; a click targets the cell's top token", async () => {
    const calls = mockServer((path, body) =>
      path === "/api/lens/grid" ? { status: 200, body: (body as { target: unknown }).target !== null ? TARGETED : GRID } : undefined,
    );
    render(<App />);
    await waitFor(() => screen.getByTestId("lens-grid"));
    expect(calls.find((c) => c.path === "/api/lens/grid")?.body).toEqual({ prompt: "The capital is", stream: "resid", k: 2, target: null });
    expect(screen.getByTestId("nav-lens")).toHaveAttribute("aria-current", "page");
    expect(document.querySelectorAll(".lens-cell")).toHaveLength(9);
    const last = document.querySelector('.lens-cell[data-layer="2"][data-pos="2"]')!;
    expect(last).toHaveTextContent("·t2230.0%");
    fireEvent.mouseEnter(last);
    expect(screen.getByTestId("lens-hover")).toHaveTextContent("final · position 2 \" is\":");
    expect(screen.getByTestId("lens-hover").querySelectorAll(".lens-hover-tok")).toHaveLength(2);
    fireEvent.click(last);
    expect(q().get("target")).toBe("#12");
    await waitFor(() => expect(screen.getByTestId("lens-results")).toHaveAttribute("data-target", "5"));
    expect(calls.filter((c) => c.path === "/api/lens/grid").at(-1)?.body).toEqual({ prompt: "The capital is", stream: "resid", k: 2, target: 12 });
    expect(document.querySelector('.lens-cell[data-layer="2"][data-pos="2"]')).toHaveTextContent("#0 · 77.0%");
    expect(document.querySelector('.lens-cell[data-layer="1"][data-pos="2"]')).toHaveAttribute("data-prob", "0.2");
  });

  it("the stream selector is URL state and says what the stream means", async () => {
    mockServer((path, body) => (path === "/api/lens/grid" ? { status: 200, body: { ...GRID, stream: (body as { stream: string }).stream, layers: ["L0", "L1"], top: GRID.top.slice(0, 2) } } : undefined));
    render(<App />);
    await waitFor(() => screen.getByTestId("lens-grid"));
    fireEvent.change(screen.getByTestId("lens-stream"), { target: { value: "attn" } });
    expect(q().get("stream")).toBe("attn");
    await waitFor(() => expect(screen.getByTestId("lens-results")).toHaveAttribute("data-stream", "attn"));
    expect(screen.getByTestId("lens-meaning")).toHaveTextContent("frozen");
  });
});
