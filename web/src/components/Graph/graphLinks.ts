/** Where the Graph page links to: the Debugger (the prompt, or a head's (query, key) pair traced
 * through query and key) and node pages. */
import type { KindInfo } from "../../client/api";
import { kindOf } from "../../lib/kinds";
import { parseNode } from "../../lib/nodes";
import { DEFAULT_STATE, encodeState } from "../../lib/urlState";
import type { GraphNode } from "../../lib/graphView";
import { nodePath, withPrompt } from "../../routes/nodeHref";

/** The Debugger on the prompt, scoring `target` (the graph's top logit) when there is one. */
export function debuggerHref(prompt: string, target: string | null): string {
  return "/?" + encodeState({ ...DEFAULT_STATE, prompt, targets: target ? [target] : [] });
}

/** The Debugger tracing a pair node (`L5.attn_head.2@10<-3`) through its query and key; null when the
 * string is not a node. */
export function traceHref(prompt: string, trace: string, through = "query_key"): string | null {
  const node = parseNode(trace);
  if (!node) return null;
  return "/?" + encodeState({ ...DEFAULT_STATE, prompt, trace: node, through });
}

/** What a graph node's page link needs: the graph's prompt, the served kinds and the model's name. */
export interface PageContext {
  prompt: string;
  kinds: KindInfo[] | null;
  model: string | null;
}

/** A latent's node page on the prompt, at its position (latent kinds have no layer of their own). */
export function latentHref(n: GraphNode, prompt: string, kinds: KindInfo[] | null, model: string | null): string | null {
  if (n.type !== "latent" || !n.kind || n.index == null) return null;
  const layered = kindOf(kinds, n.kind)?.layered ?? false;
  return withPrompt(nodePath(n.kind, layered ? n.layer : null, n.index, model), prompt, n.pos);
}

/** The node page of the head a pair node string names (`L5.attn_head.2@10<-3`), on the prompt at the
 * query position. */
export function headHref(trace: string, prompt: string, model: string | null): string | null {
  const node = parseNode(trace);
  if (!node || node.index == null) return null;
  return withPrompt(nodePath(node.kind, node.layer ?? null, node.index, model), prompt, node.token);
}

/** A file name for the Neuronpedia export. */
export function slugOf(prompt: string): string {
  const s = prompt.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40).replace(/-+$/, "");
  return "mechscope-" + (s || "graph");
}
