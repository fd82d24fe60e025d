"""Attribution graphs (docs/graphs.md): build and prune one, check it causally in the real
model, explain an edge by the heads that carry it, export it for Neuronpedia's viewer.

A graph takes seconds to minutes, so the model thread keeps the last few: the follow-up
requests (check, edge, export, another pruning) name the same prompt, target and
``max_features`` and reuse it."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter

from mechscope.engine.graphs import Graph, build_graph, to_neuronpedia
from mechscope.engine.graphs.build import MAX_FEATURES
from mechscope.engine.graphs.check import causal_check, top_nodes
from mechscope.engine.graphs.heads import explain_edge
from mechscope.engine.graphs.neuronpedia import api_ids, kept, node_ids
from mechscope.engine.graphs.replacement import transcoders
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.server import limits
from mechscope.server.deps import State
from mechscope.server.errors import FieldError
from mechscope.server.graph_schemas import (
    GraphCheckRequest,
    GraphCheckResponse,
    GraphCheckRow,
    GraphEdgeRequest,
    GraphEdgeResponse,
    GraphExportRequest,
    GraphLink,
    GraphNode,
    GraphRequest,
    GraphResponse,
    GraphScores,
    HeadShareOut,
    PairShareOut,
)

router = APIRouter(tags=["graphs"])
KEEP = 4  # graphs kept by the model thread
_graphs: OrderedDict[tuple[int, str, str, int], Graph] = OrderedDict()


def _check(state: State, req: GraphRequest) -> tuple[list[int], int]:
    """The request checked against the limits, before any model work: its target ids and the
    number of latents to visit."""
    lim = state.settings.limits
    try:
        transcoders(state.model)
    except InputError as e:
        raise FieldError(
            "prompt", f"{e} (serve with --sae DIR, or --sae transcoders for the preset)"
        ) from None
    n = limits.prompt_tokens(state.model, req.prompt, "prompt", lim)
    limits.at_most(n, lim.max_graph_tokens, "prompt", "max_graph_tokens")
    if req.max_features is not None:
        limits.at_most(req.max_features, lim.max_graph_features, "max_features", "max_graph_features")
    visit = req.max_features if req.max_features is not None else min(MAX_FEATURES, lim.max_graph_features)
    return _target(state, req), visit


def _target(state: State, req: GraphRequest) -> list[int]:
    if req.target is None:
        return []
    if isinstance(req.target, int):
        if not 0 <= req.target < state.model.cfg.d_vocab:
            raise FieldError(
                "target", f"target id {req.target} out of range 0..{state.model.cfg.d_vocab - 1}"
            )
        return [req.target]
    tok = state.model.tokenizer
    ids = tok.encode(req.target, add_bos=False) if tok is not None else []
    if not ids:
        raise FieldError("target", f"target {req.target!r} has no tokens")
    return ids[:1]


def _graph(model: HookedDecoder, req: GraphRequest, target: list[int], visit: int, check: Any) -> Graph:
    key = (id(model), req.prompt, ",".join(map(str, target)), visit)
    if key in _graphs:
        _graphs.move_to_end(key)
        return _graphs[key]
    tokens = model.to_tokens(req.prompt)[0][0].tolist()
    g = build_graph(model, tokens, target or None, visit, check=check)
    _graphs[key] = g
    while len(_graphs) > KEEP:
        _graphs.popitem(last=False)
    return g


def _number(g: Graph, ids: list[str], node: str, field: str) -> int:
    try:
        return ids.index(node)
    except ValueError:
        raise FieldError(field, f"{field}: no node {node!r} in this graph") from None


def graph_response(g: Graph, req: GraphRequest) -> GraphResponse:
    p = g.pruned(req.node_threshold, req.edge_threshold)
    shown, edges = kept(g, p)
    ids = api_ids(g)
    nodes = []
    for i in shown:
        at = g.locate(i)
        latent = at.type == "latent"
        if latent:
            label = f"L{at.layer} #{at.index}"
        elif at.type == "error":
            label = f"L{at.layer} error"
        else:
            label = g.token_strs[at.pos] if at.type == "token" else g.logit_strs[at.k]
        nodes.append(GraphNode(
            id=ids[i], number=i, influence=float(p.node_influence[i]), type=at.type, layer=at.layer, pos=at.pos,
            index=at.index, kind=g.kinds[at.layer] if latent and at.layer is not None else None,
            activation=float(g.activation[i]) if latent else None, label=label,
            probability=float(g.logit_probs[at.k]) if at.type == "logit" else None,
        ))  # fmt: skip
    keep = p.node_mask[: g.n_features]
    sub = g.subgraph_scores(keep)
    assert g.scores is not None
    return GraphResponse(
        prompt_tokens=g.token_strs, tokens=g.tokens, n_layers=g.n_layers, nodes=nodes,
        links=[GraphLink(source=ids[s], target=ids[d], weight=w) for s, d, w in edges],
        scores=GraphScores(replacement=g.scores.replacement, completeness=g.scores.completeness,
                           pruned_replacement=sub.replacement, pruned_completeness=sub.completeness),
        kept_node_influence=p.kept_node_influence, kept_edge_influence=p.kept_edge_influence,
        active_features=g.active_features, visited_features=g.n_features, timings=g.timings, elapsed_ms=0.0,
    )  # fmt: skip


@router.post("/graph")
async def graph(req: GraphRequest, state: State) -> GraphResponse:
    """The attribution graph of the prompt's next token, pruned: latents, errors, tokens, logits."""
    target, visit = _check(state, req)
    start = time.perf_counter()

    def run() -> GraphResponse:
        return graph_response(_graph(state.model, req, target, visit, state.worker.check_stop), req)

    result, cached = await state.worker.run("graph:" + req.model_dump_json(), run)
    return result.model_copy(update={"cached": cached, "elapsed_ms": (time.perf_counter() - start) * 1000})


