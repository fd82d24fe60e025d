"""MLP neurons: ``blocks.{l}.mlp.post[..., n]``, the input of the down projection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mechscope.engine.kinds.base import Collation, Kind, Site, TokenRow, Trace
from mechscope.engine.metrics import Context, Metrics, empty
from mechscope.engine.objective import Objective, detach_hook, mlp_input_point
from mechscope.errors import InputError
from mechscope.models.hooks import HookFn
from mechscope.models.weights import Reader, layer_weights, neuron_reader, neuron_write

if TYPE_CHECKING:
    from mechscope.engine.nodes import Node
    from mechscope.models.decoder import HookedDecoder


def _hook(layer: int) -> str:
    return f"blocks.{layer}.mlp.post"


def _points(model: HookedDecoder) -> tuple[list[str], list[str]]:
    acts, grads = [], []
    for i in range(model.cfg.n_layers):
        acts.append(_hook(i))
        grads.append(_hook(i))
        if model.cfg.sandwich_norms:
            acts.append(f"blocks.{i}.ln2_post.scale")
    return acts, grads


def _metrics(ctx: Context) -> Metrics:
    """Shapes (layer, pos, d_mlp)."""
    cfg, n, reached = ctx.model.cfg, ctx.n, ctx.reached
    act, write, te = (empty(cfg.n_layers, n, cfg.d_mlp) for _ in range(3))
    de = torch.zeros(cfg.n_layers, n, cfg.d_mlp)
    weights = layer_weights(ctx.model)
    g = ctx.g_start.float()[reached]
    for i in range(cfg.n_layers):
        name = _hook(i)
        if not ctx.ran(name) or not ctx.upstream(2 * i + 2):
            for t in (act, write, te):
                t[i] = 0
            continue
        lw = weights[i]
        a = ctx.rec.acts[name].float()  # (pos, d_mlp)
        scale = ctx.post_scale(i, "ln2_post")
        act[i] = a
        torch.mul(a.abs(), lw.down_norm, out=write[i])
        de[i, reached] = a[reached] * (g @ lw.down)
        if scale is not None:
            write[i] /= scale
            de[i, reached] /= scale[reached]
        torch.mul(a, ctx.rec.grads[name].float(), out=te[i])
    return Metrics(act, write, de, te)


def _site(model: HookedDecoder, layer: int | None, index: int | list[int] | None, key: int | None) -> Site:
    assert layer is not None and index is not None
    idx = [index] if isinstance(index, int) else list(index)
    if not idx or any(not 0 <= i < model.cfg.d_mlp for i in idx):
        raise InputError(f"target.index {index} out of range 0..{model.cfg.d_mlp - 1}")
    return Site(_hook(layer), (idx,), 1)


def _trace(
    model: HookedDecoder,
    node: Node,
    through: str | None,
    _downstream: Node | None,
    freeze: bool,
    **common: object,
) -> Objective:
    """Trace a neuron's pre-activation (default; linear with the norm frozen) or post-activation."""
    assert node.layer is not None
    through = through or "pre"
    if through not in ("pre", "post"):
        raise InputError(f"an MLP neuron is traced through 'pre' or 'post', not {through!r}")
    b, t, n = f"blocks.{node.layer}", node.token, node.index
    name = f"{b}.mlp.{through}"

    def neuron_value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        return acts[name][..., 0, t, n]

    hooks: list[tuple[str, HookFn]] = [(f"{b}.ln2.scale", detach_hook)] if freeze else []
    return Objective(
        start=mlp_input_point(model.cfg.parallel_residual, node.layer),
        value=neuron_value,
        read=(name,),
        stop=name,
        fwd_hooks=hooks,
        linear=freeze and through == "pre",
        **common,  # type: ignore[arg-type]
    )


def _write(model: HookedDecoder, node: Node, _ids: list[int] | None) -> torch.Tensor:
    assert node.layer is not None and node.index is not None
    return neuron_write(model, node.layer, node.index)


def _collation_points(layer: int) -> list[str]:
    return [_hook(layer)]


def _feed(
    _model: HookedDecoder, layer: int, stash: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, None, None]:
    return stash[_hook(layer)].float(), None, None


def _token_rows(m: Metrics) -> list[TokenRow]:
    return [
        TokenRow(
            "mlp",
            "MLP",
            "MLP neurons at the token",
            [float(v) for v in m.direct_effect.sum((0, 2))],
            [float(v) for v in m.total_effect.sum((0, 2))],
        )
    ]


def _reader(model: HookedDecoder, layer: int | None, index: int) -> Reader:
    assert layer is not None
    return neuron_reader(model, layer, index)


KIND = Kind(
    name="mlp_neuron",
    label="MLP neuron",
    value_label="neuron activation",
    group="neurons",
    layered=True,
    unit="neuron",
    size=lambda cfg: cfg.d_mlp,
    rank=lambda layer: 2 * layer + 2,
    hook=_hook,
    activations=lambda x: x,
    points=_points,
    metrics=_metrics,
    coords=("layer", "token", "index"),
    site=_site,
    trace=Trace(_trace, through=((None, "trace"),)),
    write=_write,
    reader=_reader,
    collation=Collation(_collation_points, _feed, density="fraction of stream tokens with activation > 0"),
    token_rows=_token_rows,
    verify=True,
)
