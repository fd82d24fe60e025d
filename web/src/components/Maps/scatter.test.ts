import { describe, expect, it } from "vitest";
import { buildGrid, fitBox, formatBox, nearest, panBy, parseBox, toData, toScreen, transformOf, visibleBox, zoomAt } from "./scatter";

const size = { width: 400, height: 200 };

describe("transform", () => {
  it("fits the box inside the canvas, centred, one scale", () => {
    const box = { x0: 0, y0: 0, x1: 10, y1: 10 };
    const t = transformOf(box, size);
    expect(t.s).toBe(20); // the height binds
    expect(toScreen(t, 5, 5)).toEqual([200, 100]);
    expect(toScreen(t, 0, 0)).toEqual([100, 0]);
    expect(toData(t, 300, 200)).toEqual([10, 10]);
    expect(visibleBox(box, size)).toEqual({ x0: -5, y0: 0, x1: 15, y1: 10 });
  });

  it("zooms around the cursor: the point under it stays put", () => {
    const box = { x0: 0, y0: 0, x1: 10, y1: 10 };
    const before = toData(transformOf(box, size), 130, 40);
    const z = zoomAt(box, size, 130, 40, 2);
    const t = transformOf(z, size);
    const after = toData(t, 130, 40);
    expect(after[0]).toBeCloseTo(before[0], 9);
    expect(after[1]).toBeCloseTo(before[1], 9);
    expect(t.s).toBeCloseTo(40, 9); // twice the scale
    const back = zoomAt(z, size, 130, 40, 0.5);
    expect(transformOf(back, size).s).toBeCloseTo(20, 9);
    expect(toData(transformOf(back, size), 0, 0)[0]).toBeCloseTo(-5, 9);
  });

  it("pans with the pointer", () => {
    const box = { x0: 0, y0: 0, x1: 10, y1: 10 };
    const moved = panBy(box, size, 40, -20); // 2 and -1 data units at scale 20
    expect(moved).toEqual({ x0: -7, y0: 1, x1: 13, y1: 11 });
    const t = transformOf(moved, size);
    expect(toScreen(t, 5, 5)).toEqual([240, 80]);
  });

  it("fits the points with padding and survives an empty set", () => {
    expect(fitBox([0, 10], [0, 5], 0.1)).toEqual({ x0: -1, y0: -0.5, x1: 11, y1: 5.5 });
    expect(fitBox([], [])).toEqual({ x0: -1, y0: -1, x1: 1, y1: 1 });
  });

  it("round-trips a view box through the URL and refuses bad ones", () => {
    expect(parseBox(formatBox({ x0: -1.2345649, y0: 2, x1: 3.5, y1: 4 }))).toEqual({ x0: -1.23456, y0: 2, x1: 3.5, y1: 4 });
    for (const bad of [null, "", "1,2,3", "1,2,0,4", "a,b,c,d"]) expect(parseBox(bad)).toBeNull();
  });
});

describe("grid hit-testing", () => {
  function brute(xs: number[], ys: number[], x: number, y: number, r: number, accept?: (i: number) => boolean): number {
    let best = -1, bd = r * r;
    xs.forEach((px, i) => {
      const d = (px - x) ** 2 + (ys[i]! - y) ** 2;
      if (d <= bd && (best < 0 || d < bd) && (!accept || accept(i))) {
        best = i;
        bd = d;
      }
    });
    return best;
  }

  it("finds the nearest point within the radius, as a full scan does", () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const xs = Array.from({ length: 3000 }, () => rand() * 100 - 50);
    const ys = Array.from({ length: 3000 }, () => rand() * 30);
    const g = buildGrid(xs, ys);
    expect(g.order.length).toBe(3000);
    const even = (i: number) => i % 2 === 0;
    for (let q = 0; q < 300; q++) {
      const x = rand() * 120 - 60, y = rand() * 40 - 5, r = rand() * 3;
      expect(nearest(g, x, y, r)).toBe(brute(xs, ys, x, y, r));
      expect(nearest(g, x, y, r, even)).toBe(brute(xs, ys, x, y, r, even));
    }
  });

  it("handles one point, repeated points and nothing near", () => {
    const g = buildGrid([1, 1, 1], [2, 2, 2]);
    expect(nearest(g, 1, 2, 0.1)).toBe(0);
    expect(nearest(g, 5, 5, 0.1)).toBe(-1);
    expect(nearest(buildGrid([], []), 0, 0, 1)).toBe(-1);
  });
});
