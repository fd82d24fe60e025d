"""Generation with interventions (steering, ablations) applied at every step."""

from __future__ import annotations

import time

from fastapi import APIRouter

from mechscope.engine.interventions import intervention_hooks
from mechscope.server import budget, limits
from mechscope.server.deps import State
from mechscope.server.intervention_checks import prepared
from mechscope.server.schemas import GenerateRequest, GenerateResponse, TokenInfo

router = APIRouter(tags=["generate"])


@router.post("/generate")
async def generate(req: GenerateRequest, state: State) -> GenerateResponse:
    """Continue the prompt; interventions without positions apply to every generated token too,
    those with explicit positions to the prompt's tokens only. A dataset mean is looked up in the
    served dataset; steering adds its vector at its target."""

    model, lim = state.model, state.settings.limits
    n = limits.prompt_tokens(model, req.prompt, "prompt", lim)
    limits.at_most(req.max_new_tokens, lim.max_new_tokens, "max_new_tokens", "max_new_tokens")
    req = req.model_copy(update={"interventions": prepared(state, req.interventions, "interventions")})
    budget.generate(model, req, lim)

    def work() -> GenerateResponse:
        start = time.perf_counter()
        hooks = intervention_hooks(model, req.interventions, n)
        with model.hooks(fwd=hooks):
            out = model.generate(
                req.prompt,
                max_new_tokens=req.max_new_tokens,
                temperature=req.temperature,
                top_k=req.top_k,
                top_p=req.top_p,
                seed=req.seed,
            )
        tok = model.tokenizer
        tokens = [TokenInfo(id=i, token=tok.token_str(i) if tok else str(i)) for i in out.tokens[0]]
        return GenerateResponse(text=out.text, tokens=tokens, elapsed_ms=(time.perf_counter() - start) * 1000)

    # Sampling with no seed is not repeatable: only greedy or seeded requests are cached.
    key = "generate:" + req.model_dump_json() if req.temperature == 0 or req.seed is not None else None
    result, _ = await state.worker.run(key, work)
    return result
