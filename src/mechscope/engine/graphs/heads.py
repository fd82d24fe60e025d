"""Attention edges explained: which heads carry an edge of the graph, and through which
(query, key) pair, so that the Debugger's Q/K tracing can say why the head attends there.

In the frozen model an edge is a sum over paths, and every path that moves information between
positions passes through attention heads. Each entry ``pattern[h, q, k]`` of a layer is one edge
of the frozen model's own linear graph, and a path crosses a layer at most once, so the part of
the graph edge that passes through that entry is exactly

    pattern[h, q, k] * (dv_k . g_q)

where ``dv_k`` is the change the source makes to head h's value at key k (the source removed
from a frozen forward, everything else written back from the clean run) and ``g_q`` the
gradient of the target at the head's output at query q (one backward). A head's share is the
sum over its entries: the part of the edge that disappears when its pattern is zeroed. The pair
with the largest share is the one to trace through the head's query and key. One copy with every
candidate head zeroed gives the part of the edge that passes through attention at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mechscope.engine.graphs.build import Graph
from mechscope.engine.graphs.replacement import Target, linearize, node_site, transcoders
from mechscope.engine.kinds import kinds_of
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.hooks import HookFn


@dataclass(frozen=True)
class PairShare:
    query: int
    key: int
    share: float  # the part of the edge through this entry of the head's pattern
    trace: str | None  # the Debugger node of this (query, key) pair, to trace through Q and K


@dataclass(frozen=True)
class HeadShare:
    layer: int
    head: int
    share: float
    pairs: list[PairShare]


@dataclass(frozen=True)
class EdgeHeads:
    weight: float
    through_attention: float  # the part of the edge through any head (all patterns zeroed)
    heads: list[HeadShare]


def _endpoints(model: HookedDecoder, g: Graph, source: int, target: int) -> tuple[int, int, Target]:
    """(first layer, last layer + 1) of the heads that can carry the edge, and the target's row."""
    src, tgt = g.locate(source), g.locate(target)
    if src.type == "logit":
        raise InputError(f"node {source} is a logit; an edge's source is a latent, an error or a token")
    src_layer = -1 if src.layer is None else src.layer  # a token: the embedding, before every layer
    if tgt.type == "latent":
        assert tgt.layer is not None and tgt.index is not None
        encoder = transcoders(model)[tgt.layer].encoder_columns(torch.tensor([tgt.index]))[0]
        row = Target(tgt.layer, tgt.pos, encoder)
        # A layer's MLP reads after its attention, except with parallel residual (both read resid_pre).
        last = tgt.layer if model.cfg.parallel_residual else tgt.layer + 1
    elif tgt.type == "logit":
        w_u = model.W_U.detach().float()
        row, last = Target(None, tgt.pos, w_u[tgt.index] - w_u.mean(0)), g.n_layers
    else:
        raise InputError(f"node {target} is an {tgt.type}; an edge's target is a latent or a logit")
    return src_layer + 1, last, row


def _head_kind_node(model: HookedDecoder, layer: int, head: int, q: int, k: int) -> str | None:
    """The Debugger's name of head ``head``'s (q, k) pair: the kind whose pattern is this layer's."""
    point = f"blocks.{layer}.attn.pattern"
    for kind in kinds_of(model):
        if (
            kind.pattern_point is not None
            and kind.pairs
            and kind.layered
            and kind.pattern_point(layer) == point
        ):
            return f"L{layer}.{kind.name}.{head}@{q}<-{k}"
    return None


def clean_state(model: HookedDecoder, tokens: list[int]) -> dict[str, torch.Tensor]:
    """What the frozen model holds, from the clean run: every norm scale and attention pattern,
    and every transcoder's latents and error term."""
    names = [n for n in model.hook_points if n.endswith((".scale", "attn.pattern"))]
    for tc in transcoders(model):
        names += [tc.point("acts"), tc.point("error")]
    got: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hp: object) -> torch.Tensor:
        got[hp.name] = x.detach()  # type: ignore[attr-defined]
        return x

    with torch.no_grad(), model.hooks(fwd=[(n, keep) for n in names]):
        model(torch.tensor([tokens], device=model.device))
    return got


