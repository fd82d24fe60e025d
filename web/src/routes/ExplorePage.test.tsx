import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { useLocation } from "../hooks/useLocation";
import { mockServer, type Handler } from "../test/mockServer";
import { ExplorePage, SEARCH_N, TOKEN_N } from "./ExplorePage";

const DONE = { status: "done", fraction: 1, tokens_done: 99981, tokens_total: 99981, corpus: "wiki", attribution: "Wikipedia, CC BY-SA 4.0" };
const TOKEN_ROWS = [
  { kind: "mlp_neuron", layer: 2, unit: 1475, token: " Paris", n_examples: 6, max_activation: 1.686 },
  { kind: "attn_head", layer: 8, unit: 3, token: " Paris", n_examples: 5, max_activation: 9.5 },
  { kind: "mlp_neuron", layer: 12, unit: 866, token: " paris", n_examples: 1, max_activation: 0.25 },
];
const HITS = [
  {
    window_id: 159, title: "Byzantine architecture", text: "architecture of the Eastern Roman Empire; the roman empire's east",
    nodes: [
      { window_id: 159, kind: "mlp_neuron", layer: 29, unit: 1479, activation: 56.99, position: 22 },
      { window_id: 159, kind: "attn_head", layer: 18, unit: 7, activation: 3.5, position: 4 },
    ],
  },
  { window_id: 273, title: null, text: "ROMAN EMPIRE and more.<|endoftext|>Next", nodes: [] },
];

/** The mock server with a dataset status and the explorer's two queries. */
function serve(status: object, extra?: Handler) {
  return mockServer((path, body) => {
    const o = extra?.(path, body);
    if (o) return o;
    if (path === "/api/dataset") return { status: 200, body: status };
    if (path === "/api/dataset/token") return { status: 200, body: TOKEN_ROWS };
    if (path === "/api/dataset/search") return { status: 200, body: HITS };
    return undefined;
  });
}

const at = (url: string) => window.history.replaceState(null, "", url);
const queries = (calls: { path: string; body: unknown }[]) => calls.filter((c) => c.path === "/api/dataset/token" || c.path === "/api/dataset/search");

beforeEach(() => at("/explore"));
afterEach(() => vi.unstubAllGlobals());

