"""Attention heads: a head at a query token, and each of its (query, key) pairs.

A head's activation at a query is ``|z|``, the norm of its weighted values there. A pair node
``L5.attn_head.2@10<-3`` is one attention probability and what it carries, ``p[q, k] W_O,h v[k]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch

from mechscope.engine.kinds.base import Collation, Kind, Site, TokenRow, Trace, get_kind, kinds_of
from mechscope.engine.metrics import Context, Metrics, empty
from mechscope.engine.objective import Objective, detach_hook
from mechscope.errors import InputError
from mechscope.models.hooks import HookFn
from mechscope.models.weights import head_write, layer_weights

if TYPE_CHECKING:
    from mechscope.engine.nodes import Node
    from mechscope.models.decoder import HookedDecoder


def _hook(layer: int) -> str:
    return f"blocks.{layer}.attn.z"


def _pattern(layer: int) -> str:
    return f"blocks.{layer}.attn.pattern"


def _activations(z: torch.Tensor) -> torch.Tensor:
    """(..., pos, head, d_head) -> (..., pos, head): the norm of each head's weighted values."""
    return z.float().norm(dim=-1)


def _points(model: HookedDecoder) -> tuple[list[str], list[str]]:
    acts, grads = [], []
    for i in range(model.cfg.n_layers):
        b = f"blocks.{i}"
        acts += [_pattern(i), f"{b}.attn.v", _hook(i)]
        grads.append(_pattern(i))
        if model.cfg.sandwich_norms:
            acts.append(f"{b}.ln1_post.scale")
    return acts, grads


def _metrics(ctx: Context) -> Metrics:
    """Heads summed over keys (layer, head, pos), with pairs (layer, head, pos, kv_pos).

    Per-pair writes ``p[q, k] * W_O,h v[k]`` are never formed: their norms come from each
    head's Gram matrix and their direct effects from the gradient projected into head space.
    """
    cfg, n, reached = ctx.model.cfg, ctx.n, ctx.reached
    layers, heads = cfg.n_layers, cfg.n_heads
    p_act, p_write, p_te = (empty(layers, heads, n, n) for _ in range(3))
    p_de = torch.zeros(layers, heads, n, n)
    h_act, h_write, h_te = (empty(layers, heads, n) for _ in range(3))
    h_de = torch.zeros(layers, heads, n)
    weights = layer_weights(ctx.model)
    g = ctx.g_start.float()[reached]
    for i in range(layers):
        name = _pattern(i)
        if not ctx.ran(name) or not ctx.upstream(2 * i + 1):
            for t in (p_act, p_write, p_te, h_act, h_write, h_te):
                t[i] = 0
            continue
        lw = weights[i]
        p = ctx.rec.acts[name].float()  # (head, pos, kv_pos)
        v = ctx.model.block(i).attn.per_query_head(
            ctx.rec.acts[f"blocks.{i}.attn.v"].float(), 1
        )  # (kv_pos, head, d_head)
        z = ctx.rec.acts[_hook(i)].float()  # (pos, head, d_head)
        scale = ctx.post_scale(i, "ln1_post")
        v_norm = lw.write_norm(v).T  # (head, kv_pos)
        z_norm = lw.write_norm(z).T  # (head, pos)
        g_head = torch.einsum("qd,dhe->qhe", g, lw.w_o)  # (reached, head, d_head)
        de_reached = p[:, reached] * torch.einsum("qhe,khe->hqk", g_head, v)  # (head, reached, kv_pos)
        if scale is not None:
            de_reached /= scale[reached][None]
            z_norm /= scale[:, 0][None]
        p_act[i] = p
        torch.mul(p, v_norm[:, None, :], out=p_write[i])
        if scale is not None:
            p_write[i] /= scale[None]
        p_de[i][:, reached] = de_reached
        torch.mul(p, ctx.rec.grads[name].float(), out=p_te[i])
        h_act[i] = _activations(z).T
        h_write[i] = z_norm
        h_de[i][:, reached] = de_reached.sum(-1)
        torch.sum(p_te[i], -1, out=h_te[i])
    return Metrics(h_act, h_write, h_de, h_te, pairs=Metrics(p_act, p_write, p_de, p_te))


def _site(model: HookedDecoder, layer: int | None, index: int | list[int] | None, key: int | None) -> Site:
    assert layer is not None
    if not isinstance(index, int):
        raise InputError("target.index: an attention head target takes one head index")
    if not 0 <= index < model.cfg.n_heads:
        raise InputError(f"target.index {index} out of range 0..{model.cfg.n_heads - 1}")
    if key is not None:  # (batch, head, pos, kv_pos): one probability
        return Site(_pattern(layer), (key,), 1, lead=(index,), pair=True)
    return Site(_hook(layer), (index, slice(None)), model.cfg.d_head)


