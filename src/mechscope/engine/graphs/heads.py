"""Attention edges explained: which heads carry an edge of the graph, and through which
(query, key) pair, so that the Debugger's Q/K tracing can say why the head attends there.

In the frozen model an edge is a sum over paths, and every path that moves information between
positions passes through attention heads. The share of head h is the part of the edge that
disappears when h's (frozen) pattern is zeroed: the paths through h. One batched frozen forward
holds one copy per candidate head (heads between the source's write and the target's read),
and one backward reads the edge in every copy. For the heads with the largest shares, a second
pass zeroes one (query, key) entry of the pattern per copy: the pair carrying most of the edge
is the one to trace through the head's query and key.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mechscope.engine.graphs.build import Graph
from mechscope.engine.graphs.replacement import Target, linearize, transcoders
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


def _endpoints(model: HookedDecoder, g: Graph, source: int, target: int) -> tuple[int, int, int, int, Target]:
    """(first layer, last layer + 1) of the heads that can carry the edge, the source's and the
    target's positions, and the target's row."""
    f, t = g.n_features, g.n_pos
    n_err = g.n_errors
    if source < f:
        src_layer, src_pos = int(g.feature_layer[source]), int(g.feature_pos[source])
    elif source < f + n_err:
        src_layer, src_pos = divmod(source - f, t)
    elif source < f + n_err + t:
        src_layer, src_pos = -1, source - f - n_err
    else:
        raise InputError(f"node {source} is a logit; an edge's source is a latent, an error or a token")
    layers = transcoders(model)
    if target < f:
        tl, tp, ti = int(g.feature_layer[target]), int(g.feature_pos[target]), int(g.feature_index[target])
        row = Target(tl, tp, layers[tl].encoder_columns(torch.tensor([ti]))[0])
        # A layer's MLP reads after its attention, except with parallel residual (both read resid_pre).
        last = tl if model.cfg.parallel_residual else tl + 1
    elif target >= g.n_nodes - g.n_logits:
        w_u = model.W_U.detach().float()
        tok = g.logit_tokens[target - (g.n_nodes - g.n_logits)]
        row, tp, last = Target(None, t - 1, w_u[tok] - w_u.mean(0)), t - 1, g.n_layers
    else:
        raise InputError(f"node {target} is an error or a token; an edge's target is a latent or a logit")
    return src_layer + 1, last, src_pos, tp, row


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
    """Every norm scale and attention pattern of the clean run: what the frozen model holds."""
    names = [n for n in model.hook_points if n.endswith((".scale", "attn.pattern"))]
    got: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hp: object) -> torch.Tensor:
        got[hp.name] = x.detach()  # type: ignore[attr-defined]
        return x

    with torch.no_grad(), model.hooks(fwd=[(n, keep) for n in names]):
        model(torch.tensor([tokens], device=model.device))
    return got


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
    f = g.n_features
    if source < f:  # the graph's latent -> its column among the frozen forward's sources
        s = lin.sources
        hit = ((s.layer == g.feature_layer[source]) & (s.pos == g.feature_pos[source])
               & (s.index == g.feature_index[source])).nonzero()  # fmt: skip
        col = int(hit[0])
    else:
        col = lin.sources.n_features + (source - f)
    return rows[:, col]


def explain_edge(model: HookedDecoder, g: Graph, source: int, target: int, top: int = 3) -> EdgeHeads:
    """The heads carrying the edge ``source -> target`` (graph node numbers) with their shares,
    and for the ``top`` heads the (query, key) pairs carrying most of it."""
    first, last, sp, tp, row = _endpoints(model, g, source, target)
    cfg = model.cfg
    heads = [(layer, h) for layer in range(max(first, 0), last) for h in range(cfg.n_heads)]
    t = g.n_pos
    weight = float(g.adjacency[target, source])
    if not heads:
        return EdgeHeads(weight, 0.0, [])
    b = len(heads) + 2  # copy 0: nothing removed; the last: every candidate head removed
    masks = {layer: torch.ones(b, cfg.n_heads, 1, 1) for layer in range(max(first, 0), last)}
    for j, (layer, h) in enumerate(heads, 1):
        masks[layer][j, h] = 0
        masks[layer][-1, h] = 0
    clean = clean_state(model, g.tokens)
    edges = _masked_edges(model, g, source, row, masks, clean)
    shares = edges[0] - edges[1:-1]
    order = shares.abs().argsort(descending=True)
    out: list[HeadShare] = []
    for i in order[:top].tolist():
        layer, h = heads[i]
        pairs = [(q, k) for q in range(sp, tp + 1) for k in range(sp, q + 1)]
        pm = torch.ones(len(pairs) + 1, cfg.n_heads, t, t)
        for j, (q, k) in enumerate(pairs, 1):
            pm[j, h, q, k] = 0
        pe = _masked_edges(model, g, source, row, {layer: pm}, clean)
        ps = pe[0] - pe[1:]
        best = [j for j in ps.abs().argsort(descending=True)[:3].tolist() if float(ps[j]) != 0]
        out.append(HeadShare(layer, h, float(shares[i]), [
            PairShare(pairs[j][0], pairs[j][1], float(ps[j]), _head_kind_node(model, layer, h, *pairs[j]))
            for j in best
        ]))  # fmt: skip
    return EdgeHeads(float(edges[0]), float(edges[0] - edges[-1]), out)
