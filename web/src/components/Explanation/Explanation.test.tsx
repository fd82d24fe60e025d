import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { DATASET_DONE, mockServer } from "../../test/mockServer";
import { collatedUnits, headlineScore, scoreTitle } from "./explanations";
import { ExplanationSection } from "./ExplanationSection";
import { twoTone } from "./SimulationView";
import kinds from "../../test/fixtures/kinds.json";
import type { KindInfo } from "../../client/api";

const KINDS = kinds as KindInfo[];
const UNIT = KINDS.find((k) => k.collated && k.layered && k.unit)!;
const NOT_COLLATED = KINDS.find((k) => !k.collated);
const SCORES = {
  simulation: { value: null, n: 0, lo: null, hi: null, failure: "not run: this job had no simulator (scored without an LLM)", failed: 0, method: null },
  embedding: { value: 0.71, n: 30, lo: 0.55, hi: 0.84, failure: null, failed: 0, method: null },
};
const EXPL = (index: number, text = "fires on ' risk' after ' the'") => ({
  kind: UNIT.name, layer: 3, index, explanation: text, failure: null, explainer: "baseline", backend: "baseline",
  model: "-", prompt_version: "baseline1", scorer: null, scorer_model: null, scores: SCORES, notes: [], created: "2026-12-03T08:00:00",
});
const SCORED = {
  explanation: "risk", scale: 4, tokens: 1234, notes: [],
  score: { value: 0.83, n: 2, lo: 0.6, hi: 0.95, failure: null, failed: 0, method: "all_at_once" },
  records: [
    { window_id: 5, source: "top", tokens: [" the", " risk"], acts: [0, 4], scaled: [0, 10], simulated: [0.4, 8.5], failure: null },
    { window_id: 9, source: "random", tokens: [" a"], acts: [0], scaled: [0], simulated: null, failure: "every answer was cut" },
  ],
};

afterEach(() => vi.unstubAllGlobals());

describe("score labels", () => {
  it("say value, n and the interval, or why a score is absent", () => {
    expect(scoreTitle("embedding", SCORES.embedding)).toBe("embedding: 0.71, n = 30, 95% CI 0.55–0.84");
    expect(scoreTitle("simulation", SCORES.simulation)).toBe("simulation: absent (not run: this job had no simulator (scored without an LLM))");
    expect(scoreTitle("simulation", { value: 0.12, n: 9, lo: -0.1, hi: 0.3, method: "all_at_once", mass: 0.0123 })).toBe(
      "simulation (all_at_once): 0.12, n = 9, 95% CI -0.10–0.30; the simulator put 1.2% on numbers at a slot (median)",
    );
    expect(headlineScore(EXPL(1))?.[0]).toBe("embedding"); // the first score with a value
    const none = { ...EXPL(1), scores: { simulation: SCORES.simulation, detection: SCORES.simulation } };
    expect(headlineScore(none)?.[0]).toBe("simulation"); // none has one: the first, as absent
    expect(headlineScore({ ...EXPL(1), scores: {} })).toBeNull();
  });

  it("asks only for collated units, once each", () => {
    const nodes = [
      { kind: UNIT.name, layer: 3, index: 7, token: 1 },
      { kind: UNIT.name, layer: 3, index: 7, token: 4 },
      ...(NOT_COLLATED ? [{ kind: NOT_COLLATED.name, layer: NOT_COLLATED.layered ? 1 : null, index: NOT_COLLATED.unit ? 0 : null, token: 2 }] : []),
    ];
    expect(collatedUnits(nodes, KINDS)).toEqual([{ kind: UNIT.name, layer: 3, index: 7 }]);
  });

  it("paints the true value on top and the simulation below", () => {
    expect(twoTone(10, 0)).toContain("22, 163, 74, 1.00) 50%");
    expect(twoTone(10, 0)).toContain("147, 51, 234, 0.00) 50%");
    expect(twoTone(0, null)).toContain("147, 51, 234, 0.00)");
  });
});