describe("ExplorePage", () => {
  it("runs the queries the URL names and fills the fields with them", async () => {
    at("/explore?token=+Paris&q=Roman+Empire");
    const calls = serve(DONE);
    render(<App />);
    await screen.findByTestId("token-nodes");
    await screen.findByTestId("search-hits");
    expect(calls.find((c) => c.path === "/api/dataset/token")?.body).toEqual({ token: " Paris", n: TOKEN_N });
    expect(calls.find((c) => c.path === "/api/dataset/search")?.body).toEqual({ text: "Roman Empire", n: SEARCH_N });
    expect(screen.getByTestId("token-form-input")).toHaveValue(" Paris");
    expect(screen.getByTestId("search-form-input")).toHaveValue("Roman Empire");
    expect(screen.getByTestId("nav-explore")).toHaveAttribute("aria-current", "page");
    expect(screen.queryByTestId("suggestions")).toBeNull();
  });

  it("sends #id as a token id", async () => {
    at("/explore?token=%237042");
    const calls = serve(DONE);
    render(<App />);
    await screen.findByTestId("token-nodes");
    expect(calls.find((c) => c.path === "/api/dataset/token")?.body).toEqual({ token: 7042, n: TOKEN_N });
    expect(screen.getByTestId("token-results")).toHaveTextContent("token id 7042");
  });

  it("lists the token's nodes with node-page links, sortable, and a click opens the node page", async () => {
    at("/explore?token=Paris");
    serve(DONE);
    render(<App />);
    const table = await screen.findByTestId("token-nodes");
    const labels = () => within(table).getAllByTestId("token-node").map((r) => r.dataset.label);
    await waitFor(() => expect(labels()).toEqual(["L2.N1475", "L8.H3", "L12.N866"])); // short labels once the kinds are known
    await waitFor(() => expect(within(table).getByRole("link", { name: "L8.H3" })).toHaveAttribute("href", "/node/TestModel/attn_head/8/3"));
    expect(within(table).getByRole("link", { name: "L2.N1475" })).toHaveAttribute("href", "/node/TestModel/mlp_neuron/2/1475");
    const row = within(table).getAllByTestId("token-node")[1]!;
    expect(row).toHaveTextContent("head");
    expect(row).toHaveTextContent("9.500");
    expect(screen.getByTestId("token-count")).toHaveTextContent("3 nodes");

    await userEvent.click(within(table).getByRole("columnheader", { name: /max act/ }));
    expect(labels()).toEqual(["L8.H3", "L2.N1475", "L12.N866"]);
    expect(within(table).getByRole("columnheader", { name: /max act/ })).toHaveAttribute("aria-sort", "descending");
    await userEvent.click(within(table).getByRole("columnheader", { name: /max act/ }));
    expect(labels()).toEqual(["L12.N866", "L2.N1475", "L8.H3"]);

    await userEvent.click(within(table).getByRole("link", { name: "L8.H3" }));
    expect(window.location.pathname).toBe("/node/TestModel/attn_head/8/3");
    expect(await screen.findByTestId("node-page")).toBeInTheDocument();
  });

  it("shows each window with the match highlighted, its title and its nodes as links", async () => {
    at("/explore?q=roman+empire");
    serve(DONE);
    render(<App />);
    const hits = await screen.findAllByTestId("search-hit");
    expect(hits).toHaveLength(2);
    const marks = hits[0]!.querySelectorAll("mark");
    expect([...marks].map((m) => m.textContent)).toEqual(["Roman Empire", "roman empire"]);
    expect(within(hits[0]!).getByTestId("hit-text")).toHaveTextContent("architecture of the Eastern Roman Empire; the roman empire's east");
    expect(hits[0]).toHaveTextContent("Byzantine architecture");
    expect([...hits[1]!.querySelectorAll("mark")].map((m) => m.textContent)).toEqual(["ROMAN EMPIRE"]);
    expect(hits[1]).toHaveTextContent("untitled document");
    expect(within(hits[1]!).getByTestId("hit-text")).toHaveTextContent("ROMAN EMPIRE and more.<|endoftext|>Next");
    expect(hits[1]!.querySelector(".hit-special")).toHaveTextContent("<|endoftext|>"); // dimmed, not dropped
    expect(hits[1]).toHaveTextContent("no node has this window among its top examples");
    await waitFor(() => expect(within(hits[0]!).getByRole("link", { name: /L29\.N1479/ })).toHaveAttribute("href", "/node/TestModel/mlp_neuron/29/1479"));
    const head = within(hits[0]!).getByRole("link", { name: /L18\.H7/ });
    expect(head).toHaveAttribute("href", "/node/TestModel/attn_head/18/7");
    expect(head).toHaveTextContent("3.50");
    expect(head).toHaveAttribute("title", expect.stringContaining("token 4 of the window"));
    expect(screen.getByTestId("attribution")).toHaveTextContent("CC BY-SA 4.0");
    expect(screen.getByTestId("explore-corpus")).toHaveTextContent("wiki · 99,981 tokens");
  });

  it("says when nothing matches", async () => {
    at("/explore?q=zzz&token=zzz");
    serve(DONE, (path) => (path === "/api/dataset/token" || path === "/api/dataset/search" ? { status: 200, body: [] } : undefined));
    render(<App />);
    expect(await screen.findByTestId("search-empty")).toHaveTextContent("No window");
    expect(await screen.findByTestId("token-empty")).toHaveTextContent("No node");
  });

  it("shows how to build a dataset when there is none, and asks nothing of it", async () => {
    at("/explore?q=Rome&token=the");
    const calls = serve({ status: "none", fraction: 0, tokens_done: 0, tokens_total: 0, corpus: null, attribution: null });
    render(<App />);
    const s = await screen.findByTestId("dataset-status");
    expect(s).toHaveTextContent("mechscope collate");
    expect(s).toHaveTextContent("mechscope demo");
    expect(s).toHaveAttribute("data-status", "none");
    expect(screen.queryByTestId("error")).toBeNull();
    expect(screen.queryByTestId("attribution")).toBeNull();
    expect(screen.queryByTestId("suggestions")).toBeNull();
    expect(queries(calls)).toEqual([]);
  });

  it("shows collation progress, polls and runs the URL's query when the dataset is done", async () => {
    at("/explore?q=Rome");
    let status: object = { ...DONE, status: "running", fraction: 0.4, tokens_done: 400, tokens_total: 1000, attribution: null };
    const calls = serve(DONE, (path) => (path === "/api/dataset" ? { status: 200, body: status } : undefined));
    render(<ExplorePageOnly pollMs={20} />);
    expect(await screen.findByRole("progressbar")).toHaveAttribute("aria-valuenow", "40");
    expect(screen.getByTestId("dataset-status")).toHaveTextContent("400 / 1,000 tokens");
    expect(queries(calls)).toEqual([]);
    status = DONE;
    await screen.findByTestId("search-hits");
    expect(screen.queryByRole("progressbar")).toBeNull();
    expect(queries(calls)).toHaveLength(1);
  });

  it("queries a running collation's preview, and again on a newer preview and when done", async () => {
    at("/explore?q=Rome");
    const running = { ...DONE, status: "running", fraction: 0.3, tokens_done: 300, tokens_total: 1000 };
    let status: object = { ...running, preview_tokens: 128 };
    const calls = serve(DONE, (path) => (path === "/api/dataset" ? { status: 200, body: status } : undefined));
    const searches = () => calls.filter((c) => c.path === "/api/dataset/search").length;
    render(<ExplorePageOnly pollMs={20} />);
    await screen.findByTestId("search-hits");
    expect(screen.getByTestId("dataset-status")).toHaveTextContent("come from the first 128 tokens");
    expect(screen.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "30");
    await new Promise((r) => setTimeout(r, 100)); // polls with the same preview ask nothing again
    expect(searches()).toBe(1);
    status = { ...running, fraction: 0.6, tokens_done: 600, preview_tokens: 512 };
    await waitFor(() => expect(searches()).toBe(2));
    await waitFor(() => expect(screen.getByTestId("dataset-status")).toHaveTextContent("first 512 tokens"));
    status = DONE;
    await waitFor(() => expect(searches()).toBe(3));
    await waitFor(() => expect(screen.queryByTestId("dataset-status")).toBeNull());
    expect(screen.getByTestId("search-hits")).toBeInTheDocument();
  });

  it("shows the server's 422 in an error box naming the field", async () => {
    at("/explore?q=" + "x".repeat(201));
    serve(DONE, (path) =>
      path === "/api/dataset/search" ? { status: 422, body: { error: "text: String should have at most 200 characters", field: "text" } } : undefined,
    );
    render(<App />);
    const err = await screen.findByTestId("error");
    expect(err).toHaveTextContent("Request refused");
    expect(err).toHaveTextContent("HTTP 422");
    expect(err).toHaveTextContent("at most 200 characters");
    expect(err.querySelector(".error-field code")).toHaveTextContent("text");
    expect(within(screen.getByTestId("search-results")).queryByTestId("search-hits")).toBeNull();
  });

  it("shows a 422 of the token query (no dataset yet on the server's side)", async () => {
    at("/explore?token=the");
    serve(DONE, (path) =>
      path === "/api/dataset/token" ? { status: 422, body: { error: "no collated dataset yet (missing); see GET /api/dataset", field: "dataset" } } : undefined,
    );
    render(<App />);
    const err = await within(await screen.findByTestId("token-results")).findByTestId("error");
    expect(err).toHaveTextContent("no collated dataset yet");
    expect(err.querySelector(".error-field code")).toHaveTextContent("dataset");
  });

  it("puts a submitted query in the URL; suggestions and back/forward run theirs", async () => {
    const calls = serve(DONE);
    render(<App />);
    const suggestions = await screen.findByTestId("suggestions");
    expect(within(suggestions).getAllByTestId("suggest-token").map((b) => b.textContent)).toEqual(["·the", "·Paris", "·war"]);

    await userEvent.type(screen.getByTestId("token-form-input"), " Paris{Enter}");
    expect(new URLSearchParams(window.location.search).get("token")).toBe(" Paris");
    await screen.findByTestId("token-nodes");
    expect(calls.filter((c) => c.path === "/api/dataset/token").at(-1)?.body).toEqual({ token: " Paris", n: TOKEN_N });

    await userEvent.type(screen.getByTestId("search-form-input"), "roman");
    await userEvent.click(screen.getByTestId("search-form-submit"));
    expect(window.location.search).toBe("?token=+Paris&q=roman");
    await screen.findByTestId("search-hits");
    expect(calls.filter((c) => c.path === "/api/dataset/search").at(-1)?.body).toEqual({ text: "roman", n: SEARCH_N });

    await userEvent.clear(screen.getByTestId("token-form-input"));
    await userEvent.type(screen.getByTestId("token-form-input"), "{Enter}");
    expect(window.location.search).toBe("?q=roman");
    expect(screen.queryByTestId("token-results")).toBeNull();

    window.history.back();
    await waitFor(() => expect(window.location.search).toBe("?token=+Paris&q=roman"));
    await waitFor(() => expect(screen.getByTestId("token-form-input")).toHaveValue(" Paris"));
  });

  it("runs a suggestion when clicked", async () => {
    const calls = serve(DONE);
    render(<App />);
    const suggestions = await screen.findByTestId("suggestions");
    await userEvent.click(within(suggestions).getByRole("button", { name: "Roman Empire" }));
    expect(new URLSearchParams(window.location.search).get("q")).toBe("Roman Empire");
    await screen.findByTestId("search-hits");
    expect(calls.filter((c) => c.path === "/api/dataset/search").at(-1)?.body).toEqual({ text: "Roman Empire", n: SEARCH_N });
    expect(screen.getByTestId("search-form-input")).toHaveValue("Roman Empire");
  });

  it("focuses the search field on /, but not while typing in a field", async () => {
    serve(DONE);
    render(<App />);
    await screen.findByTestId("suggestions");
    const searchField = screen.getByTestId("search-form-input");
    const tokenField = screen.getByTestId("token-form-input");
    expect(searchField).not.toHaveFocus();
    await userEvent.keyboard("/");
    expect(searchField).toHaveFocus();
    expect(searchField).toHaveValue("");
    await userEvent.click(tokenField);
    await userEvent.keyboard("a/b");
    expect(tokenField).toHaveFocus();
    expect(tokenField).toHaveValue("a/b");
  });
});

/** The page alone, with a short poll (App renders it with the default). */
function ExplorePageOnly({ pollMs }: { pollMs: number }) {
  const { search } = useLocation();
  return <ExplorePage search={search} pollMs={pollMs} />;
}
