"""What a request costs the model, in tokens, counted before it is queued.

The prompt limit alone does not bound a request: each multi-token target or distractor is
teacher-forced as its own row of ``prompt + continuation`` (engine/directions.py), and a patching
sweep runs one row per cell. So a request is priced as the tokens of every row of every forward it
causes, and refused with a 422 naming the limit when

- one pass with gradients holds more than ``max_grad_tokens`` tokens (rows x length): its memory
  grows with it, about 2.5 MB a token on SmolLM2-135M (docs/reliability.md);
- all its forwards together process more than ``max_request_tokens``: its time grows with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mechscope.engine.interventions import Intervention, Mean, NodeWriteSource, Steer
from mechscope.server.errors import FieldError
from mechscope.server.settings import Limits

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder
    from mechscope.server.schemas import DebugRequest, GenerateRequest, PatchRequest, VerifyRequest


@dataclass(frozen=True)
class Pass:
    """One batched forward (and backward): ``rows`` sequences of ``width`` tokens."""

    rows: int
    width: int

    @property
    def tokens(self) -> int:
        return self.rows * self.width


def _ids(model: HookedDecoder, text: str, bos: bool | None) -> int:
    """Tokens of ``text``; ``bos`` None: with a BOS exactly when the model's tokenizer adds one
    to prompts (as every prompt here is tokenised)."""
    if model.tokenizer is None:
        return len(text)
    return len(model.tokenizer.encode(text, add_bos=bos))


def objective(model: HookedDecoder, prompt: str, continuations: Sequence[str | int]) -> Pass:
    """The rows of a logit-difference objective: the prompt, plus one row per multi-token
    continuation, all padded to the longest (as ``compile_direction`` builds them)."""
    n = _ids(model, prompt, None)
    lengths = [1 if isinstance(c, int) else _ids(model, c, False) for c in continuations]
    multi = [k for k in lengths if k > 1]
    return Pass(rows=1 + len(multi), width=n + max(multi, default=1) - 1)


def _interventions(model: HookedDecoder, ivs: Sequence[Intervention]) -> int:
    """Tokens of the reference runs interventions need (mean ablations, resampling)."""
    total = 0
    for iv in ivs:
        if isinstance(iv.op, Mean):
            total += sum(_ids(model, t, None) for t in iv.op.reference)
        elif iv.op.kind == "resample":
            total += _ids(model, iv.op.prompt, None)
        elif (
            isinstance(iv.op, Steer)
            and isinstance(iv.op.direction, NodeWriteSource)
            and iv.op.direction.prompt
        ):
            total += _ids(model, iv.op.direction.prompt, None)  # a head's write is read on its prompt
    return total


def check(grad: Pass | None, total: int, field: str, limits: Limits, what: str) -> None:
    """Refuse a request whose gradient pass or total is over its limit; ``what`` says how it adds up."""
    if grad is not None and grad.tokens > limits.max_grad_tokens:
        raise FieldError(
            field,
            f"{field}: this request runs {grad.rows} row(s) of {grad.width} tokens with gradients "
            f"({grad.tokens:,} tokens; each multi-token target or distractor is its own row); "
            f"the limit is {limits.max_grad_tokens:,} (max_grad_tokens)",
        )
    if total > limits.max_request_tokens:
        raise FieldError(
            field,
            f"{field}: this request makes the model process {total:,} tokens ({what}); "
            f"the limit is {limits.max_request_tokens:,} (max_request_tokens)",
        )


def debug(model: HookedDecoder, req: DebugRequest, limits: Limits, top_n: int = 0) -> None:
    """/api/debug and /api/verify: one attribution pass per run, plus one forward per ablated node."""
    conts = [*req.targets, *req.distractors]
    if req.direction is not None and req.direction.kind == "logprob":
        conts.append(req.direction.continuation)
    runs = (
        [req.prompt]
        if not req.interventions and req.prompt2 is None
        else [req.prompt, req.prompt2 or req.prompt]
    )
    passes = [objective(model, p, conts) for p in runs]
    grad = max(passes, key=lambda p: p.tokens)
    total = sum(p.tokens for p in passes) + top_n * grad.tokens + _interventions(model, req.interventions)
    what = f"{len(passes)} run(s) of {grad.rows} row(s) x {grad.width} tokens"
    check(grad, total, "targets", limits, what + (f", {top_n} ablations" if top_n else ""))


def verify(model: HookedDecoder, req: VerifyRequest, limits: Limits) -> None:
    debug(model, req, limits, top_n=req.top_n)


def patch(model: HookedDecoder, req: PatchRequest, limits: Limits) -> None:
    """/api/patch: the clean and corrupted runs, then (activation) one row per cell and layer."""
    cfg = model.cfg
    p = objective(model, req.corrupted, [*req.targets, *req.distractors])
    n = _ids(model, req.corrupted, None)
    if req.method == "attribution":
        check(p, 2 * p.tokens, "site", limits, "a clean and a corrupted run")
        return
    cells = {"heads": cfg.n_heads, "heads_by_pos": cfg.n_heads * n}.get(req.site, n)
    # Layer L's forwards start at block L (engine/patching.py): on average (n_layers + 1) / 2
    # of the n_layers blocks run, so the sweep costs that many whole forwards' tokens per cell.
    total = 2 * p.tokens + (cfg.n_layers + 1) * cells * p.tokens // 2
    what = (
        f"{cfg.n_layers} layers x {cells} cells x {p.tokens} tokens, each layer's forwards "
        "starting at its block (half the blocks on average)"
    )
    check(None, total, "site", limits, what + "; the attribution method costs two runs")


def generate(model: HookedDecoder, req: GenerateRequest, limits: Limits) -> None:
    """/api/generate: the prompt once, then one token per step (KV-cached)."""
    n = _ids(model, req.prompt, None)
    total = n + req.max_new_tokens + _interventions(model, req.interventions)
    check(None, total, "max_new_tokens", limits, f"{n} prompt + {req.max_new_tokens} new tokens")
