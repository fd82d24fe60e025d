"""MLP neurons: ``blocks.{l}.mlp.post[..., n]``, the input of the down projection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mechscope.engine.kinds.base import Collation, Kind, Site, TokenRow, Trace
from mechscope.engine.metrics import Context, KindMetrics, LayerTable, Step, stack_layers
from mechscope.engine.objective import Objective, detach_hook, mlp_input_point
from mechscope.errors import InputError
from mechscope.models.hooks import HookFn
from mechscope.models.weights import Reader, layer_stack, neuron_reader, neuron_write

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


def _metrics(ctx: Context) -> NeuronTable:
    cfg = ctx.model.cfg
    active = [i for i in range(cfg.n_layers) if ctx.ran(_hook(i)) and ctx.upstream(2 * i + 2)]
    table = NeuronTable(ctx, active)
    table.run()
    return table


class NeuronTable(LayerTable):
    """Shapes (layer, pos, d_mlp), rebuilt from the recorded activations and gradients (never
    copied whole: at 512 tokens each metric of SmolLM2's neurons would hold 94 MB). ``sums``
    are over neurons: the MLP's row of token effects."""

    def __init__(self, ctx: Context, active: list[int]) -> None:
        cfg = ctx.model.cfg
        super().__init__((cfg.n_layers, ctx.n, cfg.d_mlp), active, (1,), ctx.reached, reached_dim=0)
        self.ctx = ctx
        self._stack = layer_stack(ctx.model)

    def score(self, step: Step) -> dict[str, torch.Tensor]:
        ctx, reached, layers, rows = self.ctx, self.ctx.reached, step.layers, step.rows
        act = stack_layers([ctx.rec.acts[_hook(i)] for i in layers])  # (layer, pos, d_mlp)
        te = stack_layers([ctx.rec.grads[_hook(i)] for i in layers]) * act
        write = act.abs().mul_(self._stack.down_norm[rows, None, :])
        g = ctx.g_start.float()[reached]
        de = act.index_select(1, reached) * self._stack.down_readout(g, layers)  # (layer, reached, d_mlp)
        if ctx.model.cfg.sandwich_norms:
            scale = torch.stack([ctx.rec.acts[f"blocks.{i}.ln2_post.scale"].float() for i in layers])
            write /= scale
            de /= scale[:, reached]
        return {"activation": act, "write_norm": write, "direct_effect": de, "total_effect": te}


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


def _token_rows(m: KindMetrics) -> list[TokenRow]:
    assert isinstance(m, NeuronTable)
    de, te = (m.sums.get(k, torch.zeros(m.shape[1])) for k in ("direct_effect", "total_effect"))
    return [TokenRow("mlp", "MLP", "MLP neurons at the token", de.tolist(), te.tolist())]


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
