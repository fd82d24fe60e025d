import { describe, expect, it } from "vitest";
import { parseNode } from "./nodes";
import { decodeDirection, directionLabel, parseVector } from "./debugDirection";
import { DEFAULT_STATE, decodeState, encodeState, isRunnable, toRequest, type DebugState } from "./urlState";

describe("the Debugger's direction, verify panel and generation in the URL", () => {
  it("round-trips a log-prob, a probe by node and a probe by vector", () => {
    const states: DebugState[] = [
      { ...DEFAULT_STATE, prompt: "a b", direction: { kind: "logprob", continuation: " Mary went" } },
      { ...DEFAULT_STATE, prompt: "a b", direction: { kind: "probe", layer: 3, point: "resid_mid", node: parseNode("L2.mlp_neuron.7@0"), vector: null, normalize: true } },
      { ...DEFAULT_STATE, prompt: "a b", direction: { kind: "probe", layer: 0, point: "resid_post", node: null, vector: [0.5, -1, 1e-3], normalize: false } },
    ];
    for (const s of states) expect(decodeState("?" + encodeState(s))).toEqual(s);
    expect(encodeState(states[1]!)).toContain("probe_at=L3.resid_mid");
  });

  it("sends the direction instead of targets, and a trace wins over it", () => {
    const s = decodeState("?prompt=hi&target=x&dir=logprob&cont=+there");
    expect(isRunnable(s)).toBe(true);
    expect(toRequest(s)).toEqual({ prompt: "hi", k: 10, direction: { kind: "logprob", continuation: " there" } });
    expect(isRunnable(decodeState("?prompt=hi&dir=probe&probe_at=L1.resid_post&probe_vec=1,2"))).toBe(true);
    expect(toRequest(decodeState("?prompt=hi&dir=probe&probe_at=L1.resid_post&probe_vec=1,2&probe_norm=1")).direction).toEqual({
      kind: "probe", layer: 1, point: "resid_post", vector: [1, 2], normalize: true,
    });
    const traced = toRequest(decodeState("?prompt=hi&dir=logprob&cont=x&trace=L1.mlp_neuron.2%403"));
    expect(traced.direction).toBeUndefined();
    expect(traced.trace).toEqual({ node: parseNode("L1.mlp_neuron.2@3") });
  });

  it("falls back to the logit difference on a malformed direction", () => {
    for (const q of ["dir=logprob", "dir=probe&probe_at=L1.resid_post", "dir=probe&probe_at=X&probe_vec=1", "dir=probe&probe_at=L1.resid_post&probe_vec=1,a",
      "dir=probe&probe_at=L1.resid_post&probe_vec=1&probe_node=L1.mlp_neuron.2%400", "dir=entropy"]) {
      expect(decodeDirection(new URLSearchParams(q))).toEqual({ kind: "logit_diff" });
    }
    expect(decodeState("?prompt=hi&dir=logprob").direction).toEqual({ kind: "logit_diff" });
    expect(isRunnable(decodeState("?prompt=hi&dir=logprob"))).toBe(false);
  });

  it("keeps the verify panel (open, top N) and the generation length", () => {
    const s = decodeState("?prompt=hi&target=x&verify=35&gen=7");
    expect(s.verify).toBe(35);
    expect(s.genTokens).toBe(7);
    expect(new URLSearchParams(encodeState(s)).get("verify")).toBe("35");
    expect(decodeState("?prompt=hi&verify=").verify).toBe(20); // open, default top N
    expect(decodeState("?prompt=hi&verify=junk").verify).toBe(20);
    expect(decodeState("?prompt=hi").verify).toBeNull();
    expect(decodeState("?prompt=hi&gen=0").genTokens).toBe(1);
    expect(encodeState({ ...DEFAULT_STATE, prompt: "hi" })).toBe("prompt=hi");
  });

  it("parses pasted vectors and labels directions", () => {
    expect(parseVector("[0.1, -2,3e-2]\n4")).toEqual([0.1, -2, 0.03, 4]);
    expect(parseVector("1, x")).toBeNull();
    expect(parseVector("  ")).toBeNull();
    expect(directionLabel({ kind: "logprob", continuation: " a" })).toBe('log-prob of " a"');
    expect(directionLabel({ kind: "probe", layer: 2, point: "resid_pre", node: null, vector: [1, 2], normalize: false })).toBe("probe a 2-entry vector at L2.resid_pre");
  });
});
