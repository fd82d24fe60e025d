"""Opt-in 4-bit weight-only matmuls for generation: ``model.generate(..., weights="q4")``.

A decode step reads every weight once, so its speed is the memory's: SmolLM2's 540 MB of float32
take ~21 ms at this machine's ~25 GB/s, whatever the code around them does. Stored as 4-bit codes
in groups of 32 with a scale and a zero per group (torch's CPU int4 kernel,
``w = (q - 8) * scale + zero``), the blocks' linears read ~0.6 byte a weight instead of 4.

The groups are those of a GGUF Q4_1 file: llama.cpp stores ``w = d * q + m`` per block of 32 with
``m`` the block's minimum and ``m + 15 d`` its maximum, so the dequantized float32 weights the
decoder holds give the file's codes back exactly (``zero = m + 8 d``); no file is re-read. Weights of
any other origin are quantized the same way (min/max per group), with their rounding error on top.

Not exact: torch's kernel is only fast with bfloat16 activations, scales and outputs (its float32
variant is ~25x slower here), so logits move by ~1e-2 of their range (SmolLM2: up to ~0.4 where
they span ~40); greedy text can diverge after some tokens. The embedding and unembedding stay in the
model's dtype, and so does a matmul of more than :data:`MAX_ROWS` rows (a long prompt's prefill),
where the kernel is slower than float32. Never the default, and nothing in the debugger or collation
uses it (collation's batches are far above the crossing): it is for sampling text, where speed
matters and the last bit does not.

Packed weights are built on first use (about a second for SmolLM2, ~70 MB) and cached per model
until a weight changes (in place or replaced), like ``weights.layer_weights``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

GROUP = 32
"""Weights per scale and zero: a GGUF Q4_0/Q4_1 block."""

MAX_ROWS = 32
"""Matmuls of more rows (batch x positions) keep the model's weights: there the kernel's work, not
the weights' bytes, dominates, and it loses (measured on SmolLM2, 2 cores: 0.60x the float32 time
at 1 row, 0.76x at 16, 0.99x at 32, 1.23x at 64, 1.50x at 128). So decode steps and short prompts
run on 4 bits, a long prompt's prefill on the model's weights; collation never gains."""

WEIGHT_MODES = ("model", "q4")
"""What ``generate(weights=...)`` accepts: the model's own weights, or 4-bit blocks."""


@dataclass
class Q4Linear:
    """The weight of one ``nn.Linear`` as packed 4-bit codes; called like ``F.linear(x, _, bias)``."""

    packed: torch.Tensor  # (out, in / 2) uint8, torch's CPU int4 layout
    scales_zeros: torch.Tensor  # (in / GROUP, out, 2) bfloat16
    source: tuple[int, int]  # (data_ptr, _version) of the weight it was built from

    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        out = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x.reshape(-1, x.shape[-1]).to(torch.bfloat16), self.packed, GROUP, self.scales_zeros
        )
        out = out.to(x.dtype).view(*x.shape[:-1], out.shape[-1])
        return out + bias if bias is not None else out


def q4_groups(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes (out, in) in 0..15, scale and minimum (out, in / GROUP): ``w ~ scale * code + minimum``
    per group, exactly when ``weight`` was dequantized from Q4_1 (see the module docstring)."""
    out_features, in_features = weight.shape
    groups = weight.detach().float().reshape(out_features, in_features // GROUP, GROUP)
    low, high = groups.amin(-1), groups.amax(-1)
    scale = (high - low) / 15
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))  # a constant group: every code 0
    codes = ((groups - low[..., None]) / safe[..., None]).round_().clamp_(0, 15)
    return codes.reshape(out_features, in_features).to(torch.int32), scale, low


def pack(linear: nn.Linear) -> Q4Linear | None:
    """``linear`` as a :class:`Q4Linear`, or None when the kernel cannot take its shape (the input
    width a multiple of 32, the output width of 16)."""
    w = linear.weight
    if w.device.type != "cpu" or w.shape[1] % GROUP or w.shape[0] % 16:
        return None
    codes, scale, low = q4_groups(w)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
    # torch's form: (q - 8) * scale + zero, i.e. zero = minimum + 8 * scale.
    scales_zeros = torch.stack([scale.t(), (low + 8 * scale).t()], -1).to(torch.bfloat16).contiguous()
    return Q4Linear(packed, scales_zeros, (w.data_ptr(), w._version))


_ACTIVE: ContextVar[dict[nn.Module, Q4Linear] | None] = ContextVar("mechscope_q4_linears", default=None)
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[nn.Module, Q4Linear | None]] = weakref.WeakKeyDictionary()


def active(linear: nn.Module, x: torch.Tensor) -> Q4Linear | None:
    """The packed twin of ``linear`` for input ``x`` when a :func:`q4_matmuls` block is running and
    ``x`` has at most :data:`MAX_ROWS` rows, else None (``components._linear`` asks this once per
    matmul: one context-variable read when the mode is off)."""
    packs = _ACTIVE.get()
    if packs is None or x.numel() > MAX_ROWS * x.shape[-1]:
        return None
    return packs.get(linear)


def packed_linears(model: HookedDecoder) -> dict[nn.Module, Q4Linear]:
    """Every block linear of ``model`` that the kernel can take, packed; cached, and rebuilt for
    a linear whose weight was replaced or edited in place since."""
    if model.device.type != "cpu":
        raise InputError(
            f"weights='q4' runs on CPU only (torch's int4 CPU kernel); the model is on {model.device}"
        )
    cache = _CACHE.setdefault(model, {})
    out: dict[nn.Module, Q4Linear] = {}
    with torch.no_grad():
        for block in model.blocks:
            for linear in block.modules():
                if not isinstance(linear, nn.Linear):
                    continue
                hit = cache.get(linear)
                w = linear.weight
                if linear not in cache or (hit is not None and hit.source != (w.data_ptr(), w._version)):
                    hit = cache[linear] = pack(linear)
                if hit is not None:
                    out[linear] = hit
    return out


@contextmanager
def q4_matmuls(model: HookedDecoder) -> Iterator[None]:
    """Within the block, ``model``'s block linears run on 4-bit weights (hooks still run)."""
    token = _ACTIVE.set(packed_linears(model))
    try:
        yield
    finally:
        _ACTIVE.reset(token)
