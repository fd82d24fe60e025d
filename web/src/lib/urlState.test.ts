import { describe, expect, it } from "vitest";
import { ablation, parseNode } from "./nodes";
import { DEFAULT_STATE, decodeState, encodeState, isRunnable, rightPaneName, toRequest, type DebugState } from "./urlState";

const DEMO = "?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John";

describe("URL state", () => {
  it("decodes the demo link (mechscope demo)", () => {
    const s = decodeState(DEMO);
    expect(s.prompt).toBe("When Mary and John went to the store, John gave a drink to");
    expect(s.targets).toEqual([" Mary"]);
    expect(s.distractors).toEqual([" John"]);
    expect(isRunnable(s)).toBe(true);
    expect(toRequest(s)).toEqual({ prompt: s.prompt, k: 10, targets: [" Mary"], distractors: [" John"] });
    expect(encodeState(s)).toBe(DEMO.slice(1));
  });

  it("round-trips every field, interventions and trace included", () => {
    const scale = { target: { kind: "attn_head" as const, layer: 1, head: 2, positions: [3] }, op: { kind: "scale" as const, factor: 0.5 } };
    const state: DebugState = {
      prompt: "a & b = c?\nnext line",
      prompt2: "a & d = c?",
      targets: [" Mary", "x y"],
      distractors: [" John", " Bob"],
      position: 7,
      interventions: [ablation(parseNode("L23.attn_head.3@13<-9")!), ablation(parseNode("L2.mlp_out@4")!), scale],
      trace: parseNode("L5.attn_head.2@10<-3"),
      through: "query_key",
      kinds: ["attn_head", "mlp_neuron"],
      k: 25,
      sort: "direct_effect",
      desc: false,
      groups: ["heads", "pairs"],
      filter: "John",
      heat: "direct",
      direction: { kind: "logprob", continuation: " Mary went" },
      verify: 30,
      genTokens: 12,
    };
    const url = encodeState(state);
    expect(decodeState("?" + url)).toEqual(state);
    const p = new URLSearchParams(url);
    expect(p.getAll("ablate")).toEqual(["L23.attn_head.3@13<-9", "L2.mlp_out@4"]);
    expect(JSON.parse(p.get("iv")!)).toEqual([scale]);
    expect(p.get("trace")).toBe("L5.attn_head.2@10<-3");
  });

  it("leaves defaults out of the URL and survives junk", () => {
    expect(encodeState({ ...DEFAULT_STATE, prompt: "hi" })).toBe("prompt=hi");
    const s = decodeState("?prompt=hi&k=abc&sort=bogus&ablate=nonsense&iv=%7Bbroken&through=query&kinds=Foo!&show=%20");
    expect(s).toEqual({ ...DEFAULT_STATE, prompt: "hi", groups: [] });
    // A well-formed kind name travels as it is: which kinds exist is the server's to say (a 422 names them).
    expect(toRequest(decodeState("?prompt=hi&target=a&kinds=foo,mlp_neuron")).kinds).toEqual(["foo", "mlp_neuron"]);
  });

  it("sends a trace instead of targets while tracing, and names the right pane", () => {
    const s = decodeState(DEMO + "&trace=L5.attn_head.2%4010&through=value&ablate=embedding%401");
    const req = toRequest(s);
    expect(req.trace).toEqual({ node: parseNode("L5.attn_head.2@10"), through: "value" });
    expect(req.targets).toBeUndefined();
    expect(req.interventions).toEqual([ablation(parseNode("embedding@1")!)]);
    expect(rightPaneName(s)).toBe("with 1 intervention");
    expect(rightPaneName({ prompt2: "x", interventions: [] })).toBe("prompt 2");
  });
});
