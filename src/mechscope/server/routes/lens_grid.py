"""The Lens page's route: a layer x position grid of top tokens for one stream."""

from __future__ import annotations

from fastapi import APIRouter

from mechscope.engine.lens import LensGrid, lens_grid
from mechscope.server import limits
from mechscope.server.deps import State
from mechscope.server.patching_schemas import LensGridRequest

router = APIRouter(tags=["views"])


@router.post("/lens/grid")
async def lens_stream_grid(req: LensGridRequest, state: State) -> LensGrid:
    """The logit lens of one stream: ``resid`` reads the residual stream entering each layer (and
    the final one) through the final norm and unembedding; ``attn`` and ``mlp`` read each layer's
    write alone through the final norm with its scale frozen at the prompt's final residual (its
    direct logits), softmaxed. Top ``k`` tokens per cell, and ``target``'s probability and rank."""
    lim = state.settings.limits
    limits.prompt_tokens(state.model, req.prompt, "prompt", lim)
    limits.at_most(req.k, lim.max_k, "k", "max_k")
    result, _ = await state.worker.run(
        "lens-grid:" + req.model_dump_json(),
        lambda: lens_grid(state.model, req.prompt, req.stream, req.k, req.target, state.worker.check_stop),
    )
    return result
