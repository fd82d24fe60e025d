"""A graph as the JSON that Neuronpedia's graph viewer (and circuit-tracer's local one) reads:
``{metadata, qParams, nodes, links}`` with their node-id conventions (docs/graphs.md lists them):
a latent ``"{layer}_{index}_{pos}"``, an error ``"0_{layer}_{pos}"``, a token ``"E_{id}_{pos}"``,
a logit ``"{n_layers + 1}_{id}_{pos}"``. Only the pruned graph's connected nodes are written,
with every token and logit."""

from __future__ import annotations

import math
from typing import Any

from mechscope.engine.graphs.build import Graph
from mechscope.engine.graphs.influence import Pruned


def node_ids(g: Graph) -> list[str]:
    """Every node's Neuronpedia id, in the graph's node order."""
    out = [
        f"{int(layer)}_{int(i)}_{int(p)}"
        for layer, p, i in zip(g.feature_layer, g.feature_pos, g.feature_index, strict=True)
    ]
    out += [f"0_{layer}_{p}" for layer in range(g.n_layers) for p in range(g.n_pos)]
    out += [f"E_{tok}_{p}" for p, tok in enumerate(g.tokens)]
    out += [f"{g.n_layers + 1}_{tok}_{g.n_pos - 1}" for tok in g.logit_tokens]
    return out


def api_ids(g: Graph) -> list[str]:
    """Ids unique within a graph, for the API and the web app: Neuronpedia's, except that an error
    is ``err_{layer}_{pos}`` (its Neuronpedia id ``0_{layer}_{pos}`` can be a layer-0 latent's)."""
    ids = node_ids(g)
    e0 = g.n_features
    for layer in range(g.n_layers):
        for p in range(g.n_pos):
            ids[e0 + layer * g.n_pos + p] = f"err_{layer}_{p}"
    return ids


def kept(g: Graph, p: Pruned) -> tuple[list[int], list[tuple[int, int, float]]]:
    """The pruned graph as shown: its connected nodes plus every token and logit (node numbers),
    and its edges (source, target, weight)."""
    dst, src = p.edge_mask.nonzero(as_tuple=True)
    weights = g.adjacency[dst, src].tolist()
    edges = list(zip(src.tolist(), dst.tolist(), weights, strict=True))
    used = {s for s, _, _ in edges} | {d for _, d, _ in edges}
    first_token = g.n_features + g.n_errors
    nodes = [i for i in p.node_mask.nonzero().flatten().tolist() if i in used or i >= first_token]
    return nodes, edges


def to_neuronpedia(
    g: Graph,
    slug: str,
    prompt: str,
    scan: str,
    pruned: Pruned | None = None,
    node_threshold: float = 0.8,
    edge_threshold: float = 0.98,
    pinned: list[str] | None = None,
    supernodes: list[list[str]] | None = None,
    clerps: dict[int, str] | None = None,
) -> dict[str, Any]:
    """The viewer's JSON for ``g`` pruned at the thresholds (or by ``pruned``); ``clerps`` are
    labels by node number (explanations of latents)."""
    p = pruned or g.pruned(node_threshold, edge_threshold)
    ids = node_ids(g)
    offset = 10 ** math.ceil(math.log10(max(2, int(g.feature_index.max()) + 1))) if g.n_features else 0
    clerps = clerps or {}
    shown, edges = kept(g, p)
    infl = p.node_influence
    nodes = []
    for i in shown:
        at = g.locate(i)
        base: dict[str, Any] = {"node_id": ids[i], "influence": float(infl[i]), "run_idx": 0,
                                "reverse_ctx_idx": 0, "token_prob": 0.0, "is_target_logit": False,
                                "clerp": clerps.get(i, ""), "activation": None, "ctx_idx": at.pos}  # fmt: skip
        if at.type == "latent":
            assert at.layer is not None and at.index is not None
            base.update(feature=at.index + offset * at.layer, layer=str(at.layer),
                        feature_type="cross layer transcoder", jsNodeId=f"{at.layer}_{at.index}-0",
                        activation=float(g.activation[i]))  # fmt: skip
        elif at.type == "error":
            base.update(feature=-1, layer=str(at.layer), feature_type="mlp reconstruction error",
                        jsNodeId=f"{at.layer}_{at.pos}-0")  # fmt: skip
        elif at.type == "token":
            base.update(
                feature=at.pos, layer="E", feature_type="embedding", jsNodeId=f"E_{at.index}-{at.pos}"
            )
        else:
            prob = float(g.logit_probs[at.k])
            base.update(feature=at.index, layer=str(g.n_layers + 1), feature_type="logit", token_prob=prob,
                        is_target_logit=at.k == 0, jsNodeId=f"L_{at.index}-{at.pos}",
                        clerp=f'Output "{g.logit_strs[at.k]}" (p={prob:.3f})')  # fmt: skip
        nodes.append(base)
    links = [{"source": ids[s], "target": ids[d], "weight": w} for s, d, w in edges]
    return {
        "metadata": {
            "slug": slug, "scan": scan, "transcoder_list": [], "prompt_tokens": g.token_strs,
            "prompt": prompt, "node_threshold": node_threshold, "schema_version": 1,
        },
        "qParams": {
            "pinnedIds": list(pinned or []), "supernodes": [list(s) for s in supernodes or []],
            "linkType": "both", "clickedId": "", "sg_pos": "",
        },
        "nodes": nodes,
        "links": links,
    }  # fmt: skip
