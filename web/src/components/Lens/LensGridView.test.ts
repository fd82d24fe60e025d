import { describe, expect, it } from "vitest";
import type { LensGrid } from "../../lib/lensState";
import { cellProb, gridMax, prob } from "./LensGridView";

const tv = (id: number, value: number) => ({ id, token: `t${id}`, value });
const grid: LensGrid = {
  stream: "mlp",
  tokens: ["a", "b"],
  layers: ["L0", "L1"],
  top: [
    [[tv(1, 0.002)], [tv(2, 0.0004)]],
    [[tv(3, 0.01)], [tv(4, 0.003)]],
  ],
  target: null,
};

describe("lens cells", () => {
  it("colour by the top token's probability, scaled to the grid's largest", () => {
    expect(cellProb(grid, 1, 0)).toBe(0.01);
    expect(gridMax(grid)).toBe(0.01);
  });
  it("colour by the target's probability when there is one", () => {
    const g = { ...grid, target: { id: 9, token: "t9", probs: [[0.5, 0.1], [0.2, 0.9]], ranks: [[0, 3], [1, 0]] } };
    expect(cellProb(g, 0, 1)).toBe(0.1);
    expect(gridMax(g)).toBe(0.9);
  });
  it("shows small probabilities", () => {
    expect(prob(0.5)).toBe("50.0%");
    expect(prob(0.0004)).toBe("4.0e-2%");
    expect(prob(0)).toBe("0%");
  });
});
