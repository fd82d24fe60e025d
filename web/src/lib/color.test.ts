import { describe, expect, it } from "vitest";
import { divergingColor, maxAbs } from "./color";

describe("diverging colour scale", () => {
  it("is white at zero, blue for positive, red for negative", () => {
    expect(divergingColor(0, 1)).toBe("rgb(255, 255, 255)");
    const [r, g, b] = divergingColor(1, 1).match(/\d+/g)!.map(Number);
    expect(b).toBeGreaterThan(r!);
    expect(b).toBeGreaterThan(g!);
    const [r2, g2, b2] = divergingColor(-1, 1).match(/\d+/g)!.map(Number);
    expect(r2).toBeGreaterThan(g2!);
    expect(r2).toBeGreaterThan(b2!);
  });

  it("scales by the max |value| and clamps", () => {
    expect(divergingColor(2, 4)).toBe(divergingColor(0.5, 1));
    expect(divergingColor(10, 1)).toBe(divergingColor(1, 1));
    expect(divergingColor(0.1, 1)).not.toBe(divergingColor(0.9, 1));
    expect(divergingColor(1, 0)).toBe("rgb(255, 255, 255)");
    expect(divergingColor(null, 1)).toBe("rgb(255, 255, 255)");
  });

  it("finds the max |value| ignoring nulls", () => {
    expect(maxAbs([1, -3, null, 2, undefined, NaN])).toBe(3);
    expect(maxAbs([])).toBe(0);
  });
});
