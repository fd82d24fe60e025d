import { describe, expect, it } from "vitest";
import { exploreHref, highlight, hitNodes, parseQuery, sortTokenNodes, tokenRequest, unitHref, type TokenNode } from "./explore";
import type { KindInfo } from "../../client/api";
import { unitLabel } from "../../lib/kinds";
import kindsFixture from "../../test/fixtures/kinds.json";

const kinds = kindsFixture as KindInfo[];

describe("explorer URL", () => {
  it("reads ?token= and ?q= (spaces kept) and sets one, keeping the other", () => {
    expect(parseQuery("?token=+Paris&q=Roman+Empire")).toEqual({ token: " Paris", q: "Roman Empire", expl: "", sem: "" });
    expect(parseQuery("?expl=x&sem=1").sem).toBe("1");
    expect(parseQuery("?expl=x&sem=yes").sem).toBe("");
    expect(parseQuery("")).toEqual({ token: "", q: "", expl: "", sem: "" });
    expect(parseQuery("?expl=parenthes").expl).toBe("parenthes");
    expect(exploreHref("?q=Rome&expl=month", "token", "x")).toBe("/explore?q=Rome&expl=month&token=x");
    expect(exploreHref("?q=Rome", "token", " the")).toBe("/explore?q=Rome&token=+the");
    expect(exploreHref("?q=Rome&token=x", "q", "war")).toBe("/explore?q=war&token=x");
    expect(exploreHref("?q=Rome&junk=1", "q", "  ")).toBe("/explore");
  });

  it("sends #id as a token id and anything else as text", () => {
    expect(tokenRequest("#7042")).toBe(7042);
    expect(tokenRequest(" # 12 ")).toBe(12);
    expect(tokenRequest(" Paris")).toBe(" Paris");
    expect(tokenRequest("12")).toBe("12");
    expect(tokenRequest("#x")).toBe("#x");
  });
});

describe("node labels and links", () => {
  it("labels neurons N and heads H, and links them to the canonical node page", () => {
    expect(unitLabel(kinds, "mlp_neuron", 12, 866)).toBe("L12.N866");
    expect(unitLabel(kinds, "attn_head", 8, 3)).toBe("L8.H3");
    expect(unitHref(kinds, "mlp_neuron", 12, 866, "Smol.Q4_1")).toBe("/node/Smol.Q4_1/mlp_neuron/12/866");
    expect(unitHref(kinds, "attn_head", 8, 3, null)).toBe("/node/attn_head/8/3");
    expect(unitHref(kinds, "mlp_out", 8, 3, "m")).toBeNull();
    expect(unitHref(kinds, "not_a_kind", 8, 3, "m")).toBeNull();
  });

  it("types a hit's nodes and drops malformed ones", () => {
    const nodes = hitNodes({
      window_id: 1, text: "x", title: null,
      nodes: [
        { window_id: 1, kind: "attn_head", layer: 8, unit: 3, activation: 2.5, position: 7 },
        { window_id: 1, kind: "mlp_neuron", layer: "oops", unit: 3, activation: 1 },
      ],
    });
    expect(nodes).toEqual([{ kind: "attn_head", layer: 8, unit: 3, activation: 2.5, position: 7 }]);
  });
});

describe("highlight", () => {
  const marked = (text: string, q: string) => highlight(text, q).filter((s) => s.match).map((s) => s.text);

  it("marks every match ignoring case and keeps the text whole", () => {
    const text = "The Roman Empire... the roman EMPIRE fell.";
    const segs = highlight(text, "roman empire");
    expect(segs.map((s) => s.text).join("")).toBe(text);
    expect(marked(text, "roman empire")).toEqual(["Roman Empire", "roman EMPIRE"]);
    expect(segs[0]).toEqual({ text: "The ", match: false });
  });

  it("treats the query as text, not a pattern", () => {
    expect(marked("a (b) a.b axb", "a.b")).toEqual(["a.b"]);
    expect(marked("cost $5 (approx.)", "(approx.)")).toEqual(["(approx.)"]);
  });

  it("marks nothing for a blank query or no match", () => {
    expect(highlight("abc", "")).toEqual([{ text: "abc", match: false }]);
    expect(marked("abc", "z")).toEqual([]);
  });
});

describe("sortTokenNodes", () => {
  const row = (kind: string, layer: number, unit: number, n: number, max: number): TokenNode => ({ kind, layer, unit, token: " the", n_examples: n, max_activation: max });
  const rows = [row("mlp_neuron", 27, 931, 20, 23.4), row("attn_head", 3, 1, 20, 5), row("mlp_neuron", 2, 7, 4, 30)];
  const labels = (xs: TokenNode[]) => xs.map((r) => unitLabel(kinds, r.kind, r.layer, r.unit));

  it("sorts by a column either way; ties keep the server's order", () => {
    expect(labels(sortTokenNodes(rows, "n_examples", true))).toEqual(["L27.N931", "L3.H1", "L2.N7"]);
    expect(labels(sortTokenNodes(rows, "n_examples", false))).toEqual(["L2.N7", "L27.N931", "L3.H1"]);
    expect(labels(sortTokenNodes(rows, "max_activation", true))).toEqual(["L2.N7", "L27.N931", "L3.H1"]);
    expect(labels(sortTokenNodes(rows, "label", false))).toEqual(["L2.N7", "L3.H1", "L27.N931"]);
    expect(labels(sortTokenNodes(rows, "kind", false))).toEqual(["L3.H1", "L27.N931", "L2.N7"]);
  });
});