describe("ExplanationSection", () => {
  it("shows the explanation with every score, n and interval", async () => {
    mockServer((path) => (path === "/api/explanations/node" ? { status: 200, body: EXPL(7) } : undefined));
    render(<ExplanationSection kind={UNIT.name} layer={3} index={7} />);
    await screen.findByTestId("current-explanation");
    expect(screen.getByTestId("current-explanation")).toHaveTextContent("fires on ' risk' after ' the'");
    const rows = within(screen.getByTestId("scores")).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.getAttribute("data-score"))).toEqual(["simulation", "embedding"]);
    expect(rows[1]).toHaveTextContent("0.71");
    expect(rows[1]).toHaveTextContent("30");
    expect(rows[1]).toHaveTextContent("0.55 – 0.84");
    expect(rows[0]).toHaveTextContent("absent");
  });

  it("with no explanations file, offers Explain, which stores the baseline and shows it", async () => {
    let stored = false;
    const calls = mockServer((path) => {
      if (path === "/api/explanations/node")
        return { status: 200, body: stored ? EXPL(7) : null };
      if (path === "/api/explanations/explain") {
        stored = true;
        return { status: 200, body: EXPL(7) };
      }
      return undefined;
    });
    render(<ExplanationSection kind={UNIT.name} layer={3} index={7} />);
    await screen.findByTestId("no-explanation");
    await userEvent.click(screen.getByTestId("explain-button"));
    await screen.findByTestId("current-explanation");
    expect(calls.find((c) => c.path === "/api/explanations/explain")?.body).toEqual({ kind: UNIT.name, layer: 3, index: 7 });
  });

  it("scores my explanation and shows the simulation token by token", async () => {
    const calls = mockServer((path) => {
      if (path === "/api/explanations/node") return { status: 200, body: null };
      if (path === "/api/explanations/score") return { status: 200, body: SCORED };
      return undefined;
    });
    render(<ExplanationSection kind={UNIT.name} layer={3} index={7} />);
    await screen.findByTestId("no-explanation");
    expect(screen.getByTestId("score-mine-submit")).toBeDisabled();
    await userEvent.type(screen.getByTestId("score-mine-input"), "risk");
    await userEvent.click(screen.getByTestId("score-mine-submit"));
    await screen.findByTestId("simulation");
    expect(calls.find((c) => c.path === "/api/explanations/score")?.body).toEqual({ kind: UNIT.name, layer: 3, index: 7, explanation: "risk" });
    expect(screen.getByTestId("sim-summary")).toHaveTextContent("0.83, n = 2, 95% CI 0.60–0.95");
    const toks = screen.getAllByTestId("sim-tok");
    expect(toks).toHaveLength(2);
    expect(toks[1]).toHaveAttribute("title", "true 10 (raw 4.000) · simulated 8.5");
    expect(screen.getByTestId("sim-failure")).toHaveTextContent("every answer was cut");
  });

  it("shows a refusal (a 4xx naming the limit) as an error", async () => {
    mockServer((path) => {
      if (path === "/api/explanations/node") return { status: 200, body: EXPL(7) };
      if (path === "/api/explanations/score")
        return { status: 422, body: { error: "records: ... the limit is 65,536 (max_simulation_tokens)", field: "records" } };
      return undefined;
    });
    render(<ExplanationSection kind={UNIT.name} layer={3} index={7} />);
    await screen.findByTestId("current-explanation");
    await userEvent.click(screen.getByTestId("score-mine-submit")); // empty box: the current explanation
    expect(await screen.findByRole("alert")).toHaveTextContent("max_simulation_tokens");
  });
});

const DEMO = "/?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John";

describe("the Debugger's node table", () => {
  beforeEach(() => window.history.replaceState(null, "", DEMO));

  it("asks once for the visible collated rows and shows an explanation column with score badges", async () => {
    const calls = mockServer((path, body) => {
      if (path === "/api/dataset") return { status: 200, body: DATASET_DONE };
      if (path !== "/api/explanations/nodes") return undefined;
      const nodes = (body as { nodes: { kind: string; layer: number; index: number }[] }).nodes;
      const first = nodes[0]!;
      return { status: 200, body: { explanations: [{ ...EXPL(first.index), kind: first.kind, layer: first.layer }] } };
    });
    render(<App />);
    await waitFor(() => screen.getByTestId("node-table"));
    const cells = await screen.findAllByTestId("explanation-cell", {}, { timeout: 5000 });
    const cell = cells[0]!; // the unit's rows (at a token, and as a pair) share its explanation
    const asked = calls.filter((c) => c.path === "/api/explanations/nodes");
    expect(asked).toHaveLength(1);
    const nodes = (asked[0]!.body as { nodes: { kind: string; layer: number; index: number }[] }).nodes;
    const first = nodes[0]!;
    expect(cells.every((c) => c.closest("tr")?.getAttribute("data-label")?.startsWith(`L${first.layer}.${first.kind}.${first.index}@`))).toBe(true);
    expect(nodes.length).toBeGreaterThan(0);
    expect(nodes.every((n) => KINDS.find((k) => k.name === n.kind)?.collated)).toBe(true);
    expect(cell).toHaveTextContent("fires on ' risk'");
    expect(within(cell).getByTestId("score-badge")).toHaveAttribute("title", "embedding: 0.71, n = 30, 95% CI 0.55–0.84");
    expect(screen.getByTestId("node-table").querySelector("th[data-col=explanation]")).not.toBeNull();
  });

  it("asks for no explanations on a server without a dataset", async () => {
    const calls = mockServer(); // GET /api/dataset: status "none"
    render(<App />);
    await waitFor(() => screen.getByTestId("node-table"));
    await waitFor(() => expect(calls.some((c) => c.path === "/api/dataset")).toBe(true));
    await new Promise((ok) => setTimeout(ok, 50));
    expect(calls.filter((c) => c.path === "/api/dataset")).toHaveLength(1); // one request, shared by every part that needs it
    expect(calls.some((c) => c.path.startsWith("/api/explanations"))).toBe(false);
    expect(screen.getByTestId("node-table").querySelector("th[data-col=explanation]")).toBeNull();
  });
  it("has no explanation column when none of the rows has one", async () => {
    mockServer((path) => (path === "/api/explanations/nodes" ? { status: 200, body: { explanations: [] } } : undefined));
    render(<App />);
    await waitFor(() => screen.getByTestId("node-table"));
    expect(screen.getByTestId("node-table").querySelector("th[data-col=explanation]")).toBeNull();
  });
});

