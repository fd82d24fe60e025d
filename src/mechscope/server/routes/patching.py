"""Activation and attribution patching sweeps, ready for heatmaps."""

from __future__ import annotations

from fastapi import APIRouter

from mechscope.engine.patching import PatchingResult, patch
from mechscope.server import budget, limits
from mechscope.server.deps import State
from mechscope.server.schemas import PatchRequest

router = APIRouter(tags=["patching"])


@router.post("/patch")
async def patch_sweep(req: PatchRequest, state: State) -> PatchingResult:
    """Patch each site from the clean prompt into the corrupted one (activation patching), or
    estimate it linearly from one forward-backward pair (attribution patching, the default)."""

    lim = state.settings.limits
    limits.patch_pair(state.model, req, lim)
    budget.patch(state.model, req, lim)
    result, _ = await state.worker.run(
        "patch:" + req.model_dump_json(),
        lambda: patch(
            state.model,
            req.clean,
            req.corrupted,
            req.direction(),
            site=req.site,
            method=req.method,
            check=state.worker.check_stop,
        ),
    )
    return result
