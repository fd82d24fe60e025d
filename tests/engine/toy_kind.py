"""A toy node kind, written as a kind file is: the coordinates of the residual stream after each
block (``L3.resid_dim.17@5`` is coordinate 17 of ``blocks.3.resid_post`` at token 5).

tests/engine/test_kind_registry.py registers it with one line and checks that it then appears in
attribution, the node table, ``/api/model``, interventions and collation with no other edit.
"""

from __future__ import annotations

import torch

from mechscope.engine.kinds import Collation, Kind, Site
from mechscope.engine.metrics import Context, Metrics
from mechscope.models.decoder import HookedDecoder


def _hook(layer: int) -> str:
    return f"blocks.{layer}.resid_post"


def _points(model: HookedDecoder) -> tuple[list[str], list[str]]:
    names = [_hook(i) for i in range(model.cfg.n_layers)]
    return names, names


def _metrics(ctx: Context) -> Metrics:
    """Shapes (layer, pos, d_model): the coordinate, its size, x_i g_i at the backward's entry
    point (where the layer is upstream of it) and x_i times its own gradient."""
    cfg, n = ctx.model.cfg, ctx.n
    act, de, te = (torch.zeros(cfg.n_layers, n, cfg.d_model) for _ in range(3))
    for i in range(cfg.n_layers):
        if not ctx.ran(_hook(i)) or not ctx.upstream(2 * i + 2):
            continue
        x = ctx.rec.acts[_hook(i)].float()
        act[i] = x
        de[i] = x * ctx.g_start.float()
        te[i] = x * ctx.rec.grads[_hook(i)].float()
    return Metrics(act, act.abs(), de, te)


def _site(model: HookedDecoder, layer: int | None, index: int | list[int] | None, _key: int | None) -> Site:
    assert layer is not None and index is not None
    return Site(_hook(layer), ([index] if isinstance(index, int) else list(index),), 1)


def _feed(
    _model: HookedDecoder, layer: int, stash: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, None, None]:
    return stash[_hook(layer)].float(), None, None


TOY = Kind(
    name="resid_dim",
    label="residual coordinate",
    value_label="coordinate value",
    group="coordinates",
    layered=True,
    unit="coordinate",
    size=lambda cfg: cfg.d_model,
    rank=lambda layer: 2 * layer + 2,
    hook=_hook,
    activations=lambda x: x,
    points=_points,
    metrics=_metrics,
    coords=("layer", "token", "index"),
    site=_site,
    collation=Collation(lambda layer: [_hook(layer)], _feed, density="fraction of tokens > 0"),
)
