import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mockServer } from "../../test/mockServer";
import { ExampleList } from "./ExampleList";
import { HeadPattern } from "./HeadPattern";

const TOKENS = ["<bos>", " the", " risk", " of", " it"];
/** Row q of a 5-token window: query 3 attends mostly to key 1; the start token takes the rest. */
const row = (q: number) => Array.from({ length: q + 1 }, (_, k) => (q === 3 ? [0.2, 0.7, 0.05, 0.05][k]! : k === 0 ? 1 : 0));
const pattern = TOKENS.map((_, q) => row(q));
const write = pattern.map((r) => r.map((p, k) => p * [0.1, 2, 1, 1, 1][k]!));
const PATTERN = {
  window_id: 4, tokens: TOKENS, query: 3, key: 1, activation: [0.1, 0.5, 0.4, 1.8, 0.2], pattern, write,
  output: { promoted: [{ id: 9, token: " danger", value: 1.2 }], suppressed: [{ id: 8, token: " safe", value: -0.7 }], drivers: null },
};

afterEach(() => vi.unstubAllGlobals());

function server() {
  return mockServer((path, body) => {
    if (path !== "/api/dataset/pattern") return undefined;
    const q = (body as { query?: number }).query ?? 3;
    return { status: 200, body: { ...PATTERN, query: q, key: q === 3 ? 1 : 0 } };
  });
}

describe("a head's from/to view", () => {
  it("draws the lower triangle, marks the peak query and its strongest key, and lists the query's output tokens", async () => {
    const calls = server();
    render(<HeadPattern layer={2} head={5} windowId={4} query={3} />);
    const svg = await screen.findByTestId("pattern-svg");
    expect(calls.find((c) => c.path === "/api/dataset/pattern")?.body).toEqual({ layer: 2, head: 5, window_id: 4, query: 3 });
    const cells = svg.querySelectorAll("rect[data-q]");
    expect(cells).toHaveLength((5 * 6) / 2); // keys 0..q of every query q
    const q = screen.getByTestId("pattern-query");
    const k = screen.getByTestId("pattern-key");
    const cell = Number(q.getAttribute("height"));
    const cellAt = (qq: number, kk: number) => svg.querySelector(`rect[data-q="${qq}"][data-k="${kk}"]`)!;
    expect(q.getAttribute("y")).toBe(cellAt(3, 0).getAttribute("y"));
    expect(Number(q.getAttribute("width"))).toBe(4 * cell);
    expect(k.getAttribute("x")).toBe(cellAt(3, 1).getAttribute("x"));
    // The scale leaves out the start-token column: 0.7 is the darkest cell, the start token saturates.
    expect(cellAt(3, 1)).toHaveAttribute("fill", "rgb(70, 122, 238)");
    expect(cellAt(0, 0)).toHaveAttribute("fill", "rgb(70, 122, 238)");
    expect(cellAt(3, 2).getAttribute("fill")).not.toBe(cellAt(3, 1).getAttribute("fill"));
    expect(cellAt(3, 1).querySelector("title")).toHaveTextContent(/query 3 " of" → key 1 " the"\s*attention p\[q,k\] 70\.0%\s*pair write .* 1\.400/);
    expect(screen.getByTestId("pattern-output")).toHaveTextContent("danger");
    expect(screen.getByText(/What the head writes at query 3/)).toBeInTheDocument();
  });

  it("switches the colour to the pair write and moves the marked query on a click", async () => {
    const calls = server();
    render(<HeadPattern layer={2} head={5} windowId={4} query={3} />);
    const svg = await screen.findByTestId("pattern-svg");
    const fill = () => svg.querySelector('rect[data-q="3"][data-k="2"]')!.getAttribute("fill");
    const before = fill();
    await userEvent.click(screen.getByRole("button", { name: /pair write/ }));
    expect(screen.getByRole("button", { name: /pair write/ })).toHaveAttribute("aria-pressed", "true");
    expect(fill()).not.toBe(before); // p 0.05 on a 0.7 scale, then write 0.05 on a 1.4 scale
    await userEvent.click(svg.querySelector('rect[data-q="4"][data-k="0"]')!);
    await waitFor(() => expect(calls.filter((c) => c.path === "/api/dataset/pattern")).toHaveLength(2));
    expect(calls.at(-1)?.body).toEqual({ layer: 2, head: 5, window_id: 4, query: 4 });
    await waitFor(() => expect(screen.getByTestId("pattern-query").getAttribute("y")).toBe(svg.querySelector('rect[data-q="4"][data-k="0"]')!.getAttribute("y")));
  });

  it("is offered on a head's examples only, and opens on the example's window and peak", async () => {
    const calls = server();
    const e = { window_id: 4, activation: 1.8, position: 3, key_position: 1, title: "Doc", tokens: TOKENS, acts: [0.1, 0.5, 0.4, 1.8, 0.2], quantile_lo: null, quantile_hi: null };
    const { rerender } = render(<ExampleList examples={[e]} max={2} testId="top-examples" head={null} />);
    expect(screen.queryByTestId("pattern-toggle")).toBeNull();
    rerender(<ExampleList examples={[e]} max={2} testId="top-examples" head={{ layer: 2, head: 5 }} />);
    const toggle = screen.getByTestId("pattern-toggle");
    expect(toggle).toHaveAttribute("aria-expanded", "false");
    await userEvent.click(toggle);
    const view = await screen.findByTestId("head-pattern");
    await within(view).findByTestId("pattern-svg");
    expect(calls.find((c) => c.path === "/api/dataset/pattern")?.body).toEqual({ layer: 2, head: 5, window_id: 4, query: 3 });
    await userEvent.click(toggle);
    expect(screen.queryByTestId("head-pattern")).toBeNull();
  });
});
