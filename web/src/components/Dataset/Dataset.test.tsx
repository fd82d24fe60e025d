import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import type { KindInfo } from "../../client/api";
import kinds from "../../test/fixtures/kinds.json";
import { mockServer } from "../../test/mockServer";
import { DatasetSection } from "./DatasetSection";
import { windowPrompt } from "./ExampleList";
import { Histogram } from "./Histogram";

const NEURON = (kinds as KindInfo[]).find((k) => k.unit === "neuron")!;
const HEAD = (kinds as KindInfo[]).find((k) => k.pattern)!;
const DONE = { status: "done", fraction: 1, tokens_done: 1000, tokens_total: 1000, corpus: "wiki", attribution: "Wikipedia, CC BY-SA 4.0" };
const RUNNING = { ...DONE, status: "running", fraction: 0.25, tokens_done: 250 };
const STATS = { count: 1000, mean: 0.5, var: 0.25, skew: 1.5, kurtosis: 4, density: 0.1, max_activation: 4, hist: [5, 0, 30, 2], hist_lo: [-1, 0, 1, 2], hist_hi: [0, 1, 2, 4] };
const example = (id: number, peak: number, extra: object = {}) => ({
  window_id: id, activation: 4 - id, position: peak, key_position: null, title: `Doc ${id}`,
  tokens: ["<bos>", " the", " risk", " of", "\n"], acts: [0, 0.5, 4 - id, 1, 0], quantile_lo: null, quantile_hi: null, ...extra,
});
const NODE = {
  status: DONE, stats: STATS,
  top: [example(0, 2), example(1, 2, { key_position: 1 })],
  random: [example(7, 3)],
  quantile: [example(8, 1, { quantile_lo: 0.25, quantile_hi: 0.5 })],
};

afterEach(() => vi.unstubAllGlobals());

describe("DatasetSection", () => {
  it("shows a progress bar while collating, polls and shows the examples when done", async () => {
    let status = RUNNING;
    const calls = mockServer((path) => {
      if (path === "/api/dataset/node") return { status: 200, body: status.status === "done" ? NODE : { status, stats: null, top: [], random: [], quantile: [] } };
      if (path === "/api/dataset") return { status: 200, body: status };
      return undefined;
    });
    render(<DatasetSection kind={NEURON} layer={3} index={7} pollMs={20} />);
    const bar = await screen.findByRole("progressbar");
    expect(bar).toHaveAttribute("aria-valuenow", "25");
    expect(screen.getByTestId("dataset-status")).toHaveTextContent("250 / 1,000 tokens");
    expect(screen.queryByTestId("top-examples")).toBeNull();
    expect(calls.find((c) => c.path === "/api/dataset/node")?.body).toEqual({ kind: "mlp_neuron", layer: 3, index: 7, n: 20 });
    status = DONE;
    await screen.findByTestId("top-examples");
    expect(calls.filter((c) => c.path === "/api/dataset").length).toBeGreaterThan(0);
    expect(calls.filter((c) => c.path === "/api/dataset/node")).toHaveLength(2);
    expect(screen.queryByRole("progressbar")).toBeNull();
  });

  it("shows a preview's examples with the progress while collating, and refetches on a newer preview", async () => {
    let status: object = { ...RUNNING, preview_tokens: 100 };
    const preview = (tokens: number) => ({ ...NODE, status: { ...RUNNING, preview_tokens: tokens }, top: [example(tokens === 100 ? 2 : 0, 2)] });
    const calls = mockServer((path) => {
      const s = status as { status: string; preview_tokens?: number };
      if (path === "/api/dataset/node") return { status: 200, body: s.status === "done" ? NODE : preview(s.preview_tokens ?? 0) };
      if (path === "/api/dataset") return { status: 200, body: status };
      return undefined;
    });
    render(<DatasetSection kind={NEURON} layer={3} index={7} pollMs={20} />);
    const top = await screen.findByTestId("top-examples");
    expect(within(top).getAllByTestId("example")).toHaveLength(1);
    expect(top).toHaveTextContent("Doc 2");
    expect(screen.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "25");
    expect(screen.getByTestId("dataset-status")).toHaveTextContent("from the first 100 tokens");
    await new Promise((ok) => setTimeout(ok, 80)); // polls with the same preview: no refetch
    expect(calls.filter((c) => c.path === "/api/dataset/node")).toHaveLength(1);
    status = { ...RUNNING, tokens_done: 500, fraction: 0.5, preview_tokens: 200 };
    await screen.findByText("Doc 0");
    expect(calls.filter((c) => c.path === "/api/dataset/node")).toHaveLength(2);
    status = DONE;
    await screen.findAllByText("Doc 1");
    expect(screen.queryByRole("progressbar")).toBeNull();
  });

  it("renders the examples with the peak outlined, the head's key marked and the attribution", async () => {
    mockServer((path) => (path === "/api/dataset/node" ? { status: 200, body: NODE } : undefined));
    render(<DatasetSection kind={HEAD} layer={3} index={7} />);
    const top = await screen.findByTestId("top-examples");
    const lines = within(top).getAllByTestId("example");
    expect(lines).toHaveLength(2);
    const peaks = top.querySelectorAll(".ex-tok.peak");
    expect(peaks).toHaveLength(2);
    expect(peaks[0]).toHaveTextContent("risk");
    expect(peaks[0]).toHaveAttribute("title", expect.stringContaining("peak token"));
    expect(peaks[0]).toHaveStyle({ background: "rgb(70, 122, 238)" }); // 4 on a ±4 scale: the darkest blue
    const keys = within(lines[1]!).getAllByTitle(/strongest key/);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toHaveTextContent("the");
    expect(lines[0]).toHaveTextContent("Doc 0");
    expect(screen.getByTestId("random-examples")).toHaveTextContent("Doc 7");
    await userEvent.click(screen.getByRole("tab", { name: /By quantile/ }));
    expect(screen.getByTestId("quantile-examples")).toHaveTextContent("25–50%");
    expect(screen.getByTestId("attribution")).toHaveTextContent("CC BY-SA 4.0");
    expect(screen.getByTestId("dataset-stats")).toHaveTextContent("0.5000"); // std = sqrt(0.25)
  });

  it("says so when there is no dataset and shows no examples", async () => {
    mockServer((path) => (path === "/api/dataset/node" ? { status: 200, body: { status: { status: "none" }, stats: null, top: [], random: [], quantile: [] } } : undefined));
    render(<DatasetSection kind={NEURON} layer={0} index={0} />);
    expect(await screen.findByTestId("dataset-status")).toHaveTextContent("mechscope collate");
    expect(screen.queryByTestId("example")).toBeNull();
    expect(screen.queryByTestId("attribution")).toBeNull();
  });
});

