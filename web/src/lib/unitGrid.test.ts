import { describe, expect, it } from "vitest";
import {
  codeColours,
  decodeCodes,
  decodeGrid,
  gridLayout,
  positionMax,
  positionSummary,
  rowColourCodes,
  unitAt,
  unitSeries,
  valueAt,
  type UnitGridResponse,
} from "./unitGrid";

const b64 = (codes: number[]) => btoa(String.fromCharCode(...codes.map((c) => c & 0xff)));

// 2 layers x 2 positions x 3 units
const RESPONSE: UnitGridResponse = {
  kind: "mlp_neuron",
  tokens: ["a", " b"],
  units: 3,
  layers: [
    { layer: 0, scales: [0.5, 0.01], codes: b64([127, -64, 0, 0, 2, -127]) },
    { layer: 1, scales: [0, 1], codes: b64([0, 0, 0, 127, 1, -1]) },
  ],
  lens: { layers: ["L0", "L1", "final"], ids: [], probs: [], vocab: {} },
};

describe("unit grid decoding", () => {
  it("reads int8 codes as two's complement", () => {
    expect(Array.from(decodeCodes(b64([0, 1, 127, -1, -127, -128])))).toEqual([0, 1, 127, -1, -127, -128]);
  });

  it("gives code x scale per layer, position and unit", () => {
    const g = decodeGrid(RESPONSE);
    expect(g.layers).toEqual([0, 1]);
    expect(valueAt(g, 0, 0, 0)).toBeCloseTo(63.5);
    expect(valueAt(g, 0, 0, 1)).toBeCloseTo(-32);
    expect(valueAt(g, 0, 1, 2)).toBeCloseTo(-1.27);
    expect(valueAt(g, 1, 0, 2)).toBe(0);
    expect(unitSeries(g, 1, 0)).toEqual([0, 127]);
    expect(positionMax(g, 1)).toBeCloseTo(127);
  });

  it("summarises a position: its strongest unit and total |activation|", () => {
    const g = decodeGrid(RESPONSE);
    const s0 = positionSummary(g, 0);
    expect(s0.top).toEqual({ row: 0, unit: 0, value: 63.5 });
    expect(s0.sumAbs).toBeCloseTo(95.5);
    const s1 = positionSummary(g, 1);
    expect(s1.top).toEqual({ row: 1, unit: 0, value: 127 });
    expect(s1.sumAbs).not.toBeCloseTo(s0.sumAbs);
  });

  it("refuses a row of the wrong length", () => {
    expect(() => decodeGrid({ ...RESPONSE, layers: [{ layer: 0, scales: [1, 1], codes: b64([1, 2]) }] })).toThrow(/expected 2 x 3/);
  });

  it("rescales colours to a shared maximum", () => {
    const g = decodeGrid(RESPONSE);
    expect(Array.from(rowColourCodes(g, 0, 1, null))).toEqual([0, 2, -127]);
    // row 0 at position 1 peaks at 1.27 of a shared 127: its codes shrink 100-fold
    expect(Array.from(rowColourCodes(g, 0, 1, positionMax(g, 1)))).toEqual([0, 0, -1]);
  });

  it("colours zero white and the extremes blue and red", () => {
    const c = codeColours();
    expect(Array.from(c.slice(3 * 127, 3 * 127 + 3))).toEqual([255, 255, 255]);
    const blue = Array.from(c.slice(3 * 254, 3 * 254 + 3));
    const red = Array.from(c.slice(0, 3));
    expect(blue[2]!).toBeGreaterThan(blue[0]!);
    expect(red[0]!).toBeGreaterThan(red[2]!);
  });
});

describe("grid layout", () => {
  it("wraps many units into lines of small cells and gives few units big ones", () => {
    expect(gridLayout(1536, 512)).toEqual({ cols: 256, lines: 6, cell: 2 });
    expect(gridLayout(9, 512)).toEqual({ cols: 9, lines: 1, cell: 16 });
  });

  it("finds the unit under the pointer", () => {
    const l = gridLayout(1536, 512);
    expect(unitAt(l, 1536, 0, 0)).toBe(0);
    expect(unitAt(l, 1536, 5, 3)).toBe(256 + 2);
    expect(unitAt(l, 1536, 511, 11)).toBe(1535);
    expect(unitAt(l, 1536, 512, 0)).toBeNull();
    expect(unitAt(gridLayout(10, 40), 10, 4 * 4, 4)).toBeNull(); // past the last unit of the last line
  });
});
