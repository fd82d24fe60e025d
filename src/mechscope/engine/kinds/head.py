"""Attention heads: a head at a query token, and each of its (query, key) pairs.

A head's activation at a query is ``|z|``, the norm of its weighted values there. A pair node
``L5.attn_head.2@10<-3`` is one attention probability and what it carries, ``p[q, k] W_O,h v[k]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch

from mechscope.engine.kinds.base import Collation, Kind, Site, TokenRow, Trace, get_kind, kinds_of
from mechscope.engine.metrics import Context, KindMetrics, LayerTable, Metrics, Step, stack_layers
from mechscope.engine.objective import Objective, detach_hook
from mechscope.errors import InputError
from mechscope.models.components import Attention, AttentionContext
from mechscope.models.hooks import HookFn
from mechscope.models.weights import head_write, layer_stack, layer_weights

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
    """Queries, keys, values and z, and z's gradient: enough to rebuild every pair's metrics, so
    the forward keeps its fused attention (a recorded pattern would force the explicit path and
    hold two (head, pos, pos) tensors per layer)."""
    acts, grads = [], []
    for i in range(model.cfg.n_layers):
        b = f"blocks.{i}.attn"
        acts += [f"{b}.q", f"{b}.k", f"{b}.v", _hook(i)]
        grads.append(_hook(i))
        if model.cfg.sandwich_norms:
            acts.append(f"blocks.{i}.ln1_post.scale")
    return acts, grads


def _edited_points(model: HookedDecoder) -> tuple[list[str], list[str]]:
    """With interventions, the pattern and its gradient as the edited run made them (an
    ablated head's z no longer equals its pattern times its values); this forces the explicit
    attention path."""
    acts, grads = _points(model)
    patterns = [_pattern(i) for i in range(model.cfg.n_layers)]
    return acts + patterns, grads + patterns


def _metrics(ctx: Context) -> Metrics:
    """Heads summed over keys (layer, head, pos), with pairs (layer, head, pos, kv_pos).

    Per-pair writes ``p[q, k] * W_O,h v[k]`` are never formed: their norms come from each
    head's Gram matrix and their direct effects from the gradient projected into head space.
    Pair metrics are never stored either (:class:`PairTable`); a head's are its pairs' sums.
    """
    cfg, n = ctx.model.cfg, ctx.n
    h_act, h_write, h_de, h_te = (torch.zeros(cfg.n_layers, cfg.n_heads, n) for _ in range(4))
    active = [i for i in range(cfg.n_layers) if ctx.ran(_hook(i)) and ctx.upstream(2 * i + 1)]
    pairs = PairTable(ctx, active)

    def heads(step: Step, t: dict[str, torch.Tensor]) -> None:
        rows, queries = step.rows, slice(step.start, step.stop)
        h_act[rows, :, queries], h_write[rows, :, queries] = t["head_activation"], t["head_write"]
        h_de[rows[:, None], :, step.reached] = t["direct_effect"].sum(-1).transpose(1, 2)
        h_te[rows, :, queries] = t["total_effect"].sum(-1)

    pairs.run(heads)
    return Metrics(h_act, h_write, h_de, h_te, pairs=pairs)


def _by_key(attn: Attention, x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``x . v`` for every (query, key) of every query head: x (layer, pos, head, d_head),
    ``values`` (``attn.grouped_keys`` of v) -> (layer, head, pos, kv_pos). Grouped as the model's
    explicit attention groups its scores, so values are neither repeated per query head nor
    copied, and the output is written in place."""
    c, t, h, _ = x.shape
    return torch.bmm(attn.grouped_queries(x), values).view(c, h, t, values.shape[-1])


@dataclass
class _Chunk:
    """What every query window of a run of layers shares, prepared once: every key and value."""

    layers: list[int]
    attn: Attention  # the first layer's: the heads' layout, which every layer shares
    q: torch.Tensor  # (layer, pos, head, d_head); z and dz (its gradient) alike
    z: torch.Tensor
    dz: torch.Tensor | None  # None in an edited run, which records the pattern's gradient
    # (layer, kv_head, d_head, kv_pos): stored so that the score's (batch, d_head, kv_pos) view of
    # keys 0:b is no copy (the hook layout, (layer, kv_pos, kv_head, d_head), is a permuted view)
    k_t: torch.Tensor
    values: torch.Tensor  # (layer * kv_head, d_head, kv_pos): attn.grouped_keys(v), for _by_key
    v_norm: torch.Tensor  # (layer, head, kv_pos): |W_O,h v_k|, what a unit of attention writes


class PairTable(LayerTable):
    """Every (query, key) pair's metrics (layer, head, pos, kv_pos), rebuilt from the
    recording's queries, keys, values and z gradients with the model's own attention maths
    (``Attention.pattern_of``): the pattern's gradient is ``dvalue/dz . v``, as z = pattern @ v.
    ``sums`` are over queries: what each key receives. Scored in windows of queries, each
    against the keys up to its last query (the causal triangle: ``LayerTable.triangle``).
    """

    def __init__(self, ctx: Context, active: list[int]) -> None:
        cfg, n = ctx.model.cfg, ctx.n
        super().__init__((cfg.n_layers, cfg.n_heads, n, n), active, (0, 1), ctx.reached, 1, triangle=(1, 2))
        self.ctx = ctx
        self._stack = layer_stack(ctx.model)
        self._contexts: dict[tuple[int, int], AttentionContext] = {}
        self._last: _Chunk | None = None  # the windows of one chunk are consecutive steps

    def score(self, step: Step) -> dict[str, torch.Tensor]:
        ctx, model = self.ctx, self.ctx.model
        rec, layers = ctx.rec, step.layers
        a, b = step.start, step.stop  # queries a:b, keys 0:b
        chunk = self._chunk(layers)
        values = chunk.values[..., :b]
        z = chunk.z[:, a:b]  # (layer, pos, head, d_head)
        p = self._patterns(chunk, a, b)  # (layer, head, pos, kv_pos)
        if chunk.dz is None:  # an edited run (_edited_points)
            te = p * stack_layers([rec.grads[_pattern(i)][:, a:b, :b] for i in layers])
        else:
            te = _by_key(chunk.attn, chunk.dz[:, a:b], values).mul_(p)
        z_norm = self._stack.write_norm(z, layers).transpose(1, 2)  # (layer, head, pos)
        g_head = self._stack.head_readout(
            ctx.g_start.float()[step.reached], layers
        )  # (layer, reached, head, d_head)
        # index_select: advanced indexing of a middle dim was 2 ms for one position at 128 tokens
        de = p.index_select(2, step.reached - a) * _by_key(
            chunk.attn, g_head, values
        )  # (layer, head, reached, kv_pos)
        write = p * chunk.v_norm[:, :, None, :b]
        if model.cfg.sandwich_norms:
            scale = torch.stack([rec.acts[f"blocks.{i}.ln1_post.scale"].float()[:, 0] for i in layers])
            de /= scale[:, None, step.reached, None]
            z_norm /= scale[:, None, a:b]
            write /= scale[:, None, a:b, None]
        return {
            "activation": p,
            "write_norm": write,
            "direct_effect": de,
            "total_effect": te,
            "head_activation": _activations(z).transpose(1, 2),
            "head_write": z_norm,
        }

    def _chunk(self, layers: list[int]) -> _Chunk:
        if self._last is not None and self._last.layers == layers:
            return self._last
        self._last = None  # the previous chunk's tensors go before this one's are stacked
        rec, attn = self.ctx.rec, self.ctx.model.block(layers[0]).attn
        edited = _pattern(layers[0]) in rec.grads

        def stacked(point: str, grads: bool = False) -> torch.Tensor:
            return stack_layers(
                [(rec.grads if grads else rec.acts)[f"blocks.{i}.attn.{point}"] for i in layers]
            )

        k_t = stacked("k").permute(0, 2, 3, 1).contiguous()
        v = stacked("v")  # (layer, kv_pos, kv_head, d_head)
        v_norm = self._stack.write_norm(attn.per_query_head(v, 2), layers).transpose(1, 2)
        dz = None if edited else stacked("z", grads=True)
        self._last = _Chunk(layers, attn, stacked("q"), stacked("z"), dz, k_t, attn.grouped_keys(v), v_norm)
        return self._last

    def _patterns(self, chunk: _Chunk, a: int, b: int) -> torch.Tensor:
        """(layer, head, pos, kv_pos) of queries a:b and keys 0:b: as recorded in an edited run,
        else rebuilt, the layers of one attention type (full, sliding) in one call (as a batch:
        the maths has no weights)."""
        rec, model, layers = self.ctx.rec, self.ctx.model, chunk.layers
        if _pattern(layers[0]) in rec.acts:
            return stack_layers([rec.acts[_pattern(i)][:, a:b, :b] for i in layers])
        if (a, b) not in self._contexts:  # queries a:b are the last of keys 0:b
            self._contexts[a, b] = model.attention_context(torch.arange(a, b)[None], None, first=a, past=a)
        attention = self._contexts[a, b]
        out: list[torch.Tensor] = [torch.empty(0)] * len(layers)
        by_type: dict[str, list[int]] = {}
        for j, i in enumerate(layers):
            by_type.setdefault(model.block(i).attn.layer_type, []).append(j)
        for js in by_type.values():
            every = len(js) == len(layers)
            q = chunk.q[:, a:b] if every else chunk.q[js, a:b]
            k = (chunk.k_t[..., :b] if every else chunk.k_t[js, ..., :b]).permute(0, 3, 1, 2)
            with torch.no_grad():
                p = model.block(layers[js[0]]).attn.pattern_of(q, k, attention)
            if every:
                return p
            for j, pj in zip(js, p, strict=True):
                out[j] = pj
        return out[0][None] if len(out) == 1 else torch.stack(out)


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


def _token_rows(m: KindMetrics) -> list[TokenRow]:
    pair = m.pairs
    assert isinstance(pair, PairTable)

    def lst(x: torch.Tensor) -> list[float]:
        return [float(v) for v in x]

    # A head at a query is the sum of its pairs over keys: "from" sums are the heads' own.
    return [
        TokenRow("attn_from", "attn from", "attention heads, by the token attending (query)",
                 lst(m.direct_effect.sum((0, 1))), lst(m.total_effect.sum((0, 1)))),
        TokenRow("attn_to", "attn to", "attention heads, by the token attended to (key)",
                 lst(pair.sums["direct_effect"]), lst(pair.sums["total_effect"])),
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
    edited_points=_edited_points,
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