describe("Histogram", () => {
  it("draws one bar per bin, the empty bin with zero height", () => {
    render(<Histogram s={STATS} />);
    const bars = screen.getAllByTestId("hist-bar");
    expect(bars).toHaveLength(4);
    expect(bars[1]).toHaveAttribute("height", "0");
    expect(Number(bars[2]!.getAttribute("height"))).toBeGreaterThan(Number(bars[0]!.getAttribute("height")));
    expect(bars[0]).toHaveClass("negbar");
  });
});

describe("node page navigation", () => {
  beforeEach(() => window.history.replaceState(null, "", "/node/mlp_neuron/3/7?prompt=Hi+there&token=1"));

  it("j/k and h/l move between neurons and layers keeping the query; typing in an input is ignored", async () => {
    mockServer((path) => {
      if (path === "/api/dataset/node") return { status: 200, body: NODE };
      if (path === "/api/node") return { status: 500, body: { error: "not mocked", field: null } };
      if (path === "/api/node/tokens") return { status: 200, body: { promoted: [], suppressed: [], drivers: [] } };
      return undefined;
    });
    render(<App />);
    await screen.findByText("neuron 8 →"); // bounds come from /api/model
    // The model-less path still works; the links it makes name the served model.
    expect(screen.getByTestId("nav-next-node")).toHaveAttribute("href", "/node/TestModel/mlp_neuron/3/8?prompt=Hi+there&token=1");
    await userEvent.keyboard("k");
    expect(window.location.pathname + window.location.search).toBe("/node/TestModel/mlp_neuron/3/8?prompt=Hi+there&token=1");
    await userEvent.keyboard("l");
    expect(window.location.pathname).toBe("/node/TestModel/mlp_neuron/4/8");
    await userEvent.keyboard("[[j");
    expect(window.location.pathname).toBe("/node/TestModel/mlp_neuron/3/7");
    const input = document.createElement("input");
    document.body.appendChild(input);
    input.focus();
    await userEvent.keyboard("k");
    expect(window.location.pathname).toBe("/node/TestModel/mlp_neuron/3/7");
    input.remove();
    await userEvent.click(screen.getByTestId("nav-prev-layer"));
    expect(window.location.pathname).toBe("/node/TestModel/mlp_neuron/2/7");
  });

  it("works without a prompt: no on-prompt part, the dataset part is shown", async () => {
    window.history.replaceState(null, "", "/node/attn_head/29/8");
    const calls = mockServer((path) => {
      if (path === "/api/dataset") return { status: 200, body: DONE };
      return path === "/api/dataset/node" ? { status: 200, body: NODE } : undefined;
    });
    render(<App />);
    await screen.findByTestId("top-examples");
    expect(calls.some((c) => c.path === "/api/node")).toBe(false);
    expect(screen.queryByText(/on the prompt/)).toBeNull();
    expect(screen.getByTestId("nav-next-layer")).toHaveAttribute("aria-disabled", "true"); // 30 layers
    expect(screen.getByTestId("nav-next-node")).toHaveAttribute("aria-disabled", "true"); // 9 heads
  });
});

describe("windowPrompt", () => {
  it("keeps the window's start token unless the tokenizer prepends its own BOS", () => {
    expect(windowPrompt(["<|endoftext|>", "The", " cat"], false)).toBe("<|endoftext|>The cat");
    expect(windowPrompt(["<bos>", "The", " cat"], true)).toBe("The cat");
  });
});
