/** The intervention editor's form state and its checks: a draft of text fields, validated inline
 * against the served model (GET /api/model's kinds and sizes), built into an `Intervention`.
 * Nothing here names a kind: which kinds exist, their layers, units and pairs come from the registry. */
import type { Intervention, KindInfo, Node, Schemas } from "../../client/api";
import { RESID_POINTS, parseVector, type ResidPoint } from "../../lib/debugDirection";
import { kindOf } from "../../lib/kinds";
import { formatNode, parseNode } from "../../lib/nodes";

export type OpKind = Intervention["op"]["kind"];

export const OP_CHOICES: { op: OpKind; label: string; help: string }[] = [
  { op: "zero", label: "zero", help: "set to 0 (zero-ablation)" },
  { op: "mean", label: "mean over reference prompts", help: "the unit's mean over every token of the prompts you give" },
  { op: "dataset_mean", label: "mean over the dataset", help: "the unit's mean over the collated dataset (one scalar per unit kinds)" },
  { op: "resample", label: "resample from a prompt", help: "the activation on another prompt, aligned on the last tokens" },
  { op: "scale", label: "scale", help: "multiply by a factor" },
  { op: "set", label: "set", help: "set to a value (or a vector: one entry per element of the unit's value)" },
  { op: "add", label: "add", help: "add a value (or a vector)" },
  { op: "steer", label: "steer along a direction", help: "add coefficient × a residual direction: a node's write or a pasted d_model vector" },
];

/** The pseudo-kind of a residual-stream target (not a node kind: no registry entry). */
export const RESIDUAL = "residual";

export interface IvDraft {
  /** a node kind's name, or "residual" */
  target: string;
  layer: string;
  /** one index or several, comma-separated */
  index: string;
  /** prompt positions, comma-separated (negatives count from the end); "" = every position */
  positions: string;
  key: string;
  point: ResidPoint;
  op: OpKind;
  /** mean: one reference prompt per line */
  reference: string;
  /** resample: the other prompt */
  prompt: string;
  value: string;
  factor: string;
  coefficient: string;
  source: "node" | "vector";
  node: string;
  vector: string;
  normalize: boolean;
  /** steer by a node whose write depends on the prompt: the prompt it is read on */
  writePrompt: string;
}

export const EMPTY_DRAFT: IvDraft = {
  target: RESIDUAL, layer: "0", index: "", positions: "", key: "", point: "resid_pre",
  op: "zero", reference: "", prompt: "", value: "", factor: "0.5", coefficient: "4", source: "node",
  node: "", vector: "", normalize: false, writePrompt: "",
};

/** A draft editing exactly `n` (its unit at its token), with `op` (scale by default: "edit" is for more than zero). */
export function draftFromNode(n: Node, op: OpKind = "scale"): IvDraft {
  return {
    ...EMPTY_DRAFT,
    target: n.kind,
    layer: n.layer != null ? String(n.layer) : "",
    index: n.index != null ? String(n.index) : "",
    positions: String(n.token),
    key: n.key != null ? String(n.key) : "",
    op,
  };
}

const list = (v: number | number[] | null | undefined): string => (v == null ? "" : Array.isArray(v) ? v.join(", ") : String(v));

/** The draft that rebuilds `iv` (editing an intervention of the list). */
export function draftFromIntervention(iv: Intervention): IvDraft {
  const d: IvDraft = { ...EMPTY_DRAFT, op: iv.op.kind };
  const t = iv.target;
  d.target = t.kind ?? RESIDUAL;
  d.positions = list(t.positions);
  if (t.kind === RESIDUAL) {
    const r = t as Schemas["ResidualTarget"];
    d.layer = String(r.layer);
    d.point = r.point ?? "resid_pre";
  } else {
    const n = t as Schemas["NodeTarget"];
    d.layer = n.layer != null ? String(n.layer) : "";
    d.index = list(n.index);
    d.key = n.key != null ? String(n.key) : "";
  }
  const op = iv.op;
  if (op.kind === "mean") d.reference = op.reference.join("\n");
  if (op.kind === "resample") d.prompt = op.prompt;
  if (op.kind === "set" || op.kind === "add") d.value = list(op.value);
  if (op.kind === "scale") d.factor = String(op.factor);
  if (op.kind === "steer") {
    d.coefficient = String(op.coefficient);
    d.normalize = op.normalize ?? false;
    if (op.direction.kind === "vector") {
      d.source = "vector";
      d.vector = op.direction.vector.join(", ");
    } else {
      d.source = "node";
      d.node = formatNode(op.direction.node);
      d.writePrompt = op.direction.prompt ?? "";
    }
  }
  return d;
}

export interface EditorContext {
  kinds: KindInfo[];
  nLayers: number;
  dModel: number;
  maxBatch: number;
}

export type Built = { ok: true; iv: Intervention } | { ok: false; field: string; message: string };

const INT = /^-?\d+$/;
const fail = (field: string, message: string): Built => ({ ok: false, field, message });

