"""The Patching page's routes: prompt pairs to patch, and both patching methods side by side."""

from __future__ import annotations

from fastapi import APIRouter

from mechscope.engine.pairs import IOI_TEMPLATES, PromptPair, ioi_pair, repeat_pair
from mechscope.engine.patch_compare import compare_methods, site_kind
from mechscope.server import budget, limits
from mechscope.server.deps import State
from mechscope.server.errors import FieldError
from mechscope.server.patching_schemas import CompareRequest, CompareResponse, PairRequest
from mechscope.server.schemas import PatchRequest

router = APIRouter(tags=["patching"])


@router.get("/patch/templates")
async def pair_templates() -> dict[str, str]:
    """The preset IOI templates by name: ``{A}``, ``{B}`` are the first clause's names, ``{S}`` the
    final clause's subject."""
    return IOI_TEMPLATES


@router.post("/patch/pair")
async def build_pair(req: PairRequest, state: State) -> PromptPair:
    """A clean and a corrupted prompt of the same token length, with targets and distractors:
    the indirect-object task with the names swapped in the final clause (or the ABC corruption),
    or repeated random tokens (seeded). A name that is not one token, or prompts that tokenise to
    different lengths, get a 422 naming it."""
    lim = state.settings.limits
    if req.kind == "repeat":
        # BOS + the sequence + its repeat less one token.
        limits.at_most(2 * req.length, lim.max_prompt_tokens, "length", "max_prompt_tokens")
    else:
        limits.prompt_tokens(state.model, req.template, "template", lim)

    def work() -> PromptPair:
        # Tokenizer work only, but sampling word tokens can take many tries: off the event loop.
        if req.kind == "repeat":
            return repeat_pair(state.model, req.length, req.seed)
        return ioi_pair(state.model, req.io, req.subject, req.template, req.corruption, req.others)

    pair, _ = await state.worker.run("pair:" + req.model_dump_json(), work)
    limits.prompt_tokens(state.model, pair.clean, "template", lim)
    return pair


@router.post("/patch/compare")
async def patch_compare(req: CompareRequest, state: State) -> CompareResponse:
    """Activation patching of every cell of ``site`` (exact: one forward per cell) and attribution
    patching (its linear estimate from one forward-backward pair), with the Pearson correlation of
    the two grids. Both are priced before anything runs: attribution over a limit is a 422; an
    activation sweep over max_request_tokens is not run, and ``skipped`` says why (the estimate
    comes back alone)."""
    lim = state.settings.limits
    limits.patch_pair(state.model, req, lim)
    fields = req.model_dump()
    budget.patch(state.model, PatchRequest(**fields, method="attribution"), lim)
    skipped = None
    try:
        budget.patch(state.model, PatchRequest(**fields, method="activation"), lim)
    except FieldError as e:
        skipped = f"activation patching not run: {e}"

    def work() -> CompareResponse:
        res = compare_methods(
            state.model,
            req.clean,
            req.corrupted,
            req.direction(),
            site=req.site,
            check=state.worker.check_stop,
            skip_activation=skipped,
        )
        return CompareResponse(**res.model_dump(), kind=site_kind(state.model, req.site))

    result, _ = await state.worker.run("patch-compare:" + req.model_dump_json(), work)
    return result
