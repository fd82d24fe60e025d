import { describe, expect, it } from "vitest";
import { currentPos, defaultGridKind, EMPTY_PROMPT_STATE, gridKinds, parsePromptState, parseUnit, promptHref } from "./promptState";

describe("prompt explorer URL state", () => {
  it("round-trips every part", () => {
    const s = { prompt: "The cat & the hat?", pos: 3, kind: "attn_head", unit: { layer: 7, index: 12 }, q: "Roman", shared: true };
    const href = promptHref(s);
    expect(href.startsWith("/prompt?")).toBe(true);
    expect(parsePromptState(href.slice("/prompt".length))).toEqual(s);
  });

  it("leaves defaults out and reads the links other pages write", () => {
    expect(promptHref(EMPTY_PROMPT_STATE)).toBe("/prompt");
    expect(parsePromptState("?prompt=Hello+world&pos=2")).toEqual({ ...EMPTY_PROMPT_STATE, prompt: "Hello world", pos: 2 });
  });

  it("drops malformed parts instead of failing", () => {
    const s = parsePromptState("?pos=-1&kind=Bad-Kind&unit=3.x&scale=other");
    expect(s).toEqual(EMPTY_PROMPT_STATE);
    expect(parsePromptState("?pos=1e3").pos).toBeNull();
  });

  it("reads units with and without a layer", () => {
    expect(parseUnit("3.17")).toEqual({ layer: 3, index: 17 });
    expect(parseUnit("-.17")).toEqual({ layer: null, index: 17 });
    expect(parseUnit("17")).toBeNull();
    expect(promptHref({ ...EMPTY_PROMPT_STATE, unit: { layer: null, index: 4 } })).toBe("/prompt?unit=-.4");
  });

  it("clamps the position to the prompt, the last token by default", () => {
    expect(currentPos(null, 5)).toBe(4);
    expect(currentPos(9, 5)).toBe(4);
    expect(currentPos(2, 5)).toBe(2);
    expect(currentPos(null, 0)).toBe(0);
  });
});

describe("the grid's kinds", () => {
  const kinds = [
    { name: "emb", layered: false, size: null },
    { name: "lat", layered: false, size: 64 },
    { name: "neu", layered: true, size: 48 },
    { name: "out", layered: true, size: null },
  ];
  it("offers kinds with units and picks the first layered one", () => {
    expect(gridKinds(kinds).map((k) => k.name)).toEqual(["lat", "neu"]);
    expect(defaultGridKind(kinds)).toBe("neu");
    expect(defaultGridKind(kinds.slice(0, 2))).toBe("lat");
    expect(defaultGridKind([])).toBeNull();
  });
});