def entry_shares(
    model: HookedDecoder, g: Graph, source: int, row: Target, layers: range, clean: dict[str, torch.Tensor]
) -> dict[int, torch.Tensor]:
    """(head, query, key) per layer of ``layers``: the part of the edge through each pattern entry."""
    t = g.n_pos
    tcs = transcoders(model)
    removed = node_site(tcs, g.locate(source))
    got: dict[str, torch.Tensor] = {}

    def put(x: torch.Tensor, hp: object) -> torch.Tensor:
        name = hp.name  # type: ignore[attr-defined]
        v = (clean[name] if name in clean else x.detach()[:1]).expand_as(x).clone()
        if name == removed[0]:
            v[(1, *removed[1])] = 0  # copy 1: the source removed
        if name == "blocks.0.resid_pre":
            v.requires_grad_(True)
        return v

    def keep(x: torch.Tensor, hp: object) -> torch.Tensor:
        got[hp.name] = x  # type: ignore[attr-defined]
        return x

    out_point = "ln_final.out" if row.layer is None else tcs[row.layer].input_point
    hooks = [(n, put) for n in [*clean, "blocks.0.resid_pre"]]
    hooks += [(f"blocks.{L}.attn.{w}", keep) for L in layers for w in ("v", "z")] + [(out_point, keep)]
    tokens = torch.tensor([g.tokens], device=model.device).expand(2, t)
    with torch.enable_grad(), model.hooks(fwd=hooks):
        model(tokens, logits_from=-1)
    out = got[out_point]
    seed = torch.zeros_like(out)
    seed[0, row.pos] = row.vector.to(out.dtype)
    zs = [got[f"blocks.{L}.attn.z"] for L in layers]
    grads = torch.autograd.grad([out], zs, [seed], allow_unused=True)
    shares = {}
    attn = model.block(layers.start).attn if len(layers) else None
    for L, gz in zip(layers, grads, strict=True):
        pattern = clean[f"blocks.{L}.attn.pattern"][0].float()  # (head, q, k)
        if gz is None:
            shares[L] = torch.zeros_like(pattern)
            continue
        v = got[f"blocks.{L}.attn.v"].detach().float()
        dv = v[0] - v[1]  # (k, kv_head, d_head): the source's part of each value
        assert attn is not None
        dv = attn.per_query_head(dv, dim=1)  # (k, head, d_head)
        shares[L] = pattern * torch.einsum("qhd,khd->hqk", gz[0].float(), dv)
    return shares


def _masked_edges(
    model: HookedDecoder, g: Graph, source: int, row: Target, masks: dict[int, torch.Tensor],
    clean: dict[str, torch.Tensor],
) -> torch.Tensor:  # fmt: skip
    """The edge in copies whose patterns are multiplied by ``masks[layer]`` (batch, head, pos,
    kv_pos). Every copy holds the clean run's scales and patterns: a zeroed entry changes the
    residual stream after it, which must not move the norms and patterns the graph froze."""
    batch = next(iter(masks.values())).shape[0]

    def put(name: str, m: torch.Tensor | None) -> HookFn:
        v = clean[name]
        return lambda x, _hp: (v * m.to(v.dtype) if m is not None else v).expand_as(x)

    extra = [(n, put(n, None)) for n in clean if n.endswith(".scale")]
    for layer in range(model.cfg.n_layers):
        point = f"blocks.{layer}.attn.pattern"
        extra.append((point, put(point, masks.get(layer))))
    lin = linearize(model, torch.tensor(g.tokens), batch, extra)
    rows = lin.rows([row] * batch)
    s, at = lin.sources, g.locate(source)
    if at.type == "latent":  # the graph's latent -> its column among the frozen forward's sources
        col = int(((s.layer == at.layer) & (s.pos == at.pos) & (s.index == at.index)).nonzero()[0])
    else:  # errors and tokens have the same order in both
        col = s.n_features + (source - g.n_features)
    return rows[:, col]


def explain_edge(model: HookedDecoder, g: Graph, source: int, target: int, top: int = 3) -> EdgeHeads:
    """The heads carrying the edge ``source -> target`` (graph node numbers) with their shares,
    and for the ``top`` heads the (query, key) pairs carrying most of it."""
    first, last, row = _endpoints(model, g, source, target)
    cfg = model.cfg
    t = g.n_pos
    if last <= max(first, 0):  # no layer in between: no head can carry it
        return EdgeHeads(float(g.adjacency[target, source]), 0.0, [])
    span = range(max(first, 0), last)
    clean = clean_state(model, g.tokens)
    shares = entry_shares(model, g, source, row, span, clean)
    masks = {layer: torch.ones(2, cfg.n_heads, 1, 1) for layer in span}
    for layer in span:
        masks[layer][1] = 0  # copy 1: every candidate head zeroed
    edges = _masked_edges(model, g, source, row, masks, clean)
    per_head = torch.stack([shares[layer].sum((1, 2)) for layer in span])  # (layer, head)
    order = per_head.flatten().abs().argsort(descending=True)
    out: list[HeadShare] = []
    for i in order[:top].tolist():
        li, h = divmod(i, cfg.n_heads)
        layer = span[li]
        entries = shares[layer][h]  # (q, k)
        best = [
            j
            for j in entries.flatten().abs().argsort(descending=True)[:3].tolist()
            if float(entries.flatten()[j]) != 0
        ]
        pairs = [divmod(j, t) for j in best]
        out.append(HeadShare(layer, h, float(per_head[li, h]), [
            PairShare(q, k, float(entries[q, k]), _head_kind_node(model, layer, h, q, k)) for q, k in pairs
        ]))  # fmt: skip
    return EdgeHeads(float(edges[0]), float(edges[0] - edges[1]), out)
