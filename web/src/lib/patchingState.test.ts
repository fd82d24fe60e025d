import { describe, expect, it } from "vitest";
import { decodeLensState, DEFAULT_LENS_STATE, encodeLensState, lensHref, toLensRequest } from "./lensState";
import {
  cellRef, decodePatchingState, DEFAULT_PATCHING_STATE, encodePatchingState, patchingHref, toCompareRequest, toPairRequest,
  type PatchingState,
} from "./patchingState";

describe("patching URL state", () => {
  const full: PatchingState = {
    clean: "When Mary and John went to the store, John gave a drink to",
    corrupted: "When Mary and John went to the store, Mary gave a drink to",
    targets: [" Mary"],
    distractors: [" John", " Bob"],
    site: "heads_by_pos",
    pair: "repeat",
    io: "Ann",
    subject: "Tom",
    template: "After {A} and {B} met, {S} thanked",
    corruption: "abc",
    others: ["Eve", "Dan"],
    length: 7,
    seed: 42,
  };

  it("round-trips every field, spaces and & included", () => {
    expect(decodePatchingState("?" + encodePatchingState(full))).toEqual(full);
    expect(patchingHref(full).startsWith("/patching?clean=When+Mary")).toBe(true);
  });

  it("leaves defaults out of the URL", () => {
    expect(encodePatchingState(DEFAULT_PATCHING_STATE)).toBe("");
    expect(patchingHref(DEFAULT_PATCHING_STATE)).toBe("/patching");
    expect(decodePatchingState("")).toEqual(DEFAULT_PATCHING_STATE);
  });

  it("falls back to defaults on malformed values", () => {
    const s = decodePatchingState("?site=resid_post&pair=x&corruption=rot&others=a&length=1&seed=-3");
    expect(s).toEqual(DEFAULT_PATCHING_STATE);
  });

  it("builds the requests", () => {
    expect(toCompareRequest(DEFAULT_PATCHING_STATE)).toBeNull();
    expect(toCompareRequest({ ...full, targets: [] })).toBeNull();
    expect(toCompareRequest(full)).toEqual({
      clean: full.clean, corrupted: full.corrupted, targets: [" Mary"], distractors: [" John", " Bob"], site: "heads_by_pos",
    });
    expect(toPairRequest(full)).toEqual({ kind: "repeat", length: 7, seed: 42 });
    expect(toPairRequest({ ...full, pair: "ioi" })).toEqual({
      kind: "ioi", io: "Ann", subject: "Tom", template: full.template, corruption: "abc", others: ["Eve", "Dan"],
    });
  });

  it("maps heatmap cells to layers, heads and positions", () => {
    expect(cellRef("resid_pre", 3, 5, 9)).toEqual({ layer: 3, head: null, pos: 5 });
    expect(cellRef("heads", 3, 5, 9)).toEqual({ layer: 3, head: 5, pos: null });
    expect(cellRef("heads_by_pos", 20, 4, 9)).toEqual({ layer: 2, head: 2, pos: 4 });
  });
});

describe("lens URL state", () => {
  it("round-trips and drops defaults", () => {
    const s = { prompt: "The cat & the hat", stream: "mlp" as const, k: 8, target: " Paris" };
    expect(decodeLensState("?" + encodeLensState(s))).toEqual(s);
    expect(lensHref(DEFAULT_LENS_STATE)).toBe("/lens");
    expect(decodeLensState("?stream=embed&k=0")).toEqual(DEFAULT_LENS_STATE);
  });

  it("builds the request; #id is a token id", () => {
    expect(toLensRequest(DEFAULT_LENS_STATE)).toBeNull();
    expect(toLensRequest({ prompt: "a", stream: "attn", k: 3, target: "#42" })).toEqual({ prompt: "a", stream: "attn", k: 3, target: 42 });
    expect(toLensRequest({ prompt: "a", stream: "resid", k: 3, target: "" })?.target).toBeNull();
  });
});
