import { describe, expect, it } from "vitest";
import { neighbourHref, nodeHref, nodePath, parseNodeRoute, withPrompt } from "./nodeHref";
import type { KindInfo } from "../client/api";
import kindsFixture from "../test/fixtures/kinds.json";

const kinds = kindsFixture as KindInfo[];

const GGUF = "SmolLM2-135M-Instruct.Q4_1";

describe("node page paths", () => {
  it("parses the canonical form with the model, dots and encoded slashes included", () => {
    const r = parseNodeRoute(`/node/${GGUF}/mlp_neuron/12/866`, "");
    expect(r).toEqual({ node: { kind: "mlp_neuron", layer: 12, index: 866, token: 0, key: null }, model: GGUF, prompt: null });
    const hf = parseNodeRoute("/node/HuggingFaceTB%2FSmolLM2-135M/attn_head/3/1", "?prompt=a+b&token=2&key=1");
    expect(hf).toEqual({ node: { kind: "attn_head", layer: 3, index: 1, token: 2, key: 1 }, model: "HuggingFaceTB/SmolLM2-135M", prompt: "a b" });
  });

  it("still parses the model-less form, as the same page", () => {
    const r = parseNodeRoute("/node/mlp_neuron/12/866/", "?prompt=x&token=1");
    expect(r).toEqual({ node: { kind: "mlp_neuron", layer: 12, index: 866, token: 1, key: null }, model: null, prompt: "x" });
    expect(parseNodeRoute("/node/embedding/-/-", "?prompt=x&token=0")).toMatchObject({ node: { kind: "embedding", layer: null, index: null } });
  });

  it("refuses what is not a node page", () => {
    for (const path of ["/node/", "/node/M/neuron/1/2", "/node/M/mlp_neuron/a/2", "/node/a/b/mlp_neuron/1/2", "/node/%E0%A4%A/mlp_neuron/1/2"]) {
      expect(parseNodeRoute(path, "", kinds), path).toHaveProperty("error");
    }
    expect(parseNodeRoute("/node/M/neuron/1/2", "")).toHaveProperty("node"); // kinds not known yet: the shape alone
    expect(parseNodeRoute("/node/M/mlp_neuron/1/2", "?prompt=hi")).toEqual({ error: "the node page needs ?token=<position> with a prompt" });
  });

  it("makes canonical links that parse back to the same node", () => {
    const n = { kind: "attn_head" as const, layer: 5, index: 2, token: 10, key: 3 };
    const href = nodeHref(n, "When Mary & John", "org/Model.v1");
    expect(href).toBe("/node/org%2FModel.v1/attn_head/5/2?prompt=When+Mary+%26+John&token=10&key=3");
    const [path, query] = href.split("?");
    expect(parseNodeRoute(path!, "?" + query)).toEqual({ node: n, model: "org/Model.v1", prompt: "When Mary & John" });
    expect(nodePath("mlp_out", 3, null, null)).toBe("/node/mlp_out/3/-");
    expect(neighbourHref("mlp_neuron", 1, 2, "?prompt=a&token=0", GGUF)).toBe(`/node/${GGUF}/mlp_neuron/1/2?prompt=a&token=0`);
    expect(neighbourHref("mlp_neuron", 1, 2, "", null)).toBe("/node/mlp_neuron/1/2");
  });

  it("sets and clears the prompt of a page", () => {
    expect(withPrompt("/node/M/mlp_neuron/1/2", "a b?", 4)).toBe("/node/M/mlp_neuron/1/2?prompt=a+b%3F&token=4");
    expect(withPrompt("/node/M/mlp_neuron/1/2", null, 4)).toBe("/node/M/mlp_neuron/1/2");
  });
});
