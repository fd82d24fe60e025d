"""An objective: a direction of interest compiled for one prompt, as the recorder runs it.

Directions (:mod:`mechscope.engine.directions`) and node kinds' tracing
(:mod:`mechscope.engine.kinds`) both build these; the recorder and the metrics read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mechscope.errors import InputError
from mechscope.models.hooks import HookFn


@dataclass
class Objective:
    """A direction of interest compiled for one prompt."""

    rows: torch.Tensor  # (row, pos) token ids; row 0 is the prompt itself
    prompt_len: int
    position: int  # the prompt position whose output is scored
    start: str  # residual hook point where the backward pass enters the residual stream
    value: Callable[
        [dict[str, torch.Tensor]], torch.Tensor
    ]  # activations (..., row, pos, ...) by name -> (...)
    read: tuple[str, ...]  # hook points whose activations the value is computed from
    stop: str | None = None  # the forward may stop after this point: nothing later matters
    fwd_hooks: list[tuple[str, HookFn]] = field(default_factory=list)  # freezes and detaches
    pinned: list[int] = field(default_factory=list)  # token ids shown first in a logits table
    linear: bool = True  # the value is linear in the start residual (direct effects sum to it)
    description: str = ""

    @property
    def start_rank(self) -> int:
        return residual_rank(self.start)


def residual_rank(point: str) -> int:
    """Order of residual-stream points: writes of rank <= r have landed at a point of rank r.

    The embedding writes rank 0; layer l's attention writes 2l + 1 and its MLP 2l + 2.
    """
    parts = point.split(".")
    layer, name = int(parts[1]), parts[2]
    return 2 * layer + {"resid_pre": 0, "resid_mid": 1, "resid_post": 2}[name]


def detach_hook(_x: torch.Tensor, _hook: object) -> torch.Tensor:
    """A forward hook that stops the gradient through a tensor (e.g. a norm's scale)."""
    return _x.detach()


def resolve_position(position: int, n: int, what: str = "position") -> int:
    p = position + n if position < 0 else position
    if not 0 <= p < n:
        raise InputError(f"{what} {position} out of range for a prompt of {n} tokens (allowed {-n}..{n - 1})")
    return p


def mlp_input_point(parallel_residual: bool, layer: int) -> str:
    """The residual point an MLP reads: ``resid_mid`` of its layer, ``resid_pre`` with parallel residual."""
    return f"blocks.{layer}.resid_pre" if parallel_residual else f"blocks.{layer}.resid_mid"
