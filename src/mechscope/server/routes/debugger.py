"""The Debugger's request: attribution of one run, or two runs side by side; and verify."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import APIRouter

from mechscope.engine.attribution import attribute
from mechscope.engine.compare import Run, compare
from mechscope.engine.directions import Direction, LogitDiff, LogProb, NodeDirection, ResidualDirection
from mechscope.engine.kinds import get_kind
from mechscope.engine.lens import write_direction
from mechscope.engine.verify import Verification, verify
from mechscope.errors import InputError
from mechscope.server import budget, limits
from mechscope.server.deps import State
from mechscope.server.direction_schemas import LogProbDirection, ProbeDirection
from mechscope.server.errors import FieldError
from mechscope.server.intervention_checks import prepared
from mechscope.server.schemas import DebugRequest, DebugResponse, Token, VerifyRequest

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

router = APIRouter(tags=["debugger"])


def _continuation(t: Token) -> str | list[int]:
    return [t] if isinstance(t, int) else t


def direction(model: HookedDecoder, req: DebugRequest) -> Direction:
    """The engine's direction of interest for a request: its trace, its ``direction``, or the
    logit difference of its targets and distractors."""
    if req.trace is not None:
        if req.targets or req.distractors or req.direction is not None:
            raise InputError("trace: give either a trace or targets/distractors (or a direction), not both")
        return NodeDirection(node=req.trace.node, through=req.trace.through, downstream=req.trace.downstream)
    if req.direction is not None:
        if req.targets or req.distractors:
            raise InputError("direction: give either a direction or targets/distractors, not both")
        return _direction(model, req, req.direction)
    if not req.targets:
        raise InputError("targets: give at least one target token (or a trace or a direction)")
    return LogitDiff(
        targets=[_continuation(t) for t in req.targets],
        distractors=[_continuation(t) for t in req.distractors],
        position=req.position,
    )


def _direction(
    model: HookedDecoder, req: DebugRequest, d: LogProbDirection | ProbeDirection
) -> LogProb | ResidualDirection:
    if isinstance(d, LogProbDirection):
        return LogProb(continuation=_continuation(d.continuation), position=req.position)
    if d.vector is not None:
        vector = d.vector
    else:
        assert d.node is not None
        try:  # a head's write depends on the prompt it attends over: the left pane's
            vector = write_direction(model, d.node, req.prompt).tolist()
        except InputError as e:
            raise InputError(f"direction.node: {e}") from None
    if d.normalize:
        norm = sum(v * v for v in vector) ** 0.5
        if norm == 0:
            raise InputError("direction: the probe vector is zero; it has no direction to normalize")
        vector = [v / norm for v in vector]
    return ResidualDirection(vector=vector, layer=d.layer, point=d.point, position=req.position)


def _check_direction(state: State, req: DebugRequest) -> None:
    """A probe's size and layer, refused before any work (a pasted vector is d_model entries)."""
    d, cfg = req.direction, state.model.cfg
    if isinstance(d, LogProbDirection):
        if isinstance(d.continuation, int) and not 0 <= d.continuation < cfg.d_vocab:
            raise FieldError(
                "direction.continuation",
                f"direction.continuation: token id {d.continuation} out of range 0..{cfg.d_vocab - 1}",
            )
        return
    if not isinstance(d, ProbeDirection):
        return
    if d.layer >= cfg.n_layers:
        raise FieldError("direction.layer", f"direction.layer {d.layer} out of range 0..{cfg.n_layers - 1}")
    if d.vector is not None and len(d.vector) != cfg.d_model:
        raise FieldError(
            "direction.vector",
            f"direction.vector has {len(d.vector)} entries; expected d_model = {cfg.d_model}",
        )
    if d.node is not None:
        try:
            get_kind(d.node.kind, state.model)
        except InputError as e:
            raise FieldError("direction.node", f"direction.node: {e}") from None


