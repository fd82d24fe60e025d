import { describe, expect, it } from "vitest";
import { categorical, continuous, decodeMapsState, mapsHref, matches, ramp } from "./mapsState";

describe("maps URL state", () => {
  it("round-trips tab, colour, search and view", () => {
    const s = { tab: "prompts" as const, color: "order" as const, q: "fox & dog", view: { x0: -1, y0: -2, x1: 3, y1: 4 } };
    expect(decodeMapsState(mapsHref(s).slice("/maps".length))).toEqual(s);
  });

  it("defaults to the units map by layer and drops a colour the tab has not", () => {
    expect(decodeMapsState("")).toEqual({ tab: "units", color: "layer", q: "", view: null });
    expect(decodeMapsState("?tab=prompts&color=layer").color).toBe("document");
    expect(decodeMapsState("?tab=units&color=score&view=1,2").view).toBeNull();
  });
});

describe("colours and search", () => {
  it("puts continuous values in shades, nulls apart", () => {
    const p = continuous([0, 5, 10, null], 0, 10, "L0", "L10");
    expect(Array.from(p.index)).toEqual([0, 12, 23, 24]);
    expect(p.colors[0]).toBe(ramp(0));
    expect(p.legend.map((l) => l.label)).toEqual(["L0", "L10", "none"]);
  });

  it("colours categories and labels the legend", () => {
    const p = categorical([1, 0, 1], ["heads", "neurons"]);
    expect(Array.from(p.index)).toEqual([1, 0, 1]);
    expect(p.legend).toEqual([{ label: "heads", color: p.colors[0] }, { label: "neurons", color: p.colors[1] }]);
  });

  it("matches case-insensitively over any of a point's texts", () => {
    const texts = [["L1.N3", "The word FOX"], ["L2.H1", null], ["L3.N9", "dogs"]];
    expect(Array.from(matches(3, " fox", (i) => texts[i]!)!)).toEqual([1, 0, 0]);
    expect(Array.from(matches(3, "l2.h", (i) => texts[i]!)!)).toEqual([0, 1, 0]);
    expect(matches(3, "  ", (i) => texts[i]!)).toBeNull();
  });
});
