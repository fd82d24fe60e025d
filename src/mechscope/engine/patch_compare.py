"""Exact activation patching and its linear estimate (attribution patching) on the same grid.

Attribution patching is one forward-backward pass instead of one forward per cell; how well it
tracks the exact sweep varies by site and model (it is a first-order Taylor estimate, poor where
the patched activation moves far, e.g. across a saturated attention pattern). Showing both, with
their Pearson correlation over the cells, says how far to trust the cheap one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pydantic import BaseModel, Field

from mechscope.engine.kinds import kinds_of
from mechscope.engine.patching import PatchingResult, PatchSite, _point, patch

if TYPE_CHECKING:
    from collections.abc import Callable

    from mechscope.engine.directions import Direction
    from mechscope.models.decoder import HookedDecoder, ModelInput


class PatchComparison(BaseModel):
    """Both methods' grids for one site, and how well they agree."""

    site: PatchSite
    activation: PatchingResult | None = Field(description="None when it was not run (see ``skipped``)")
    attribution: PatchingResult
    correlation: float | None = Field(
        description="Pearson correlation of the two grids' cells; None when either grid is constant or missing"
    )
    skipped: str | None = Field(default=None, description="why activation patching was not run")


def pearson(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Pearson correlation of two equal-shaped tensors' entries (None: fewer than two, or a
    constant one, where it is undefined)."""
    x, y = a.double().flatten(), b.double().flatten()
    if x.numel() < 2 or x.shape != y.shape:
        return None
    x, y = x - x.mean(), y - y.mean()
    den = float(x.norm() * y.norm())
    if den < 1e-12:
        return None
    return float((x @ y) / den)


def compare_methods(
    model: HookedDecoder,
    clean: ModelInput,
    corrupted: ModelInput,
    direction: Direction,
    site: PatchSite = "resid_pre",
    check: Callable[[], None] | None = None,
    skip_activation: str | None = None,
) -> PatchComparison:
    """Activation and attribution patching of every ``site`` (engine/patching.py), side by side;
    with ``skip_activation`` (the reason, e.g. over a cost limit) the cheap estimate alone."""
    est = patch(model, clean, corrupted, direction, site=site, method="attribution", check=check)
    if skip_activation is not None:
        return PatchComparison(
            site=site, activation=None, attribution=est, correlation=None, skipped=skip_activation
        )
    act = patch(model, clean, corrupted, direction, site=site, method="activation", check=check)
    corr = pearson(torch.tensor(act.values), torch.tensor(est.values))
    return PatchComparison(site=site, activation=act, attribution=est, correlation=corr)


def site_kind(model: HookedDecoder, site: PatchSite) -> str | None:
    """The node kind whose activation is read at ``site``'s hook point (a head's output, a layer's
    write), so a cell can link to its node; None where no kind lives there (the residual stream)."""
    point = _point(site, 0)
    return next((k.name for k in kinds_of(model) if k.layered and k.hook(0) == point), None)
