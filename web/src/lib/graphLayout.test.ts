import { describe, expect, it } from "vitest";
import { layoutGraph, type LayoutItem } from "./graphLayout";

const item = (key: string, row: number, pos: number, width = 10, order = 0): LayoutItem => ({ key, row, pos, width, order });

describe("graph layout", () => {
  it("puts positions left to right, embeddings at the bottom, layers upwards, logits on top", () => {
    const l = layoutGraph(
      [item("tok0", 0, 0), item("tok1", 0, 1), item("a", 1, 0), item("b", 3, 1), item("logit", 4, 1)],
      2, 3, { minColumn: 50, left: 40, right: 10, top: 0, bottom: 0, rowHeight: 20, tokenRowHeight: 30, logitRowHeight: 40 },
    );
    const at = (k: string) => l.at.get(k)!;
    expect(l.columns).toEqual([{ pos: 0, x: 40, width: 50 }, { pos: 1, x: 90, width: 50 }]);
    expect(l.width).toBe(150);
    expect(l.height).toBe(40 + 3 * 20 + 30);
    expect(at("tok0")).toEqual({ x: 65, y: 40 + 60 + 15 });
    expect(at("a").x).toBe(65);
    expect(at("b").x).toBe(115);
    // y: logits above layer 2 above layer 0 above the embeddings
    expect(at("logit").y).toBe(20);
    expect(at("b").y).toBe(40 + 10);
    expect(at("a").y).toBe(40 + 40 + 10);
    expect(at("tok0").y).toBeGreaterThan(at("a").y);
    expect(l.rows.map((r) => r.row)).toEqual([0, 1, 2, 3, 4]);
  });

  it("spreads a cell's nodes side by side in order, and widens the column to fit them", () => {
    const items = [item("c", 1, 0, 10, 2), item("a", 1, 0, 10, 0), item("b", 1, 0, 10, 1), item("lone", 1, 1)];
    const l = layoutGraph(items, 2, 1, { minColumn: 20, gap: 4, left: 0, right: 0 });
    const xs = ["a", "b", "c"].map((k) => l.at.get(k)!.x);
    expect(xs[0]).toBeLessThan(xs[1]!);
    expect(xs[1]).toBeLessThan(xs[2]!);
    expect(xs[1]! - xs[0]!).toBe(14);
    expect(l.columns[0]!.width).toBe(3 * 10 + 4 * 4);
    expect(xs[1]).toBe(l.columns[0]!.width / 2); // centred
    expect(l.columns[1]!.width).toBe(20);
    // no two nodes of a row overlap
    for (const k of ["a", "b", "c"]) expect(Math.abs(l.at.get(k)!.x - l.at.get("lone")!.x)).toBeGreaterThanOrEqual(10);
  });

  it("wraps a busy cell onto more lines of a taller row, the first nodes on the first line", () => {
    const items = Array.from({ length: 7 }, (_, i) => item(`n${i}`, 1, 0, 10, i));
    const l = layoutGraph([...items, item("up", 2, 0), item("tok", 0, 0)], 1, 2,
      { perLine: 3, lineHeight: 16, rowHeight: 20, gap: 4, minColumn: 10, left: 0, right: 0, top: 0, bottom: 0 });
    const at = (k: string) => l.at.get(k)!;
    expect(l.rows[1]!.height).toBe(3 * 16); // three lines
    expect(l.rows[2]!.height).toBe(20);
    expect(l.columns[0]!.width).toBe(3 * 10 + 4 * 4); // a line's width, not the cell's
    expect([0, 1, 2].map((i) => at(`n${i}`).y)).toEqual([l.rows[1]!.y - 16, l.rows[1]!.y - 16, l.rows[1]!.y - 16]);
    expect(at("n3").y).toBe(l.rows[1]!.y);
    expect(at("n6").y).toBe(l.rows[1]!.y + 16);
    expect(at("n6").x).toBe(at("n1").x); // a lone last node is centred
    expect(at("up").y).toBeLessThan(at("n0").y - 8);
    expect(at("tok").y).toBeGreaterThan(at("n6").y + 8);
  });

  it("wraps sooner when the columns would not fit the width asked for", () => {
    const items = [0, 1].flatMap((pos) => Array.from({ length: 8 }, (_, i) => item(`p${pos}n${i}`, 1, pos, 10, i)));
    const o = { perLine: 8, gap: 0, minColumn: 10, left: 0, right: 0, lineHeight: 10, rowHeight: 10 };
    expect(layoutGraph(items, 2, 1, o).width).toBe(160); // no width asked for: one line of 8
    const fit = layoutGraph(items, 2, 1, { ...o, width: 70 });
    expect(fit.width).toBe(70); // 3 a line: 2 x 30, stretched to 70
    expect(fit.rows[1]!.height).toBe(30); // 8 nodes in lines of 3
    const tight = layoutGraph(items, 2, 1, { ...o, width: 10 });
    expect(tight.columns.map((c) => c.width)).toEqual([20, 20]); // never fewer than 2 a line
  });

  it("stretches the columns to the width asked for", () => {
    const l = layoutGraph([item("a", 1, 0), item("b", 1, 1)], 2, 1, { minColumn: 50, left: 0, right: 0, width: 400 });
    expect(l.columns.map((c) => c.width)).toEqual([200, 200]);
    expect(l.at.get("b")!.x).toBe(300);
    expect(l.width).toBe(400);
  });

  it("centres the logits on the last column, inside the graph, widened when they do not fit", () => {
    const logits = Array.from({ length: 6 }, (_, i) => item(`l${i}`, 2, 2, 40, i));
    const l = layoutGraph(logits, 3, 1, { minColumn: 50, gap: 0, left: 0, right: 0 });
    const xs = logits.map((x) => l.at.get(x.key)!.x);
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
    expect(l.width).toBe(240); // the three columns widened from 150 to the logits' 240
    expect(Math.min(...xs) - 20).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs) + 20).toBeLessThanOrEqual(240 + 1e-9);
    const two = layoutGraph(logits.slice(0, 2), 3, 1, { minColumn: 50, gap: 0, left: 0, right: 0 });
    expect(two.at.get("l0")!.x).toBe(90); // 80 wide: centred on the last column (125) they would pass 150
    expect(two.at.get("l1")!.x).toBe(130);
  });

  it("clamps rows and positions out of range", () => {
    const l = layoutGraph([item("x", 99, 99), item("y", -1, -1)], 2, 2);
    expect(l.at.get("x")!.y).toBe(l.rows[3]!.y);
    expect(l.at.get("y")!.y).toBe(l.rows[0]!.y);
  });
});
