import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import check from "../test/fixtures/graph-check.json";
import edge from "../test/fixtures/graph-edge.json";
import graph from "../test/fixtures/graph.json";
import { DATASET_DONE, mockServer, type Handler } from "../test/mockServer";

const PROMPT = "The capital of France is";
const URL0 = "/graph?prompt=The+capital+of+France+is&node_threshold=0.99";
const REQ = { prompt: PROMPT, node_threshold: 0.99, edge_threshold: 0.98 };

const graphServer = (more?: Handler) =>
  mockServer((path, body) => {
    if (path === "/api/graph") return { status: 200, body: graph };
    if (path === "/api/graph/edge") return { status: 200, body: edge };
    if (path === "/api/graph/check") return { status: 200, body: check };
    return more?.(path, body);
  });

const q = () => new URLSearchParams(window.location.search);
const svgNode = (key: string) => document.querySelector(`[data-testid="graph-node"][data-key="${key}"]`)!;

beforeEach(() => window.history.replaceState(null, "", URL0));
afterEach(() => vi.unstubAllGlobals());

describe("Graph page", () => {
  it("asks for the URL's graph and draws its nodes, links, token columns and scores", async () => {
    const calls = graphServer();
    render(<App />);
    await waitFor(() => expect(screen.getByTestId("graph")).toHaveAttribute("data-stale", "false"));
    expect(calls.find((c) => c.path === "/api/graph")?.body).toEqual(REQ);
    const nodes = screen.getAllByTestId("graph-node");
    expect(nodes).toHaveLength(graph.nodes.length);
    expect(nodes.filter((n) => n.dataset.type === "latent")).toHaveLength(8);
    expect(nodes.filter((n) => n.dataset.type === "token").map((n) => n.textContent)).toEqual(["The", "·capital", "·of", "·France", "·is"]);
    expect(screen.getAllByTestId("graph-edge")).toHaveLength(graph.links.length);
    expect(screen.getByTestId("score-replacement")).toHaveAttribute("data-value", String(graph.scores.replacement));
    expect(screen.getByTestId("kept-node-influence")).toHaveTextContent("99.0%");
    expect(screen.getByTestId("nav-graph")).toHaveAttribute("aria-current", "page");
    expect(screen.getByTestId("debugger-link").getAttribute("href")).toBe("/?prompt=The+capital+of+France+is&target=+Paris");
    expect(screen.getByTestId("open-in-explorer").getAttribute("href")).toBe("/prompt?prompt=The+capital+of+France+is");
  });

  it("a click selects a node: its details, node page, edges; an edge's heads with Q/K trace links", async () => {
    const calls = graphServer();
    render(<App />);
    await waitFor(() => screen.getByTestId("graph-svg"));
    fireEvent.click(svgNode("19_92_4"));
    expect(q().get("clicked")).toBe("19_92_4");
    const panel = screen.getByTestId("node-panel");
    expect(within(panel).getByTestId("node-id")).toHaveTextContent("19_92_4");
    await waitFor(() =>
      expect(within(panel).getByTestId("node-page-link").getAttribute("href")).toBe(
        "/node/TestModel/skip_transcoder_l19_mlp_out/-/92?prompt=The+capital+of+France+is&token=4",
      ),
    );
    const rows = within(panel).getAllByTestId("edge-row");
    expect(rows.length).toBeGreaterThan(0);
    // Its edges end at errors and logits, which have no node page.
    expect(within(panel).queryByTestId("latent-page-link")).toBeNull();
    // the clicked node's edges are the lit ones
    const lit = document.querySelectorAll(".graph-edges .lit [data-testid=graph-edge]");
    expect(lit.length).toBe(graph.links.filter((l) => l.source === "19_92_4" || l.target === "19_92_4").length);

    await userEvent.click(within(screen.getByTestId("edges-outputs")).getAllByTestId("edge-row")[0]!);
    expect(q().get("edge")).toBe("19_92_4,31_7042_4");
    await waitFor(() => screen.getByTestId("edge-heads"));
    // The edge's latent end links to its node page.
    expect(within(screen.getByTestId("edge-panel")).getByTestId("latent-page-link").getAttribute("href")).toBe(
      "/node/TestModel/skip_transcoder_l19_mlp_out/-/92?prompt=The+capital+of+France+is&token=4",
    );
    expect(calls.find((c) => c.path === "/api/graph/edge")?.body).toEqual({ ...REQ, source: "19_92_4", sink: "31_7042_4" });
    expect(screen.getAllByTestId("head-row")).toHaveLength(3);
    const trace = screen.getAllByTestId("trace-link")[0]!.getAttribute("href")!;
    expect(new URLSearchParams(trace.slice(2)).get("trace")).toBe("L29.attn_head.1@4<-4");
    expect(new URLSearchParams(trace.slice(2)).get("through")).toBe("query_key");
    expect(new URLSearchParams(trace.slice(2)).get("prompt")).toBe(PROMPT);

    // Escape in a text field is the field's; on the page it lets go of the node and the edge
    const field = document.querySelector("input, textarea")!;
    fireEvent.keyDown(field, { key: "Escape" });
    expect(q().get("clicked")).toBe("19_92_4");
    fireEvent.keyDown(window, { key: "Escape" });
    expect(q().get("clicked")).toBeNull();
    expect(q().get("edge")).toBeNull();
  });

  it("pins by ctrl-click, groups into a supernode, runs the causal check on the pinned nodes", async () => {
    const calls = graphServer();
    render(<App />);
    await waitFor(() => screen.getByTestId("graph-svg"));
    fireEvent.click(svgNode("19_92_4"), { ctrlKey: true });
    fireEvent.click(svgNode("29_239_4"), { metaKey: true });
    expect(q().get("pinned")).toBe("19_92_4,29_239_4");
    expect(svgNode("19_92_4")).toHaveAttribute("data-pinned", "true");

    await userEvent.click(screen.getByTestId("check-button"));
    expect(q().get("check")).toBe("19_92_4,29_239_4");
    await waitFor(() => expect(screen.getAllByTestId("check-row")).toHaveLength(3));
    const checked = screen.getAllByTestId("check-row").find((r) => r.dataset.id === "19_92_4")!;
    expect(within(checked).getByTestId("latent-page-link").getAttribute("href")).toBe(
      "/node/TestModel/skip_transcoder_l19_mlp_out/-/92?prompt=The+capital+of+France+is&token=4",
    );
    expect(calls.find((c) => c.path === "/api/graph/check")?.body).toEqual({ ...REQ, nodes: ["19_92_4", "29_239_4"], factor: 0 });
    expect(screen.getByTestId("check-pearson")).toHaveTextContent("-1.000");
    expect(screen.getByTestId("check-together")).toHaveTextContent("+0.874");

    await userEvent.type(screen.getByTestId("group-label"), "late");
    await userEvent.click(screen.getByTestId("group-button"));
    expect(JSON.parse(q().get("supernodes")!)).toEqual([["late", "19_92_4", "29_239_4"]]);
    const box = svgNode("sn:late");
    expect(box).toHaveTextContent("late");
    expect(svgNode("19_92_4")).toBeNull(); // drawn as the box
    expect(screen.getByTestId("supernode-panel")).toHaveTextContent("2 nodes");

    await userEvent.click(screen.getByTestId("pinned-only"));
    const types = screen.getAllByTestId("graph-node").map((n) => n.dataset.type);
    expect(types.filter((t) => t === "supernode")).toHaveLength(1);
    expect(types.filter((t) => t === "latent" || t === "error")).toHaveLength(0);

    await userEvent.click(screen.getByTestId("ungroup-button"));
    expect(q().get("supernodes")).toBeNull();
    expect(screen.getAllByTestId("graph-node").filter((n) => n.dataset.type === "latent")).toHaveLength(2);
  });

  it("a logit other than the first can be explained alone: a new graph for its token id", async () => {
    const calls = graphServer();
    render(<App />);
    await waitFor(() => screen.getByTestId("graph-svg"));
    const second = graph.nodes.filter((n) => n.type === "logit")[1]!;
    fireEvent.click(svgNode(second.id));
    await userEvent.click(screen.getByTestId("explain-logit"));
    expect(q().get("target_id")).toBe(String(second.index));
    expect(q().get("clicked")).toBeNull();
    await waitFor(() => expect(calls.filter((c) => c.path === "/api/graph")).toHaveLength(2));
    expect(calls.filter((c) => c.path === "/api/graph")[1]!.body).toEqual({ ...REQ, target: second.index });
    expect(screen.getByTestId("graph-target")).toHaveValue(`#${second.index}`);
  });

  it("a logit's input latents link to their node pages; following one does not select the edge", async () => {
    graphServer();
    render(<App />);
    await waitFor(() => screen.getByTestId("graph-svg"));
    fireEvent.click(svgNode("31_7042_4"));
    const inputs = within(screen.getByTestId("edges-inputs")).getAllByTestId("edge-row");
    const withPage = inputs.filter((r) => within(r).queryByTestId("latent-page-link"));
    expect(withPage.length).toBeGreaterThan(0);
    expect(withPage.length).toBeLessThan(inputs.length); // errors and tokens have none
    const link = within(withPage[0]!).getByTestId("latent-page-link");
    expect(link.getAttribute("href")).toMatch(/^\/node\/TestModel\/[a-z0-9_]+\/-\/\d+\?prompt=The\+capital\+of\+France\+is&token=4$/);
    fireEvent.click(link);
    expect(window.location.pathname).toMatch(/^\/node\/TestModel\//);
    expect(q().get("edge")).toBeNull(); // the row's own click (explain the edge) did not run
  });

  it("the form pushes a new graph; a 422 (no transcoders) is shown", async () => {
    const calls = mockServer((path) =>
      path === "/api/graph" ? { status: 422, body: { error: "no transcoders attached (serve with --sae DIR)", field: "prompt" } } : undefined,
    );
    render(<App />);
    await waitFor(() => expect(screen.getByTestId("error")).toHaveTextContent("no transcoders attached"));
    const target = screen.getByTestId("graph-target");
    await userEvent.type(target, " Paris");
    await userEvent.clear(screen.getByTestId("graph-node-threshold"));
    await userEvent.type(screen.getByTestId("graph-node-threshold"), "0.7");
    await userEvent.type(screen.getByTestId("graph-max-features"), "1024");
    await userEvent.click(screen.getByTestId("graph-run"));
    expect(q().get("target")).toBe(" Paris");
    expect(q().get("node_threshold")).toBe("0.7");
    await waitFor(() => expect(calls.filter((c) => c.path === "/api/graph")).toHaveLength(2));
    expect(calls.filter((c) => c.path === "/api/graph")[1]!.body).toEqual({ ...REQ, node_threshold: 0.7, target: " Paris", max_features: 1024 });
    await userEvent.clear(screen.getByTestId("graph-node-threshold"));
    await userEvent.type(screen.getByTestId("graph-node-threshold"), "3");
    await userEvent.click(screen.getByTestId("graph-run"));
    expect(screen.getAllByTestId("error")[0]).toHaveTextContent("node_threshold: a fraction in (0, 1]");
  });

  it("without a prompt, introduces the page", async () => {
    window.history.replaceState(null, "", "/graph");
    mockServer();
    render(<App />);
    expect(await screen.findByTestId("graph-example")).toHaveAttribute("href", "/graph?prompt=The+capital+of+France+is");
  });
});

describe("the Graph page's latent panel", () => {
  // the latent 19_92_4: a transcoder latent, whose kind has no layer (the dataset's layer 0)
  const LATENT = graph.nodes.find((n) => n.id === "19_92_4")!;
  const UNIT = { kind: LATENT.kind, layer: 0, index: LATENT.index };
  const SCORES = {
    simulation: { value: null, n: 0, lo: null, hi: null, failure: "not run: no simulator", failed: 0, method: null },
    embedding: { value: 0.71, n: 30, lo: 0.55, hi: 0.84, failure: null, failed: 0, method: null },
  };
  const EXPL = {
    ...UNIT, explanation: "capital cities after 'of'", failure: null, explainer: "baseline", backend: "baseline", model: "-",
    prompt_version: "baseline1", scorer: null, scorer_model: null, scores: SCORES, notes: [], created: "2026-12-03T08:00:00",
  };
  const example = (id: number) => ({
    window_id: id, activation: 3 - id / 2, position: 2, key_position: null, title: `Doc ${id}`,
    tokens: [" the", " capital", " of", " Spain"], acts: [0, 0.5, 3 - id / 2, -1], quantile_lo: null, quantile_hi: null,
  });
  const STATS = { count: 1000, mean: 0.1, var: 0.2, skew: 1, kurtosis: 3, density: 0.01, max_activation: 3, hist: [1], hist_lo: [0], hist_hi: [3] };
  const NODE = { status: DATASET_DONE, stats: STATS, top: [0, 1, 2].map(example), random: [example(7)], quantile: [] };
  const asked = (calls: { path: string }[]) => calls.filter((c) => c.path === "/api/dataset/node" || c.path === "/api/explanations/node");

  beforeEach(() => window.history.replaceState(null, "", URL0 + "&clicked=19_92_4"));

  it("with a finished dataset: the latent's explanation with its scores and its top 3 examples, token by token", async () => {
    const calls = graphServer((path) => {
      if (path === "/api/dataset") return { status: 200, body: DATASET_DONE };
      if (path === "/api/explanations/node") return { status: 200, body: EXPL };
      if (path === "/api/dataset/node") return { status: 200, body: NODE };
      return undefined;
    });
    render(<App />);
    const panel = await screen.findByTestId("node-panel");
    const expl = await within(panel).findByTestId("current-explanation");
    expect(expl).toHaveTextContent("capital cities after 'of'");
    const rows = within(within(panel).getByTestId("scores")).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.getAttribute("data-score"))).toEqual(["simulation", "embedding"]);
    expect(rows[1]).toHaveTextContent("0.55 – 0.84");
    const top = await within(panel).findByTestId("panel-top-examples");
    const lines = within(top).getAllByTestId("example");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toHaveTextContent("Doc 0");
    const peak = lines[0]!.querySelector(".ex-tok.peak")!;
    expect(peak).toHaveTextContent("of");
    expect(peak).toHaveStyle({ background: "rgb(70, 122, 238)" }); // 3 on a ±3 scale: the darkest blue
    expect(lines[0]!.querySelectorAll(".ex-tok[style]")).toHaveLength(4); // every token coloured
    expect(calls.find((c) => c.path === "/api/explanations/node")?.body).toEqual(UNIT);
    expect(calls.find((c) => c.path === "/api/dataset/node")?.body).toEqual({ ...UNIT, n: 3 });
    expect(within(panel).getByTestId("node-page-link")).toBeInTheDocument();
    expect(within(panel).queryByTestId("dataset-needed")).toBeNull();
  });

  it("without a dataset: one quiet line, and no request for examples or explanations", async () => {
    const calls = graphServer(); // GET /api/dataset: status "none"
    render(<App />);
    const panel = await screen.findByTestId("node-panel");
    const line = await within(panel).findByTestId("dataset-needed");
    expect(line).toHaveAttribute("data-status", "none");
    expect(line).toHaveTextContent("No collated dataset on this server: top examples and the explanation need serve --dataset DIR");
    expect(within(panel).getByTestId("node-page-link")).toBeInTheDocument();
    expect(within(panel).getAllByTestId("edge-row").length).toBeGreaterThan(0);
    await new Promise((ok) => setTimeout(ok, 50));
    expect(calls.filter((c) => c.path === "/api/dataset")).toHaveLength(1);
    expect(asked(calls)).toEqual([]);
    expect(screen.queryByTestId("error")).toBeNull();
  });

  it("while the dataset is being collated: its progress, and nothing asked of it yet", async () => {
    const running = { ...DATASET_DONE, status: "running", fraction: 0.25, tokens_done: 250, preview_tokens: 100 };
    const calls = graphServer((path) => (path === "/api/dataset" ? { status: 200, body: running } : undefined));
    render(<App />);
    const line = await screen.findByTestId("dataset-needed");
    expect(line).toHaveAttribute("data-status", "running");
    expect(line).toHaveTextContent("Collating the dataset: 25.0% (250 / 1,000 tokens)");
    expect(asked(calls)).toEqual([]);
  });

  it("a token node has no dataset part and asks nothing of the dataset", async () => {
    const token = graph.nodes.find((n) => n.type === "token")!;
    window.history.replaceState(null, "", URL0 + `&clicked=${token.id}`);
    const calls = graphServer();
    render(<App />);
    await screen.findByTestId("node-panel");
    expect(screen.queryByTestId("latent-dataset")).toBeNull();
    expect(calls.some((c) => c.path.startsWith("/api/dataset") || c.path.startsWith("/api/explanations"))).toBe(false);
  });
});
