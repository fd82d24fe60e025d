"""Weights pre-packed for MKL's GEMM, used for matmuls of a few rows (short prompts, the debugger)
where :mod:`.few_rows` does not split them over the threads instead (decode steps; CPUs other than
Intel's, where MKL runs such products on one core).

For a product of a few rows, MKL's ``sgemm`` spends most of its time re-packing the weight into
its panel layout on every call: a read and a write of the whole matrix before the one read that
multiplies. Packed once (``torch.ops.mkl._mkl_reorder_linear_weight``, what inductor's CPU
freezing uses) the weight is read once per call. Measured on SmolLM2's block linears, 2-core
Xeon, float32, ms for all 210 of them, packed / plain:

    rows   forward       backward (grad_out @ W)
    1      16.9 / 16.8   16.4 / 15.5   one row is MKL's gemv: no gain
    5      23.2 / 28.0   22.4 / 30.1
    16     30.3 / 40.5   29.8 / 39.3
    32     44.3 / 47.8   49.3 / 43.8
    128    114 / 110     110 / 107     the per-call packing is amortised

So a matmul of :data:`ROWS` rows uses the packed weight, and every other keeps ``F.linear``. A
16-token forward goes from 64.2 to 52.4 ms (the unembedding is packed too), and the debugger's
backward gains as much through a pack of the transposed weight, built the first time a backward
runs through it.

Cost: one more copy of each packed weight (two once a backward has run), built lazily: the
first short call pays for it (SmolLM2's first debugger call on a 14-token prompt 1.07 s instead
of 0.48; the next ones 0.15 s instead of 0.18-0.22; the server pays it at start instead,
``server/warm_up.py``). Capped by ``MECHSCOPE_PACKED_WEIGHTS_MB``
(default 2048, ``0`` turns packing off) over the process: the weights packed first keep their
packs, later ones stay plain.
Only float32 CPU weights that need no gradient (a loaded model's) are packed, and a pack is
rebuilt when its weight is edited in place or replaced.

Exactness: the packed product equals ``F.linear`` up to float rounding (~1e-6 relative; bit for
bit at 16 rows here, where MKL takes the same kernel). MKL documents a pack for the row count it
was built with, and torch's wrapper asks for that count; the layout of the packed operand does
not depend on it (it holds ``B``'s panels), which :func:`_self_check` confirms on first use
against ``F.linear`` at other row counts. Where it does not hold, packing stays off.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

ROWS = range(3, 25)
"""Row counts (batch x positions) whose matmuls use packed weights (see the module's table)."""

BUDGET_ENV = "MECHSCOPE_PACKED_WEIGHTS_MB"
DEFAULT_BUDGET_MB = 2048

_PACK_ROWS = 16  # the row count handed to MKL's packing; the packed layout of B is the same for all


@dataclass
class _Packs:
    """The packs of one weight: ``forward`` for ``x @ W.T``, ``backward`` for ``g @ W`` (built on
    the first backward). None where the budget had no room when it was asked for: not asked again
    until the weight changes, so a model over the budget pays one dictionary read per matmul."""

    forward: torch.Tensor | None
    weight: weakref.ref[torch.Tensor]  # the tensor they were built from (a replaced weight is another)
    source: tuple[int, int]  # its (data_ptr, _version) then: an in-place edit changes the version
    nbytes: int  # the weight's size: a pack's resident size
    backward: torch.Tensor | None = None
    backward_tried: bool = False


_CACHE: weakref.WeakKeyDictionary[nn.Module, _Packs] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_usable: bool | None = None


def budget_bytes() -> int:
    """The most memory packed weights may take in this process (``MECHSCOPE_PACKED_WEIGHTS_MB``)."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_BUDGET_MB
    except ValueError:
        log.warning("%s=%r is not a number of MiB; using %d", BUDGET_ENV, raw, DEFAULT_BUDGET_MB)
        mb = DEFAULT_BUDGET_MB
    return max(0, int(mb * 2**20))


def packed_nbytes() -> int:
    """Bytes held by live packs (each pack about its weight's size)."""
    return sum(p.nbytes * ((p.forward is not None) + (p.backward is not None)) for p in list(_CACHE.values()))


def clear() -> None:
    """Drop every pack (they are rebuilt on the next matmul that wants one, within the budget)."""
    with _LOCK:
        _CACHE.clear()


def linear(
    owner: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor
) -> torch.Tensor | None:
    """``F.linear(x, weight, bias)`` through ``weight``'s packs when it is worth it (``x`` has
    :data:`ROWS` rows, see the module docstring), else None: the caller runs its own matmul.
    ``owner`` is the module that holds ``weight`` (its packs are cached on it)."""
    rows = x.numel() // x.shape[-1] if x.dim() else 0
    if rows not in ROWS or weight.requires_grad or (bias is not None and bias.requires_grad):
        return None
    packs = _packs(owner, weight)
    if packs is None or packs.forward is None:
        return None
    if torch.is_grad_enabled() and x.requires_grad:
        out: torch.Tensor = _PackedLinear.apply(x, weight, bias, packs, rows)
        return out
    return torch.ops.mkl._mkl_linear(x, packs.forward, weight, bias, rows)


def _packs(owner: nn.Module, weight: torch.Tensor) -> _Packs | None:
    if weight.dtype != torch.float32 or weight.device.type != "cpu" or weight.dim() != 2:
        return None
    hit = _CACHE.get(owner)
    source = (weight.data_ptr(), weight._version)
    if hit is not None and hit.source == source and hit.weight() is weight:
        return hit
    if not _available():
        return None
    with _LOCK:
        _CACHE.pop(owner, None)  # a stale pack (its weight changed) no longer counts
        nbytes = weight.numel() * weight.element_size()
        fits = packed_nbytes() + nbytes <= budget_bytes()
        packs = _CACHE[owner] = _Packs(_pack(weight) if fits else None, weakref.ref(weight), source, nbytes)
    return packs


def _backward_pack(packs: _Packs, weight: torch.Tensor) -> torch.Tensor | None:
    """The pack of ``W.T`` (for ``g @ W``), built on the first backward within the budget."""
    if not packs.backward_tried:
        with _LOCK:
            if not packs.backward_tried and packed_nbytes() + packs.nbytes <= budget_bytes():
                packs.backward = _pack(weight.t().contiguous())
            packs.backward_tried = True
    return packs.backward


def _pack(weight: torch.Tensor) -> torch.Tensor:
    # Normal tensors even under inference_mode: the packs outlive the call, and a later forward
    # with gradients uses them.
    with torch.inference_mode(False), torch.no_grad():
        return torch.ops.mkl._mkl_reorder_linear_weight(weight.detach(), _PACK_ROWS)


class _PackedLinear(torch.autograd.Function):
    """``x @ W.T + b`` on the packs, with the input's gradient on the transposed pack (the
    weight and bias need none: :func:`linear` is only used for frozen weights)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, packs: _Packs, rows: int
    ) -> torch.Tensor:
        ctx.weight, ctx.packs, ctx.rows = weight, packs, rows
        return torch.ops.mkl._mkl_linear(x, packs.forward, weight, bias, rows)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (g,) = grads
        weight = ctx.weight
        pack = _backward_pack(ctx.packs, weight)
        if pack is None:  # the budget had no room for it
            return g @ weight, None, None, None, None
        return torch.ops.mkl._mkl_linear(g, pack, weight.t(), None, ctx.rows), None, None, None, None


def _available() -> bool:
    """Whether this torch has MKL's packed GEMM and it behaves as :mod:`this module <.>` assumes."""
    global _usable
    if _usable is None:
        _usable = _self_check()
    return _usable


def _self_check() -> bool:
    try:
        if not torch.backends.mkl.is_available():
            return False
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(96, 64, generator=gen)
        pack = _pack(w)
        pack_t = _pack(w.t().contiguous())
        for rows in (ROWS.start, _PACK_ROWS - 1, ROWS.stop - 1):
            x = torch.randn(rows, 64, generator=gen)
            g = torch.randn(rows, 96, generator=gen)
            fwd = torch.ops.mkl._mkl_linear(x, pack, w, None, rows)
            bwd = torch.ops.mkl._mkl_linear(g, pack_t, w.t(), None, rows)
            if not (torch.allclose(fwd, F.linear(x, w), atol=1e-4) and torch.allclose(bwd, g @ w, atol=1e-4)):
                log.info("MKL's packed GEMM disagrees with F.linear at %d rows: packing stays off", rows)
                return False
    except (RuntimeError, AttributeError) as e:  # no MKL ops in this build
        log.info("no MKL packed GEMM (%s): packing stays off", e)
        return False
    return True
