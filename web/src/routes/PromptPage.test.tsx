import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { DATASET_DONE, mockServer } from "../test/mockServer";
import { LENS_K } from "./PromptPage";

const TOKENS = ["The", " cat", " sat"];
const UNITS = 9; // attn_head's size in the fixture's kinds
const LAYERS = 30;

/** A grid whose unit u of layer l at position p has code (p + 1) * (u + 1) - l (scale 0.1). */
function gridResponse(kind: string) {
  const b64 = (codes: number[]) => btoa(String.fromCharCode(...codes.map((c) => c & 0xff)));
  const layers = Array.from({ length: LAYERS }, (_, l) => {
    const codes: number[] = [];
    TOKENS.forEach((_, p) => {
      for (let u = 0; u < UNITS; u++) codes.push((p + 1) * (u + 1) - l);
    });
    return { layer: l, scales: TOKENS.map(() => 0.1), codes: b64(codes) };
  });
  const rows = LAYERS + 1;
  return {
    kind, tokens: TOKENS, units: UNITS, layers,
    lens: {
      layers: [...Array.from({ length: LAYERS }, (_, l) => `L${l}`), "final"],
      ids: Array.from({ length: rows }, () => TOKENS.map(() => [7, 8, 9])),
      probs: Array.from({ length: rows }, () => TOKENS.map(() => [0.5, 0.25, 0.125])),
      vocab: { 7: " mat", 8: " on", 9: "." },
    },
  };
}

function serve(dataset?: object) {
  return mockServer((path, body) => {
    if (path === "/api/prompt/grid") return { status: 200, body: gridResponse((body as { kind: string }).kind) };
    if (path === "/api/dataset" && dataset) return { status: 200, body: dataset };
    if (path === "/api/dataset/node") {
      return { status: 200, body: { status: dataset, stats: null, top: [{ window_id: 4, activation: 2, position: 1, tokens: ["a", " b"], acts: [0, 2], title: "Doc" }], random: [], quantile: [] } };
    }
    return undefined;
  });
}

const at = (url: string) => window.history.replaceState(null, "", url);
const params = () => new URLSearchParams(window.location.search);
const summary = () => screen.getByTestId("grid-summary");

beforeEach(() => {
  at("/prompt");
  // jsdom draws nothing (and says so on every call): the canvases get no context, as without one
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(null);
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("PromptPage", () => {
  it("asks once for the URL's prompt and kind, and moves along the tokens without asking again", async () => {
    at("/prompt?prompt=The+cat+sat&kind=attn_head");
    const calls = serve();
    render(<App />);
    await waitFor(() => expect(summary()).toHaveAttribute("data-pos", "2")); // the last token by default
    const grids = () => calls.filter((c) => c.path === "/api/prompt/grid");
    expect(grids().map((c) => c.body)).toEqual([{ prompt: "The cat sat", kind: "attn_head", k: LENS_K }]);
    expect(screen.getAllByTestId("grid-row")).toHaveLength(LAYERS);
    const sumAt2 = summary().dataset.sum;
    // the strongest unit at the last token: layer 0's unit 8, code 3 * 9 = 27
    expect(summary()).toHaveAttribute("data-top", "L0.H8");
    act(() => void fireEvent.keyDown(window, { key: "ArrowLeft" }));
    await waitFor(() => expect(summary()).toHaveAttribute("data-pos", "1"));
    expect(params().get("pos")).toBe("1");
    expect(summary().dataset.sum).not.toBe(sumAt2);
    act(() => void fireEvent.keyDown(window, { key: "Home" }));
    await waitFor(() => expect(summary()).toHaveAttribute("data-pos", "0"));
    await userEvent.click(screen.getAllByTestId("prompt-tokens")[0]!.querySelectorAll("button")[2]!);
    await waitFor(() => expect(summary()).toHaveAttribute("data-pos", "2"));
    expect(grids()).toHaveLength(1);
    // the lens beside each layer: the row after it
    expect(screen.getAllByTestId("lens-cell")[0]).toHaveTextContent("mat");
  });

  it("shows a picked unit's activations and says its examples need a dataset", async () => {
    at("/prompt?prompt=The+cat+sat&kind=attn_head&unit=3.4&pos=1");
    serve();
    render(<App />);
    const panel = await screen.findByTestId("unit-panel");
    expect(panel).toHaveAttribute("data-unit", "L3.H4");
    const acts = [...screen.getByTestId("unit-acts").querySelectorAll("[data-pos]")].map((e) => Number((e as HTMLElement).dataset.value));
    expect(acts.map((v) => Math.round(v * 10) / 10)).toEqual([0.2, 0.7, 1.2]); // ((p + 1) * 5 - 3) * 0.1
    expect(screen.getByTestId("unit-node-link")).toHaveAttribute("href", "/node/TestModel/attn_head/3/4?prompt=The+cat+sat&token=1");
    expect(screen.getByTestId("unit-debugger-link")).toHaveAttribute("href", "/?prompt=The+cat+sat");
    expect(await screen.findAllByTestId("dataset-needed")).toHaveLength(2); // the search and the examples
  });

  it("loads a unit's top examples from the dataset", async () => {
    at("/prompt?prompt=The+cat+sat&kind=attn_head&unit=3.4");
    const calls = serve(DATASET_DONE);
    render(<App />);
    await screen.findByTestId("unit-top-examples");
    expect(calls.find((c) => c.path === "/api/dataset/node")?.body).toEqual({ kind: "attn_head", layer: 3, index: 4, n: 8 });
    await userEvent.click(screen.getByTestId("use-example"));
    expect(params().get("prompt")).toBe("a b");
    expect(params().get("unit")).toBe("3.4");
  });

  it("offers example prompts and the kinds with units; neurons by default", async () => {
    const calls = serve();
    render(<App />);
    const select = await screen.findByTestId("kind-select");
    await waitFor(() => expect(select.querySelectorAll("option")).toHaveLength(2));
    expect(select).toHaveValue("mlp_neuron");
    await userEvent.click(screen.getAllByTestId("prompt-example")[0]!);
    expect(params().get("prompt")).toMatch(/^The capital of France/);
    await waitFor(() => expect(calls.some((c) => c.path === "/api/prompt/grid")).toBe(true));
    expect((calls.find((c) => c.path === "/api/prompt/grid")?.body as { kind: string }).kind).toBe("mlp_neuron");
  });
});