@router.post("/graph/check")
async def graph_check(req: GraphCheckRequest, state: State) -> GraphCheckResponse:
    """Scale graph nodes in the real model (transcoders spliced in) one at a time and together;
    the graph's predicted change of the target logit against the measured one."""
    target, visit = _check(state, req)

    def run() -> GraphCheckResponse:
        g = _graph(state.model, req, target, visit, state.worker.check_stop)
        ids = api_ids(g)
        nums = [_number(g, ids, n, f"nodes.{i}") for i, n in enumerate(req.nodes)] or top_nodes(
            g, 20, req.node_threshold, req.edge_threshold
        )
        c = causal_check(state.model, g, nums, req.factor)
        return GraphCheckResponse(
            target=g.logit_strs[0], factor=c.factor,
            rows=[GraphCheckRow(id=ids[r.node], predicted=r.predicted, measured=r.measured) for r in c.rows],
            together_predicted=c.together_predicted, together_measured=c.together_measured,
            pearson=c.pearson, spearman=c.spearman,
        )  # fmt: skip

    result, _ = await state.worker.run("graph-check:" + req.model_dump_json(), run)
    return result


@router.post("/graph/edge")
async def graph_edge(req: GraphEdgeRequest, state: State) -> GraphEdgeResponse:
    """The heads that carry an edge, with their shares, and the (query, key) pairs to trace."""
    target, visit = _check(state, req)

    def run() -> GraphEdgeResponse:
        g = _graph(state.model, req, target, visit, state.worker.check_stop)
        ids = api_ids(g)
        e = explain_edge(
            state.model, g, _number(g, ids, req.source, "source"), _number(g, ids, req.sink, "sink")
        )
        heads = [HeadShareOut(layer=h.layer, head=h.head, share=h.share,
                              pairs=[PairShareOut(query=p.query, key=p.key, share=p.share, trace=p.trace)
                                     for p in h.pairs]) for h in e.heads]  # fmt: skip
        return GraphEdgeResponse(source=req.source, sink=req.sink, weight=e.weight,
                                 through_attention=e.through_attention, heads=heads)  # fmt: skip

    result, _ = await state.worker.run("graph-edge:" + req.model_dump_json(), run)
    return result


@router.post("/graph/neuronpedia")
async def graph_export(req: GraphExportRequest, state: State) -> dict[str, Any]:
    """The pruned graph as Neuronpedia's graph JSON (metadata, qParams, nodes, links)."""
    target, visit = _check(state, req)

    def run() -> dict[str, Any]:
        g = _graph(state.model, req, target, visit, state.worker.check_stop)
        ours, theirs = api_ids(g), node_ids(g)
        to_np = dict(zip(ours, theirs, strict=True))
        for i, n in enumerate(req.pinned):
            if n not in to_np:
                raise FieldError(f"pinned.{i}", f"pinned.{i}: no node {n!r} in this graph")
        for i, group in enumerate(req.supernodes):
            for j, n in enumerate(group[1:], 1):  # [label, *node ids], as Neuronpedia writes them
                if n not in to_np:
                    raise FieldError(
                        f"supernodes.{i}.{j}", f"supernodes.{i}.{j}: no node {n!r} in this graph"
                    )
        return to_neuronpedia(g, req.slug, req.prompt, f"mechscope:{state.model.cfg.name}",
                              node_threshold=req.node_threshold, edge_threshold=req.edge_threshold,
                              pinned=[to_np[n] for n in req.pinned],
                              supernodes=[[s[0], *(to_np[n] for n in s[1:])] for s in req.supernodes if s])  # fmt: skip

    result, _ = await state.worker.run("graph-export:" + req.model_dump_json(), run)
    return result
