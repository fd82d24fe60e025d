"""Every unit of one kind at every position of a prompt, in one forward: the prompt explorer's grid.

A kind's activation is its own (``Kind.hook`` and ``Kind.activations``, as collation and
:func:`mechscope.engine.lens.layer_activations` read it); this module only captures every layer's
hook point at once and packs the result small enough to send whole, so that a page can move
along the positions without asking again. Values are 8-bit: each (layer, position) has its own
scale (its largest ``|activation|`` over 127), so the error of a decoded value is at most half a
step, ``scale / 2``.
"""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from mechscope.engine.kinds import Kind, get_kind, kinds_of
from mechscope.engine.prompt import prompt_ids
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder, ModelInput
    from mechscope.models.hooks import HookFn

LEVELS = 127  # int8 steps on each side of zero


@dataclass(frozen=True)
class UnitGrid:
    """``values[row, pos, unit]``: the activation of unit ``unit`` of layer ``layers[row]`` (None
    for a kind without layers: one row) at token ``pos`` of ``ids``."""

    kind: str
    layers: list[int | None]
    ids: list[int]
    values: torch.Tensor  # (row, pos, unit) float32 on the CPU


def grid_kind(model: HookedDecoder, kind_name: str) -> Kind:
    """A kind whose layers have units (neurons, heads, a dictionary's latents); others are refused
    with the kinds that have them."""
    kind = get_kind(kind_name, model)
    if kind.unit is None:
        have = ", ".join(k.name for k in kinds_of(model) if k.unit is not None)
        raise InputError(f"kind {kind_name!r} has no units to lay out in a grid; kinds with units: {have}")
    return kind


def grid_layers(model: HookedDecoder, kind: Kind) -> list[int | None]:
    """The grid's rows: every layer of a layered kind, one row for a kind without layers."""
    return list(range(model.cfg.n_layers)) if kind.layered else [None]


def grid_size(model: HookedDecoder, kind_name: str, n_tokens: int) -> int:
    """How many values a grid of ``n_tokens`` positions holds (positions x layers x units), known
    before any forward runs, so a caller can bound a request's cost."""
    kind = grid_kind(model, kind_name)
    return n_tokens * len(grid_layers(model, kind)) * kind.size(model.cfg)


class _Done(Exception):
    """Raised by the hook of the grid's last layer: later blocks and the unembedding are skipped."""


def unit_grid(model: HookedDecoder, prompt: ModelInput, kind_name: str) -> UnitGrid:
    """Every layer's units of ``kind_name`` at every token of ``prompt``, in one forward that
    captures each layer's hook point and stops after the last one."""
    kind = grid_kind(model, kind_name)
    layers = grid_layers(model, kind)
    ids = prompt_ids(model, prompt)
    points = list(dict.fromkeys(kind.hook(layer or 0) for layer in layers))
    got: dict[str, torch.Tensor] = {}

    def grabber(point: str) -> HookFn:
        def grab(x: torch.Tensor, _hook: object) -> None:
            got[point] = kind.activations(x[0]).float().cpu()  # (pos, unit)
            if len(got) == len(points):
                raise _Done

        return grab

    with (
        torch.inference_mode(),
        model.hooks(fwd=[(p, grabber(p)) for p in points]),
        contextlib.suppress(_Done),
    ):
        model(torch.tensor([ids], device=model.device))
    rows = [got[kind.hook(layer or 0)] for layer in layers]
    return UnitGrid(kind=kind.name, layers=layers, ids=ids, values=torch.stack(rows))


def quantize(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scales, codes) of (..., unit) values: ``scales[...]`` is the largest ``|value|`` over the
    units divided by 127 (0 where all are 0), ``codes`` the int8 values with ``codes * scale``
    within ``scale / 2`` of each value. Non-finite values are refused."""
    if not torch.isfinite(values).all():
        raise InputError("the activations hold a non-finite value (inf or NaN): the model overflowed")
    scales = values.abs().amax(dim=-1) / LEVELS
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.round(values / safe.unsqueeze(-1)).clamp(-LEVELS, LEVELS).to(torch.int8)
    return scales, codes


def dequantize(scales: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """The values :func:`quantize` packed (to within half a step)."""
    return codes.float() * scales.unsqueeze(-1)


def encode_codes(codes: torch.Tensor) -> str:
    """Base64 of int8 codes in row-major order (one byte each, two's complement)."""
    return base64.b64encode(codes.contiguous().numpy().tobytes()).decode("ascii")


def decode_codes(text: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The int8 codes :func:`encode_codes` wrote, as a tensor of ``shape``."""
    raw = bytearray(base64.b64decode(text))
    return torch.frombuffer(raw, dtype=torch.int8).reshape(shape).clone()