function ints(text: string): number[] | null {
  const parts = text.split(/[\s,]+/).filter((x) => x !== "");
  return parts.length && parts.every((x) => INT.test(x)) ? parts.map(Number) : null;
}

function number(text: string): number | null {
  const t = text.trim();
  if (t === "") return null;
  const x = Number(t);
  return Number.isFinite(x) ? x : null;
}

/** The intervention a draft describes, or the first field that is wrong and why (shown inline). */
export function buildIntervention(d: IvDraft, ctx: EditorContext): Built {
  const residual = d.target === RESIDUAL;
  const kind = residual ? null : kindOf(ctx.kinds, d.target);
  if (!residual && !kind) return fail("target", `target: unknown kind ${JSON.stringify(d.target)}`);
  const layered = residual || kind!.layered;
  let layer: number | null = null;
  if (layered) {
    if (!INT.test(d.layer.trim()) || Number(d.layer) < 0 || Number(d.layer) >= ctx.nLayers)
      return fail("layer", `layer: a block index 0..${ctx.nLayers - 1}`);
    layer = Number(d.layer);
  }
  let positions: number[] | null = null;
  if (d.positions.trim() !== "") {
    positions = ints(d.positions);
    if (!positions) return fail("positions", "positions: whole numbers separated by commas (negative: from the end), or empty for every position");
  }
  let target: Intervention["target"];
  if (residual) {
    target = { kind: "residual", layer: layer!, point: d.point };
  } else {
    const k = kind!;
    const t: Schemas["NodeTarget"] = { kind: k.name };
    if (layer !== null) t.layer = layer;
    if (k.unit != null) {
      const idx = ints(d.index);
      const size = k.size ?? Infinity;
      if (!idx || idx.some((i) => i < 0 || i >= size))
        return fail("index", `index: ${k.unit} indices 0..${size - 1}, separated by commas`);
      t.index = idx.length === 1 ? idx[0]! : idx;
    }
    if (d.key.trim() !== "") {
      if (!k.pairs) return fail("key", `key: a ${k.label} has no (query, key) pairs`);
      if (!INT.test(d.key.trim()) || Number(d.key) < 0) return fail("key", "key: a key position ≥ 0");
      t.key = Number(d.key);
    }
    target = t;
  }
  if (positions) target.positions = positions;
  const pair = !residual && "key" in target && target.key != null;
  if (pair && !["zero", "set", "scale"].includes(d.op)) return fail("op", "op: a (query, key) pair takes zero, set or scale");
  let op: Intervention["op"];
  switch (d.op) {
    case "zero":
      op = { kind: "zero" };
      break;
    case "mean": {
      const reference = d.reference.split("\n").filter((x) => x.trim() !== "");
      if (!reference.length) return fail("reference", "reference: one prompt per line");
      if (reference.length > ctx.maxBatch) return fail("reference", `reference: at most ${ctx.maxBatch} prompts (max_batch)`);
      op = { kind: "mean", reference };
      break;
    }
    case "dataset_mean":
      if (residual || !kind!.dataset_mean) {
        const have = ctx.kinds.filter((k) => k.dataset_mean).map((k) => k.label).join(", ") || "none on this model";
        return fail("op", `op: the dataset mean sets one scalar per unit; kinds that have one: ${have}`);
      }
      op = { kind: "dataset_mean" };
      break;
    case "resample":
      if (!d.prompt) return fail("prompt", "prompt: the prompt to take the activation from");
      op = { kind: "resample", prompt: d.prompt };
      break;
    case "scale": {
      const factor = number(d.factor);
      if (factor === null) return fail("factor", "factor: a number (0.5 halves, -1 flips, 2 doubles)");
      op = { kind: "scale", factor };
      break;
    }
    case "set":
    case "add": {
      const vals = parseVector(d.value);
      if (!vals) return fail("value", "value: a number, or numbers separated by commas");
      op = { kind: d.op, value: vals.length === 1 ? vals[0]! : vals };
      break;
    }
    case "steer": {
      const coefficient = number(d.coefficient);
      if (coefficient === null) return fail("coefficient", "coefficient: a number");
      let direction: Schemas["Steer"]["direction"];
      if (d.source === "vector") {
        const vec = parseVector(d.vector);
        if (!vec) return fail("vector", "vector: numbers separated by commas or spaces");
        if (vec.length !== ctx.dModel) return fail("vector", `vector: ${vec.length} entries; the model's d_model is ${ctx.dModel}`);
        direction = { kind: "vector", vector: vec };
      } else {
        const node = parseNode(d.node, ctx.kinds);
        if (!node) return fail("node", "node: a node string such as L3.mlp_neuron.12@5");
        direction = d.writePrompt ? { kind: "node_write", node, prompt: d.writePrompt } : { kind: "node_write", node };
      }
      op = d.normalize ? { kind: "steer", coefficient, direction, normalize: true } : { kind: "steer", coefficient, direction };
      break;
    }
    default:
      return fail("op", `op: one of ${OP_CHOICES.map((c) => c.op).join(", ")}`);
  }
  return { ok: true, iv: { target, op } };
}

export { RESID_POINTS };
