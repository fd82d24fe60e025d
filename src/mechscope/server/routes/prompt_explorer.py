"""The prompt explorer's data (docs/prompt-explorer.md): every layer's units at every position of a
prompt, and the logit lens, in one answer."""

from __future__ import annotations

from fastapi import APIRouter

from mechscope.engine.lens import LensResult, logit_lens
from mechscope.engine.unit_grid import UnitGrid, encode_codes, grid_size, quantize, unit_grid
from mechscope.errors import InputError
from mechscope.server import limits
from mechscope.server.deps import State
from mechscope.server.errors import FieldError
from mechscope.server.prompt_explorer_schemas import GridLayer, LensTop, UnitGridRequest, UnitGridResponse

router = APIRouter(tags=["prompt explorer"])


@router.post("/prompt/grid")
async def prompt_grid(req: UnitGridRequest, state: State) -> UnitGridResponse:
    """Every layer's units of one kind (neurons, heads, a dictionary's latents: any kind with a
    ``size``) at every token of the prompt, 8-bit with a scale per layer and position, and the
    logit lens's top-k tokens at every layer and position. Its size (positions x layers x units)
    is checked against ``max_grid_values`` before the model runs."""

    lim = state.settings.limits
    n = limits.prompt_tokens(state.model, req.prompt, "prompt", lim)
    limits.at_most(req.k, lim.max_k, "k", "max_k")
    try:
        size = grid_size(state.model, req.kind, n)
    except InputError as e:
        raise FieldError("kind", str(e)) from None
    if size > lim.max_grid_values:
        fits = lim.max_grid_values // (size // n)  # tokens whose grid fits
        todo = f"shorten the prompt to {fits} tokens" if fits > 0 else "pick a kind with fewer units"
        raise FieldError(
            "kind" if fits == 0 else "prompt",
            f"the grid of {n} tokens x the {req.kind} units of every layer holds {size:,} values; the limit "
            f"is {lim.max_grid_values:,} (max_grid_values): {todo}",
        )

    def work() -> UnitGridResponse:
        grid = unit_grid(state.model, req.prompt, req.kind)
        state.worker.check_stop()  # nobody waits for it any more: skip the lens
        return _response(grid, logit_lens(state.model, req.prompt, req.k))

    result, _ = await state.worker.run("prompt-grid:" + req.model_dump_json(), work)
    return result


def _response(grid: UnitGrid, lens: LensResult) -> UnitGridResponse:
    """The grid packed to one byte a value, the lens as token ids with one spelling each."""
    scales, codes = quantize(grid.values)
    layers = [
        GridLayer(layer=layer, scales=[float(s) for s in scales[row]], codes=encode_codes(codes[row]))
        for row, layer in enumerate(grid.layers)
    ]
    vocab = {t.id: t.token for row in lens.top for pos in row for t in pos}
    top = LensTop(
        layers=lens.layers,
        ids=[[[t.id for t in pos] for pos in row] for row in lens.top],
        probs=[[[round(t.value, 4) for t in pos] for pos in row] for row in lens.top],
        vocab=vocab,
    )
    return UnitGridResponse(
        kind=grid.kind, tokens=lens.tokens, units=int(grid.values.shape[-1]), layers=layers, lens=top
    )