def _trace(
    model: HookedDecoder,
    node: Node,
    through: str | None,
    downstream: Node | None,
    freeze: bool,
    **common: object,
) -> Objective:
    """A pair's score through its query, key or both (default); a head's value (the only choice
    for a head summed over keys), projected on a later neuron's input direction when given."""
    cfg = model.cfg
    assert node.layer is not None and node.index is not None
    b = f"blocks.{node.layer}"
    h, q, k = node.index, node.token, node.key
    through = through or ("query_key" if k is not None else "value")
    hooks: list[tuple[str, HookFn]] = []
    if freeze:
        hooks.append((f"{b}.ln1.scale", detach_hook))
        if cfg.qk_norm:
            hooks += [(f"{b}.attn.q_norm.scale", detach_hook), (f"{b}.attn.k_norm.scale", detach_hook)]
    start = f"{b}.resid_pre"

    if through in ("query", "key", "query_key"):
        if k is None:
            raise InputError(
                f"tracing {node} through {through!r} needs a key position (a query-key pair, e.g. '{node}<-0')"
            )
        if through == "query":
            hooks.append((f"{b}.attn.k", detach_hook))
        elif through == "key":
            hooks.append((f"{b}.attn.q", detach_hook))
        name = f"{b}.attn.scores"

        def score_value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
            return acts[name][..., 0, h, q, k]

        return Objective(
            start=start, value=score_value, read=(name,), stop=name, fwd_hooks=hooks,
            linear=freeze and through != "query_key" and not cfg.attn_softcap,
            **common,  # type: ignore[arg-type]
        )  # fmt: skip
    if through != "value":
        raise InputError(
            f"an attention head is traced through query, key, query_key or value, not {through!r}"
        )
    u = _downstream_direction(model, node, downstream)
    hooks.append((_pattern(node.layer), detach_hook))  # only the values carry gradient
    kv = model.block(node.layer).attn.kv_head(h)
    names = (f"{b}.attn.v", _pattern(node.layer))
    layer = node.layer

    def value_value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        v, p = (
            acts[names[0]][..., 0, :, kv, :],
            acts[names[1]][..., 0, h, q, :],
        )  # (..., kv_pos, d_head), (..., kv_pos)
        z = p[..., k, None] * v[..., k, :] if k is not None else (p[..., :, None] * v).sum(-2)
        write = head_write(model, layer, h, z)  # (..., d_model)
        direction = (
            u
            if u is not None
            else write.detach() / write.detach().norm(dim=-1, keepdim=True).clamp_min(1e-12)
        )
        return (write * direction).sum(-1)

    return Objective(
        start=start, value=value_value, read=names, stop=names[1], fwd_hooks=hooks,
        linear=freeze and u is not None,
        **common,  # type: ignore[arg-type]
    )  # fmt: skip


def _downstream_direction(model: HookedDecoder, node: Node, downstream: Node | None) -> torch.Tensor | None:
    """The residual direction a later unit reads (through its norm's gain); None for none."""
    if downstream is None:
        return None
    assert node.layer is not None
    kind = get_kind(downstream.kind, model)
    if kind.reader is None or downstream.layer is None or downstream.index is None:
        readers = ", ".join(k.name for k in _readers(model))
        raise InputError(
            f"value tracing projects on a downstream unit that reads the residual ({readers}); got {downstream}"
        )
    if not node.layer <= downstream.layer < model.cfg.n_layers:
        raise InputError(
            f"downstream node {downstream} must be in layer {node.layer}..{model.cfg.n_layers - 1}"
        )
    size = kind.size(model.cfg)
    if not 0 <= downstream.index < size:
        raise InputError(f"downstream node {downstream}: index out of range 0..{size - 1}")
    return kind.reader(model, downstream.layer, downstream.index).direction()


def _readers(model: HookedDecoder) -> list[Kind]:
    return [k for k in kinds_of(model) if k.reader is not None]


def _write(model: HookedDecoder, node: Node, ids: list[int] | None) -> torch.Tensor:
    """What the head wrote on ``ids`` at its query token (of one pair when the node has a key)."""
    if ids is None:
        raise InputError("a head's write depends on the prompt: give one")
    assert node.layer is not None and node.index is not None
    b = f"blocks.{node.layer}.attn"
    attn = model.block(node.layer).attn
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]), names=[f"{b}.v", f"{b}.pattern"])
    v = cache[f"{b}.v"][0, :, attn.kv_head(node.index)].float()  # (kv_pos, d_head)
    p = cache[f"{b}.pattern"][0, node.index, node.token].float()  # (kv_pos,)
    z = p[node.key] * v[node.key] if node.key is not None else p @ v
    return head_write(model, node.layer, node.index, z)