describe("a node page's explanation", () => {
  beforeEach(() => window.history.replaceState(null, "", `/node/TestModel/${UNIT.name}/3/7`));
  const NODE = { status: DATASET_DONE, stats: null, top: [], random: [], quantile: [] };
  it("is asked for once GET /api/dataset reports a finished dataset", async () => {
    const calls = mockServer((path) => {
      if (path === "/api/dataset") return { status: 200, body: DATASET_DONE };
      if (path === "/api/explanations/node") return { status: 200, body: EXPL(7) };
      if (path === "/api/dataset/node") return { status: 200, body: NODE };
      if (path === "/api/node/tokens") return { status: 200, body: { promoted: [], suppressed: [], drivers: [] } };
      return undefined;
    });
    render(<App />);
    expect(await screen.findByTestId("current-explanation")).toHaveTextContent("fires on ' risk' after ' the'");
    expect(screen.getByTestId("dataset-section")).toBeInTheDocument();
    expect(calls.find((c) => c.path === "/api/explanations/node")?.body).toEqual({ kind: UNIT.name, layer: 3, index: 7 });
    expect(screen.queryByTestId("dataset-needed")).toBeNull();
  });
  it("without a dataset: one quiet line instead of the sections, and no request that the server would refuse", async () => {
    const calls = mockServer((path) =>
      path === "/api/node/tokens" ? { status: 200, body: { promoted: [], suppressed: [], drivers: [] } } : undefined,
    );
    render(<App />);
    expect(await screen.findByTestId("dataset-needed")).toHaveTextContent("No collated dataset on this server");
    await new Promise((ok) => setTimeout(ok, 50));
    expect(screen.queryByTestId("explanation-section")).toBeNull();
    expect(screen.queryByTestId("dataset-section")).toBeNull();
    expect(calls.some((c) => c.path.startsWith("/api/dataset/") || c.path.startsWith("/api/explanations/"))).toBe(false);
    expect(screen.queryByTestId("error")).toBeNull();
  });
});

describe("search by explanation (the explorer)", () => {
  it("finds nodes by their explanation's text, links them, and pages on", async () => {
    const DONE = { status: "done", fraction: 1, tokens_done: 10, tokens_total: 10, corpus: "wiki", attribution: null };
    const calls = mockServer((path, body) => {
      if (path === "/api/dataset") return { status: 200, body: DONE };
      if (path !== "/api/explanations/search") return undefined;
      const offset = (body as { offset: number }).offset;
      return { status: 200, body: { hits: [EXPL(offset === 0 ? 7 : 8)], more: offset === 0 } };
    });
    window.history.replaceState(null, "", "/explore?expl=RISK");
    render(<App />);
    const hits = await screen.findByTestId("explanation-hits");
    expect(calls.find((c) => c.path === "/api/explanations/search")?.body).toEqual({ text: "RISK", n: 25, offset: 0, semantic: false });
    const link = within(hits).getByRole("link");
    expect(link).toHaveTextContent(`L3.${UNIT.name}.7`);
    expect(link.getAttribute("href")).toBe(`/node/TestModel/${UNIT.name}/3/7`);
    expect(hits.querySelector("mark")).toHaveTextContent("risk");
    await userEvent.click(screen.getByTestId("expl-more"));
    await waitFor(() => expect(within(screen.getByTestId("explanation-hits")).getByRole("link")).toHaveTextContent(`L3.${UNIT.name}.8`));
    expect(calls.filter((c) => c.path === "/api/explanations/search").map((c) => (c.body as { offset: number }).offset)).toEqual([0, 25]);
  });

  it("by meaning: asks for a semantic search, keeps it in the URL, shows each hit's similarity", async () => {
    const DONE = { status: "done", fraction: 1, tokens_done: 10, tokens_total: 10, corpus: "wiki", attribution: null };
    const calls = mockServer((path) => {
      if (path === "/api/dataset") return { status: 200, body: DONE };
      if (path !== "/api/explanations/search") return undefined;
      return { status: 200, body: { hits: [{ ...EXPL(7), similarity: 0.61 }], more: false } };
    });
    window.history.replaceState(null, "", "/explore?expl=danger");
    render(<App />);
    await screen.findByTestId("explanation-hits");
    await userEvent.click(screen.getByTestId("expl-semantic"));
    await waitFor(() => expect(new URLSearchParams(window.location.search).get("sem")).toBe("1"));
    await waitFor(() => expect(screen.getByTestId("expl-similarity")).toHaveTextContent("0.61"));
    const asked = calls.filter((c) => c.path === "/api/explanations/search").map((c) => (c.body as { semantic: boolean }).semantic);
    expect(asked).toEqual([false, true]);
    expect(screen.getByTestId("expl-results")).toHaveTextContent("closest in meaning");
    expect(screen.getByTestId("explanation-hits").querySelector("mark")).toBeNull(); // no substring marks by meaning
  });
});
