import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { MODEL, mockServer } from "../test/mockServer";

const CLEAN = "When Mary and John went to the store, John gave a drink to";
const CORRUPT = "When Mary and John went to the store, Mary gave a drink to";
const TOKENS = CLEAN.split(/(?= )/); // the mock tokenizer's split: 13 tokens

const result = (method: string, rows: string[], columns: string[], at: (r: number, c: number) => number) => ({
  site: "heads", method, rows, columns, values: rows.map((_, r) => columns.map((_, c) => at(r, c))), clean_value: 6, corrupted_value: -5,
});
const layers = Array.from({ length: MODEL.n_layers }, (_, l) => `L${l}`);
const heads = Array.from({ length: MODEL.n_heads }, (_, h) => `H${h}`);
const COMPARE = {
  site: "heads", kind: "attn_head", correlation: 0.9512, skipped: null,
  activation: result("activation", layers, heads, (r, c) => (r === 23 && c === 3 ? 0.58 : 0)),
  attribution: result("attribution", layers, heads, (r, c) => (r === 23 && c === 3 ? 0.41 : r === 2 ? -0.1 : 0)),
};
const SKIPPED = {
  site: "resid_pre", kind: null, correlation: null, activation: null, skipped: "activation patching not run: site: … (max_request_tokens)",
  attribution: { ...result("attribution", layers, TOKENS, (_r, c) => (c === 9 ? 0.9 : 0)), site: "resid_pre" },
};

const q = () => new URLSearchParams(window.location.search);
const url = (site: string) => `/patching?${new URLSearchParams({ clean: CLEAN, corrupted: CORRUPT, target: " Mary", distractor: " John", site })}`;

beforeEach(() => window.history.replaceState(null, "", url("heads")));
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("Patching page", () => {
  it("draws both methods from the URL; hover shows both values, a head's cell opens its node page", async () => {
    const calls = mockServer((path) => (path === "/api/patch/compare" ? { status: 200, body: COMPARE } : path === "/api/patch/templates" ? { status: 200, body: { store: "When {A} and {B} went to the store, {S} gave a drink to" } } : undefined));
    render(<App />);
    await waitFor(() => screen.getByTestId("patch-results"));
    expect(calls.find((c) => c.path === "/api/patch/compare")?.body).toEqual({ clean: CLEAN, corrupted: CORRUPT, targets: [" Mary"], distractors: [" John"], site: "heads" });
    expect(screen.getByTestId("nav-patching")).toHaveAttribute("aria-current", "page");
    expect(screen.getByTestId("patch-correlation")).toHaveTextContent("0.951");
    for (const m of ["activation", "attribution"])
      expect(document.querySelectorAll(`[data-testid="patch-map-${m}"] rect[data-row]`)).toHaveLength(MODEL.n_layers * MODEL.n_heads);
    await waitFor(() => expect(screen.getByTestId("patch-clean-count")).toHaveTextContent(`${TOKENS.length} tokens`));
    const cell = document.querySelector('[data-testid="patch-map-activation"] rect[data-row="23"][data-col="3"]')!;
    // the diverging scale: the largest |value| of either grid is the full colour, 0 is white
    expect(cell.getAttribute("fill")).not.toBe("rgb(255, 255, 255)");
    expect(document.querySelector('[data-testid="patch-map-activation"] rect[data-row="0"][data-col="0"]')!.getAttribute("fill")).toBe("rgb(255, 255, 255)");
    fireEvent.mouseEnter(cell);
    expect(screen.getByTestId("patch-hover")).toHaveTextContent("L23 · H3: activation 0.580, attribution 0.410");
    fireEvent.click(cell);
    expect(window.location.pathname).toBe("/node/TestModel/attn_head/23/3");
    expect(q().get("prompt")).toBe(CLEAN);
    expect(q().get("token")).toBe(String(TOKENS.length - 1));
  });

  it("an exact sweep over budget: the estimate alone with the reason; a layer cell opens the Debugger", async () => {
    window.history.replaceState(null, "", url("resid_pre"));
    mockServer((path) => (path === "/api/patch/compare" ? { status: 200, body: SKIPPED } : path === "/api/patch/templates" ? { status: 200, body: {} } : undefined));
    render(<App />);
    await waitFor(() => screen.getByTestId("patch-skipped"));
    expect(screen.getByTestId("patch-skipped")).toHaveTextContent("max_request_tokens");
    expect(screen.queryByTestId("patch-map-activation")).toBeNull();
    expect(screen.getByTestId("patch-correlation")).toHaveTextContent("no exact grid");
    fireEvent.click(document.querySelector('[data-testid="patch-map-attribution"] rect[data-row="4"][data-col="9"]')!);
    expect(window.location.pathname).toBe("/");
    expect(q().get("prompt")).toBe(CLEAN);
    expect(q().getAll("target")).toEqual([" Mary"]);
    expect(q().getAll("distractor")).toEqual([" John"]);
  });

  it("flags prompts of different lengths and builds a pair into the URL", async () => {
    const PAIR = { clean: CLEAN, corrupted: CORRUPT, targets: [" Ann"], distractors: [" Bob"], clean_tokens: TOKENS, corrupted_tokens: TOKENS, changed: [9] };
    window.history.replaceState(null, "", "/patching");
    const calls = mockServer((path) => (path === "/api/patch/pair" ? { status: 200, body: PAIR } : path === "/api/patch/templates" ? { status: 200, body: {} } : path === "/api/patch/compare" ? { status: 200, body: COMPARE } : undefined));
    render(<App />);
    fireEvent.change(screen.getByTestId("patch-clean"), { target: { value: "a b c" } });
    fireEvent.change(screen.getByTestId("patch-corrupted"), { target: { value: "a b c d" } });
    fireEvent.change(screen.getByTestId("patch-target"), { target: { value: " c" } });
    await waitFor(() => screen.getByTestId("patch-mismatch"));
    expect(screen.getByTestId("patch-run")).toBeDisabled();
    fireEvent.change(screen.getByTestId("pair-io"), { target: { value: "Ann" } });
    fireEvent.change(screen.getByTestId("pair-subject"), { target: { value: "Bob" } });
    fireEvent.click(screen.getByTestId("pair-build"));
    await waitFor(() => expect(q().get("clean")).toBe(CLEAN));
    expect(calls.find((c) => c.path === "/api/patch/pair")?.body).toMatchObject({ kind: "ioi", io: "Ann", subject: "Bob", corruption: "swap" });
    expect(q().get("io")).toBe("Ann");
    expect(q().getAll("target")).toEqual([" Ann"]);
    await waitFor(() => screen.getByTestId("patch-results"));
  });
});