class HeadPairs(NamedTuple):
    """One head on one sequence, every (query, key) pair: ``pattern`` the attention probabilities,
    ``write`` each pair's write norm ``p[q, k] · |W_O,h v_k|`` (what collation ranks a query's
    strongest key by), ``z_norm`` the head's activation ``|z|`` at each query."""

    pattern: torch.Tensor  # (pos, kv_pos), each row sums to 1 over keys <= query
    write: torch.Tensor  # (pos, kv_pos)
    z_norm: torch.Tensor  # (pos,)


def head_pairs(model: HookedDecoder, ids: list[int], layer: int, head: int) -> HeadPairs:
    """Head ``head`` of block ``layer`` on the token ids ``ids`` (one forward)."""
    cfg = model.cfg
    if not (0 <= layer < cfg.n_layers and 0 <= head < cfg.n_heads):
        raise InputError(
            f"head L{layer}.{head} does not exist: layers 0..{cfg.n_layers - 1}, heads 0..{cfg.n_heads - 1}"
        )
    b = f"blocks.{layer}.attn"
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]), names=[f"{b}.pattern", f"{b}.v", f"{b}.z"])
        p = cache[f"{b}.pattern"][0, head].float()  # (pos, kv_pos)
        v = model.block(layer).attn.per_query_head(cache[f"{b}.v"][0].float(), 1)  # (kv_pos, head, d_head)
        v_write = layer_weights(model)[layer].write_norm(v)[:, head]  # (kv_pos,): |W_O,h v_k|
        z_norm = _activations(cache[f"{b}.z"][0])[:, head]  # (pos,)
    return HeadPairs(pattern=p, write=p * v_write[None, :], z_norm=z_norm)


def _collation_points(layer: int) -> list[str]:
    b = f"blocks.{layer}.attn"
    return [f"{b}.v", f"{b}.pattern", f"{b}.z"]


def _feed(
    model: HookedDecoder, layer: int, stash: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """|z| per query, each query's strongest key (largest pair write), and the density counts: a
    head "at rest" parks its attention on the start token, so it is active where that is < 0.5."""
    b = f"blocks.{layer}.attn"
    p = stash[f"{b}.pattern"].float()  # (batch, head, pos, kv_pos)
    v = model.block(layer).attn.per_query_head(stash[f"{b}.v"].float(), 2)  # (batch, kv_pos, head, d_head)
    v_write = layer_weights(model)[layer].write_norm(v).transpose(1, 2)  # (batch, head, kv_pos): |W_O,h v|
    strongest = (p * v_write[:, :, None, :]).argmax(-1).transpose(1, 2)  # (batch, pos, head)
    active = (p[:, :, 1:, 0] < 0.5).sum((0, 2))  # (head,)
    return _activations(stash[_hook(layer)]), strongest, active


def _token_rows(m: Metrics) -> list[TokenRow]:
    assert m.pairs is not None
    pair = m.pairs

    def lst(x: torch.Tensor) -> list[float]:
        return [float(v) for v in x]

    return [
        TokenRow("attn_from", "attn from", "attention heads, by the token attending (query)",
                 lst(pair.direct_effect.sum((0, 1, 3))), lst(pair.total_effect.sum((0, 1, 3)))),
        TokenRow("attn_to", "attn to", "attention heads, by the token attended to (key)",
                 lst(pair.direct_effect.sum((0, 1, 2))), lst(pair.total_effect.sum((0, 1, 2)))),
    ]  # fmt: skip


KIND = Kind(
    name="attn_head",
    label="attention head",
    value_label="head output norm |z|",
    group="heads",
    layered=True,
    unit="head",
    size=lambda cfg: cfg.n_heads,
    rank=lambda layer: 2 * layer + 1,
    hook=_hook,
    activations=_activations,
    points=_points,
    metrics=_metrics,
    coords=("layer", "index", "token"),
    site=_site,
    trace=Trace(
        _trace,
        through=(("value", "V"),),
        pair_through=(("query", "Q"), ("key", "K"), ("query_key", "Q+K")),
    ),
    pairs=True,
    pair_coords=("layer", "index", "token", "key"),
    pair_group="pairs",
    pair_group_label="head pairs",
    pattern_point=_pattern,
    pair_view=head_pairs,
    write=_write,
    write_needs_prompt=True,
    collation=Collation(
        _collation_points,
        _feed,
        density="fraction of stream query tokens with attention to the start token < 0.5",
        density_positive=False,
    ),
    token_rows=_token_rows,
    verify=True,
)
