"""Checks of a request against the server's :class:`Limits`, before any model work is queued."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mechscope.engine.interventions import Intervention, Mean, NodeTarget
from mechscope.engine.kinds import get_kind
from mechscope.errors import InputError
from mechscope.server.errors import FieldError
from mechscope.server.settings import Limits

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder
    from mechscope.server.schemas import PatchPairRequest


def prompt_tokens(model: HookedDecoder, text: str, field: str, limits: Limits) -> int:
    """Token count of ``text`` (BOS included), refused past ``max_prompt_tokens``."""
    n = len(model.to_tokens(text)[0][0])
    if n > limits.max_prompt_tokens:
        raise FieldError(
            field, f"{field} has {n} tokens; the limit is {limits.max_prompt_tokens} (max_prompt_tokens)"
        )
    return n


def patch_pair(model: HookedDecoder, req: PatchPairRequest, limits: Limits) -> None:
    """A patching request's two prompts and its targets and distractors (its sweep is priced by
    ``budget.patch``)."""
    prompt_tokens(model, req.clean, "clean", limits)
    prompt_tokens(model, req.corrupted, "corrupted", limits)
    at_most(len(req.targets) + len(req.distractors), limits.max_batch, "targets", "max_batch")


def at_most(value: int, limit: int, field: str, name: str) -> None:
    if value > limit:
        raise FieldError(field, f"{field} is {value}; the limit is {limit} ({name})")


def interventions(model: HookedDecoder, ivs: Sequence[Intervention], field: str, limits: Limits) -> None:
    at_most(len(ivs), limits.max_batch, field, "max_batch")
    for i, iv in enumerate(ivs):
        if isinstance(iv.target, NodeTarget):
            try:
                get_kind(iv.target.kind, model)
            except InputError as e:
                raise FieldError(f"{field}[{i}].target.kind", str(e)) from None
        if isinstance(iv.op, Mean):
            f = f"{field}[{i}].op.reference"
            at_most(len(iv.op.reference), limits.max_batch, f, "max_batch")
            for j, text in enumerate(iv.op.reference):
                prompt_tokens(model, text, f"{f}[{j}]", limits)
        elif iv.op.kind == "resample":
            prompt_tokens(model, iv.op.prompt, f"{field}[{i}].op.prompt", limits)


def unit(model: HookedDecoder, kind_name: str, layer: int, index: int, fields: tuple[str, str]) -> None:
    """A unit (neuron, head, ...) of the served model; ``fields`` name the request's layer and index fields."""
    cfg = model.cfg
    try:
        kind = get_kind(kind_name, model)
    except InputError as e:
        raise FieldError("kind", str(e)) from None
    name = cfg.name or "the model"
    if layer >= cfg.n_layers:
        raise FieldError(
            fields[0], f"{fields[0]} {layer} does not exist: {name} has layers 0..{cfg.n_layers - 1}"
        )
    size, what = kind.size(cfg), f"{kind.unit or 'unit'}s"
    if index >= size:
        raise FieldError(
            fields[1], f"{fields[1]} {index} does not exist: {name} has {what} 0..{size - 1} per layer"
        )
