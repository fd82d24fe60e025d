import { describe, expect, it } from "vitest";
import {
  attentionHref, bestHead, cellState, DEFAULT_ATTENTION_STATE, decodeAttentionState, encodeAttentionState, stripeMass,
  toAttentionRequest, toDetectRequest, type AttentionState,
} from "./attentionState";

describe("Attention URL state", () => {
  it("round-trips every field", () => {
    const s: AttentionState = { src: "repeated", prompt: "a b", length: 12, seed: 3, window: 7, layer: 5, head: 2, det: "dataset", n: 4 };
    expect(decodeAttentionState("?" + encodeAttentionState(s))).toEqual(s);
    expect(decodeAttentionState(encodeAttentionState(DEFAULT_ATTENTION_STATE))).toEqual(DEFAULT_ATTENTION_STATE);
    expect(attentionHref(DEFAULT_ATTENTION_STATE)).toBe("/attention?layer=0");
  });

  it("drops what does not parse, and a window source without its window", () => {
    const s = decodeAttentionState("?src=nope&r=0&seed=-1&layer=x&head=1.5&det=everything&n=0&prompt=hi");
    expect(s).toEqual({ ...DEFAULT_ATTENTION_STATE, prompt: "hi" });
    expect(decodeAttentionState("?src=window").src).toBe("prompt");
  });

  it("asks for the pattern of the sequence the state names", () => {
    expect(toAttentionRequest(DEFAULT_ATTENTION_STATE)).toBeNull();
    const s = { ...DEFAULT_ATTENTION_STATE, prompt: "hello", layer: 3 };
    expect(toAttentionRequest(s)).toEqual({ prompt: "hello", layer: 3 });
    expect(toAttentionRequest({ ...s, head: 1, src: "repeated", length: 9, seed: 2 })).toEqual({ repeated: { length: 9, seed: 2 }, layer: 3, head: 1 });
    expect(toAttentionRequest({ ...s, src: "window", window: 11 })).toEqual({ window_id: 11, layer: 3 });
  });

  it("asks the detectors for their source", () => {
    const s = DEFAULT_ATTENTION_STATE;
    expect(toDetectRequest(s)).toEqual({ source: "repeated", length: 25, n: 8, seed: 0 });
    expect(toDetectRequest({ ...s, det: "off" })).toBeNull();
    expect(toDetectRequest({ ...s, det: "prompt" })).toBeNull();
    expect(toDetectRequest({ ...s, det: "prompt", prompt: "p" })).toEqual({ source: "prompt", prompt: "p" });
    expect(toDetectRequest({ ...s, det: "dataset", n: 3 })).toEqual({ source: "dataset", n: 3 });
  });

  it("a grid cell opens that head on the detectors' sequence", () => {
    const s = { ...DEFAULT_ATTENTION_STATE, prompt: "typed", length: 10, seed: 4 };
    expect(cellState(s, { window_id: null }, 7, 3)).toMatchObject({ src: "repeated", layer: 7, head: 3, length: 10, seed: 4 });
    expect(cellState({ ...s, det: "prompt" }, { window_id: null }, 1, 0)).toMatchObject({ src: "prompt", prompt: "typed" });
    expect(cellState({ ...s, det: "dataset" }, { window_id: 42 }, 1, 0)).toMatchObject({ src: "window", window: 42 });
  });

  it("measures an induction stripe and finds the best head", () => {
    // start token + 2 x 2 tokens: queries 3, 4 attend r - 1 = 1 back
    const p = [[1], [1, 0], [1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0.5, 0.5]];
    expect(stripeMass(p, 1, 3)).toBeCloseTo(0.75);
    expect(stripeMass([[1]], 1, 3)).toBeNull();
    expect(bestHead([[0.1, 0.2], [0.9, 0.3]])).toEqual({ layer: 1, head: 0, score: 0.9 });
    expect(bestHead([])).toBeNull();
  });
});