def check(state: State, req: DebugRequest) -> None:
    lim = state.settings.limits
    limits.at_most(req.k, lim.max_k, "k", "max_k")
    limits.at_most(len(req.targets) + len(req.distractors), lim.max_batch, "targets", "max_batch")
    n = limits.prompt_tokens(state.model, req.prompt, "prompt", lim)
    if req.prompt2 is not None:
        limits.prompt_tokens(state.model, req.prompt2, "prompt2", lim)
    _check_direction(state, req)
    for i, name in enumerate(req.kinds or []):
        try:
            get_kind(name, state.model)
        except InputError as e:
            raise FieldError(f"kinds.{i}", str(e)) from None
    budget.debug(state.model, req, lim, top_n=req.top_n if isinstance(req, VerifyRequest) else 0)
    if req.trace is not None:
        for name, node in (("trace.node", req.trace.node), ("trace.downstream", req.trace.downstream)):
            try:
                if node is not None:
                    node.check(state.model, n)
            except InputError as e:
                raise FieldError(name, f"{name}: {e}") from None


def _runs(req: DebugRequest) -> tuple[Run, Run]:
    left = Run(prompt=req.prompt)
    right = Run(prompt=req.prompt2 or req.prompt, interventions=req.interventions)
    return left, right


def debug_result(model: HookedDecoder, req: DebugRequest) -> DebugResponse:

    start = time.perf_counter()
    d = direction(model, req)
    if not req.interventions and req.prompt2 is None:
        attr = attribute(model, req.prompt, d, kinds=req.kinds, freeze_norm_scale=req.freeze_norm_scale)
        return DebugResponse(left=attr.summary(req.k), elapsed_ms=(time.perf_counter() - start) * 1000)
    left, right = _runs(req)
    cmp = compare(
        model, left, right, d, align=req.align, kinds=req.kinds, freeze_norm_scale=req.freeze_norm_scale
    )
    s = cmp.summary(req.k)
    return DebugResponse(
        left=s.left,
        right=s.right,
        value_diff=s.value_diff,
        alignment=s.alignment,
        candidates=s.candidates,
        nodes=s.nodes,
        elapsed_ms=(time.perf_counter() - start) * 1000,
    )


def verify_result(model: HookedDecoder, req: VerifyRequest) -> Verification:

    d = direction(model, req)
    if not req.interventions and req.prompt2 is None:
        attr = attribute(model, req.prompt, d, kinds=req.kinds, freeze_norm_scale=req.freeze_norm_scale)
    else:
        left, right = _runs(req)
        attr = compare(
            model, left, right, d, align=req.align, kinds=req.kinds, freeze_norm_scale=req.freeze_norm_scale
        ).right
    return verify(attr, top_n=req.top_n)


@router.post("/debug")
async def debug(req: DebugRequest, state: State) -> DebugResponse:
    """Attribute the direction of interest on the prompt (and on the edited or second prompt):
    next-token candidates, token effects and the node table; paired nodes when there are two runs.

    The direction is the logit difference of the targets and distractors, a traced node, or
    ``direction``: a continuation's log-prob or a probe (a d_model vector, or a node's write).
    Interventions run on the right pane, dataset means resolved from the served dataset."""
    req = req.model_copy(update={"interventions": prepared(state, req.interventions, "interventions")})
    check(state, req)
    result, cached = await state.worker.run(
        "debug:" + req.model_dump_json(), lambda: debug_result(state.model, req)
    )
    return result.model_copy(update={"cached": cached})


@router.post("/verify")
async def verify_nodes(req: VerifyRequest, state: State) -> Verification:
    """Zero-ablate the top nodes one at a time; correlation of the true effects with the estimates."""
    req = req.model_copy(update={"interventions": prepared(state, req.interventions, "interventions")})
    check(state, req)
    limits.at_most(req.top_n, state.settings.limits.max_verify, "top_n", "max_verify")
    result, _ = await state.worker.run(
        "verify:" + req.model_dump_json(), lambda: verify_result(state.model, req)
    )
    return result
