"""The embedding at a token: the token embedding (scaled), plus the position embedding where the
model learns one. It has no layer and no index: ``embedding@4``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mechscope.engine.kinds.base import Kind, Site, TokenRow
from mechscope.engine.metrics import Context, KindMetrics, Metrics

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder


def _names(model: HookedDecoder) -> list[str]:
    return ["embed"] + (["pos_embed"] if model.cfg.positional == "learned" else [])


def _points(model: HookedDecoder) -> tuple[list[str], list[str]]:
    return _names(model), _names(model)


def _metrics(ctx: Context) -> Metrics:
    """Shapes (pos,)."""
    names = [p for p in ("embed", "pos_embed") if p in ctx.rec.acts]
    x = sum(ctx.rec.acts[p].float() for p in names)
    assert isinstance(x, torch.Tensor)
    te = sum((ctx.rec.acts[p].float() * ctx.rec.grads[p].float()).sum(-1) for p in names)
    assert isinstance(te, torch.Tensor)
    return Metrics(None, x.norm(dim=-1), (x * ctx.g_start.float()).sum(-1), te)


def _site(model: HookedDecoder, _layer: int | None, _index: int | list[int] | None, _key: int | None) -> Site:
    """The token embedding (learned position embeddings are left alone)."""
    return Site("embed", (slice(None),), model.cfg.d_model)


def _token_rows(m: KindMetrics) -> list[TokenRow]:
    return [
        TokenRow(
            "embedding",
            "embedding",
            "the token's embedding",
            [float(v) for v in m.direct_effect],
            [float(v) for v in m.total_effect],
        )
    ]


KIND = Kind(
    name="embedding",
    label="token embedding",
    value_label="embedding norm",
    group="embeddings",
    layered=False,
    unit=None,
    size=lambda _cfg: 1,
    rank=lambda _layer: 0,
    hook=lambda _layer: "embed",
    activations=lambda x: x.float().norm(dim=-1, keepdim=True),
    points=_points,
    metrics=_metrics,
    coords=("token",),
    site=_site,
    token_rows=_token_rows,
)
