import { fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { ExampleList, type Example } from "../Dataset/ExampleList";
import { SearchHits } from "../Explore/SearchHits";
import type { SearchHit } from "../Explore/explore";
import { debuggerPromptHref, explorerPromptHref, PromptLinks } from "./PromptLinks";

afterEach(() => window.history.replaceState(null, "", "/"));

const PROMPT = "a & b?\n<c> #1";

describe("PromptLinks", () => {
  it("links the prompt to the Debugger and to the prompt explorer at its position, encoded", () => {
    render(<PromptLinks prompt={PROMPT} pos={3} />);
    const dbg = screen.getByTestId("open-in-debugger").getAttribute("href")!;
    const exp = screen.getByTestId("open-in-explorer").getAttribute("href")!;
    expect(dbg).toBe(debuggerPromptHref(PROMPT));
    expect(dbg.startsWith("/?")).toBe(true);
    expect(new URLSearchParams(dbg.slice(2)).get("prompt")).toBe(PROMPT);
    expect(exp.startsWith("/prompt?")).toBe(true);
    const q = new URLSearchParams(exp.slice("/prompt?".length));
    expect(q.get("prompt")).toBe(PROMPT);
    expect(q.get("pos")).toBe("3");
    expect(screen.getByTestId("open-in-explorer")).toHaveAttribute("title", expect.stringContaining("at token 3"));
  });

  it("leaves the position out when unknown, takes a richer Debugger link, and shows nothing for no prompt", () => {
    const { rerender } = render(<PromptLinks prompt="hi" debuggerHref="/?prompt=hi&target=+x" debuggerTestId="dbg" />);
    expect(screen.getByTestId("dbg")).toHaveAttribute("href", "/?prompt=hi&target=+x");
    expect(screen.getByTestId("open-in-explorer")).toHaveAttribute("href", "/prompt?prompt=hi");
    expect(explorerPromptHref("hi", 0)).toBe("/prompt?prompt=hi&pos=0"); // position 0 is a position
    rerender(<PromptLinks prompt="" pos={2} />);
    expect(screen.queryByTestId("prompt-links")).toBeNull();
  });

  it("navigates in the app on a click", () => {
    render(<PromptLinks prompt="x y" pos={1} />);
    fireEvent.click(screen.getByTestId("open-in-explorer"));
    expect(window.location.pathname + window.location.search).toBe("/prompt?prompt=x+y&pos=1");
  });
});

describe("where prompts are shown", () => {
  it("a dataset example opens its window at its peak token", () => {
    const e: Example = {
      window_id: 4, activation: 2, position: 2, key_position: null, title: "Doc", quantile_lo: null, quantile_hi: null,
      tokens: ["The", " risk", " of", "\n"], acts: [0, 1, 2, 0],
    } as Example;
    render(<ExampleList examples={[e, { ...e, window_id: 5, position: 0 }]} max={2} testId="ex" />);
    const [first, second] = screen.getAllByTestId("example");
    const href = within(first!).getByTestId("open-in-explorer").getAttribute("href")!;
    const q = new URLSearchParams(href.slice("/prompt?".length));
    expect([q.get("prompt"), q.get("pos")]).toEqual(["The risk of\n", "2"]);
    expect(within(second!).getByTestId("open-in-explorer").getAttribute("href")).toContain("pos=0");
    const dbg = within(first!).getByTestId("open-in-debugger").getAttribute("href")!;
    expect(new URLSearchParams(dbg.slice(2)).get("prompt")).toBe("The risk of\n");
  });

  it("a search hit opens its window's text (no position: the match is not a token)", () => {
    const hit = { window_id: 9, title: "Paris", text: "The capital of France is Paris.", nodes: [] } as unknown as SearchHit;
    render(<SearchHits hits={[hit]} query="Paris" model={null} />);
    const links = within(screen.getByTestId("search-hit")).getByTestId("prompt-links");
    expect(within(links).getByTestId("open-in-explorer")).toHaveAttribute("href", "/prompt?prompt=The+capital+of+France+is+Paris.");
    expect(within(links).getByTestId("open-in-debugger")).toHaveAttribute("href", "/?prompt=The+capital+of+France+is+Paris.");
  });
});
