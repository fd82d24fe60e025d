"""A whole attention or MLP layer's output at a token: its write to the residual stream, biases
included (``L2.attn_out@4``, ``L2.mlp_out@4``). Two kinds from one definition."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mechscope.engine.kinds.base import Kind, Site, Trace
from mechscope.engine.metrics import Context, Metrics
from mechscope.engine.objective import Objective, mlp_input_point
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.engine.nodes import Node
    from mechscope.models.decoder import HookedDecoder


def _kind(name: str, label: str, offset: int) -> Kind:
    """``offset``: 1 for attention (it writes at rank 2l + 1), 2 for the MLP (2l + 2)."""

    def hook(layer: int) -> str:
        return f"blocks.{layer}.{name}"

    def points(model: HookedDecoder) -> tuple[list[str], list[str]]:
        names = [hook(i) for i in range(model.cfg.n_layers)]
        return names, names

    def metrics(ctx: Context) -> Metrics:
        """Shapes (layer, pos), every layer scored in one op per metric."""
        cfg, n = ctx.model.cfg, ctx.n
        write, de, te = (torch.zeros(cfg.n_layers, n) for _ in range(3))
        active = [i for i in range(cfg.n_layers) if ctx.ran(hook(i)) and ctx.upstream(2 * i + offset)]
        if not active:
            return Metrics(None, write, de, te)
        x = torch.stack([ctx.rec.acts[hook(i)] for i in active]).float()  # (layer, pos, d_model)
        grad = torch.stack([ctx.rec.grads[hook(i)] for i in active]).float()
        rows = torch.tensor(active)
        write[rows] = x.norm(dim=-1)
        # Direct effects only where the start gradient is non-zero (one position for a logit).
        reached = ctx.reached
        de[rows[:, None], reached] = torch.linalg.vecdot(
            x.index_select(1, reached), ctx.g_start.float()[reached]
        )
        te[rows] = torch.linalg.vecdot(x, grad)  # no (layer, pos, d_model) product in between
        return Metrics(None, write, de, te)

    def site(
        model: HookedDecoder, layer: int | None, _index: int | list[int] | None, _key: int | None
    ) -> Site:
        assert layer is not None
        return Site(hook(layer), (slice(None),), model.cfg.d_model)

    def trace(
        model: HookedDecoder,
        node: Node,
        through: str | None,
        _down: Node | None,
        _freeze: bool,
        **common: object,
    ) -> Objective:
        """The norm of the layer's write at the token (not linear: a norm)."""
        assert node.layer is not None
        if through is not None:
            raise InputError(f"'through' is not used when tracing a layer output ({node})")
        name, t = hook(node.layer), node.token

        def norm_value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
            return acts[name][..., 0, t, :].norm(dim=-1)

        start = (
            f"blocks.{node.layer}.resid_pre"
            if offset == 1
            else mlp_input_point(model.cfg.parallel_residual, node.layer)
        )
        return Objective(start=start, value=norm_value, read=(name,), stop=name, linear=False, **common)  # type: ignore[arg-type]

    return Kind(
        name=name,
        label=label,
        value_label="layer write norm",
        group="layers",
        group_label="layer outputs",
        layered=True,
        unit=None,
        size=lambda _cfg: 1,
        rank=lambda layer: 2 * layer + offset,
        hook=hook,
        activations=lambda x: x.float().norm(dim=-1, keepdim=True),
        points=points,
        metrics=metrics,
        coords=("layer", "token"),
        site=site,
        trace=Trace(trace, through=((None, "trace"),)),
    )


ATTN_OUT = _kind("attn_out", "attention layer output", 1)
MLP_OUT = _kind("mlp_out", "MLP layer output", 2)
