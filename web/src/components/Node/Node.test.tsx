import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { mockServer } from "../../test/mockServer";

const EMPTY = { status: { status: "none" }, stats: null, top: [], random: [], quantile: [] };
const tv = (id: number, token: string, value: number) => ({ id, token, value });
const TOKENS = { promoted: [tv(1, " risk", 2.5), tv(2, " risks", 1.5)], suppressed: [tv(3, " safe", -2)], drivers: [tv(4, " danger", 3)] };
const detail = (prompt: string, token: number, kind = "mlp_neuron") => {
  const toks = prompt.split(/(?= )/);
  return {
    label: "x",
    activations: { node: { kind, layer: 3, index: 7, token }, tokens: toks, values: toks.map((_, i) => i / 2), pattern: kind === "attn_head" ? toks.slice(0, token + 1).map(() => 1 / (token + 1)) : null },
    tokens: TOKENS,
  };
};

function server() {
  return mockServer((path, body) => {
    if (path === "/api/dataset/node") return { status: 200, body: EMPTY };
    if (path === "/api/node/tokens") return { status: 200, body: TOKENS };
    if (path === "/api/node") {
      const b = body as { prompt: string; node: { token: number; kind: string } };
      return { status: 200, body: detail(b.prompt, b.node.token, b.node.kind) };
    }
    return undefined;
  });
}

const at = (url: string) => window.history.replaceState(null, "", url);
const here = () => window.location.pathname + window.location.search;

afterEach(() => vi.unstubAllGlobals());

describe("node page without a prompt", () => {
  it("shows a neuron's promoted, suppressed and driving tokens from the weights", async () => {
    at("/node/TestModel/mlp_neuron/3/7");
    const calls = server();
    render(<App />);
    const box = await screen.findByTestId("weight-tokens");
    await waitFor(() => expect(within(box).getByTestId("promoted")).toHaveTextContent("risk"));
    expect(within(box).getByTestId("suppressed")).toHaveTextContent("safe");
    expect(within(box).getByTestId("drivers")).toHaveTextContent("danger");
    expect(calls.find((c) => c.path === "/api/node/tokens")?.body).toEqual({ kind: "mlp_neuron", layer: 3, index: 7, k: 10 });
    expect(calls.some((c) => c.path === "/api/node")).toBe(false);
    expect(screen.getByRole("heading", { level: 2 })).toHaveTextContent(/^L3\.mlp_neuron\.7 MLP neuron$/);
  });

  it("says why a head's output tokens need a prompt, and asks for none", async () => {
    at("/node/TestModel/attn_head/3/7");
    const calls = server();
    render(<App />);
    expect(await screen.findByTestId("head-tokens-note")).toHaveTextContent("depends on its input");
    // no dataset on this server: one quiet line, and nothing asked of the dataset or the explanations
    expect(await screen.findByTestId("dataset-needed")).toHaveTextContent("serve --dataset DIR");
    expect(calls.some((c) => c.path === "/api/node/tokens" || c.path === "/api/node")).toBe(false);
    expect(calls.some((c) => c.path.startsWith("/api/dataset/") || c.path.startsWith("/api/explanations/"))).toBe(false);
  });

  it("names both models when the link is for another one, and links to the served one", async () => {
    at("/node/TestModel.Q8_0/mlp_neuron/3/7?prompt=a&token=0");
    const calls = server();
    render(<App />);
    const alert = await screen.findByTestId("wrong-model");
    expect(alert).toHaveTextContent("TestModel.Q8_0");
    expect(alert).toHaveTextContent("this server serves TestModel");
    expect(calls.some((c) => c.path.startsWith("/api/node") || c.path.startsWith("/api/dataset"))).toBe(false);
    await userEvent.click(within(alert).getByRole("link"));
    expect(here()).toBe("/node/TestModel/mlp_neuron/3/7?prompt=a&token=0");
    await screen.findByTestId("weight-tokens");
  });
});

describe("the prompt form", () => {
  it("runs the node at the last token, keeps j/k typed in the field, moves on a click", async () => {
    at("/node/TestModel/mlp_neuron/3/7");
    const calls = server();
    render(<App />);
    await screen.findByText("neuron 8 →");
    const input = screen.getByTestId("prompt-input");
    await userEvent.type(input, "the jolly risk");
    expect(here()).toBe("/node/TestModel/mlp_neuron/3/7"); // j, k, l typed in the field are text, not shortcuts
    expect(input).toHaveValue("the jolly risk");
    await userEvent.keyboard("{Enter}");
    // the mock tokeniser splits before spaces: "the", " jolly", " risk" -> the last token is 2
    await waitFor(() => expect(here()).toBe("/node/TestModel/mlp_neuron/3/7?prompt=the+jolly+risk&token=2"));
    const row = await screen.findByTestId("node-activations");
    expect(calls.find((c) => c.path === "/api/node")?.body).toEqual({ prompt: "the jolly risk", node: { kind: "mlp_neuron", layer: 3, index: 7, token: 2, key: null }, k: 10 });
    expect(within(row).getByRole("button", { pressed: true })).toHaveAttribute("data-position", "2");
    // A neuron's tokens are in its weights: shown once, not again for the prompt.
    expect(screen.queryByTestId("prompt-tokens-out")).toBeNull();
    await userEvent.click(within(row).getAllByRole("button")[1]!);
    expect(here()).toBe("/node/TestModel/mlp_neuron/3/7?prompt=the+jolly+risk&token=1");
    await waitFor(() => expect(calls.filter((c) => c.path === "/api/node")).toHaveLength(2));
    // The node's prompt opens in the Debugger and in the prompt explorer at the node's token.
    expect(screen.getByTestId("open-in-explorer")).toHaveAttribute("href", "/prompt?prompt=the+jolly+risk&pos=1");
    expect(screen.getByTestId("open-in-debugger")).toHaveAttribute("href", "/?prompt=the+jolly+risk");
    await userEvent.click(screen.getByTestId("prompt-clear"));
    expect(here()).toBe("/node/TestModel/mlp_neuron/3/7");
    expect(screen.queryByTestId("on-prompt")).toBeNull();
  });

  it("shows a head's tokens at the chosen query token of the prompt", async () => {
    at("/node/attn_head/3/7?prompt=a+b+c&token=1");
    server();
    render(<App />);
    const out = await screen.findByTestId("prompt-tokens-out");
    expect(out).toHaveTextContent("What the head writes at token 1");
    expect(within(out).getByTestId("promoted")).toHaveTextContent("risk");
    expect(screen.queryByTestId("head-tokens-note")).toBeNull();
    expect(screen.getByTestId("prompt-input")).toHaveValue("a b c");
  });
});
