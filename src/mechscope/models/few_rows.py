"""Which product a linear of few rows runs: the weight's rows split into blocks multiplied one per
thread, MKL's packed weights (:mod:`.packed_weights`), or plain ``F.linear``.

MKL may run a product of a few rows on one core. On a 2-core AMD EPYC (MKL 2024.2, torch 2.13) a
decode step's matrix-vector products read the weights at 11 GB/s where both cores together read
at 20-25, and a 16-row product runs at 7-10 GB/s. Splitting the weight's rows into blocks and
multiplying them in one ``torch.bmm`` (torch runs a batched product one batch entry per thread)
lets every core stream its own rows. The weight is only viewed, never copied. Measured on SmolLM2
there, medians of alternating rounds, logits identical bit for bit:

    decode step (1 row)     50.9 -> 32.4 ms a token (generation; transformers: 53.6)
    forward, 4 tokens       72.9 -> 43.4 ms
    forward, 16 tokens      92.3 -> 72.9 ms (against the packs, which split replaces there)
    forward, 128 tokens     306 -> 274 ms
    forward, 512 tokens     1036 -> 1037 ms (MKL threads products this large: not split)

Where it splits:

- **one or two rows** (decode steps), on every CPU. Such a product reads each weight once and is
  bound by memory: more readers cannot make it slower (on the Xeon of earlier measurements MKL's
  own one-row products were already at the read bandwidth; there it is a tie).
- **3 to** :data:`MAX_ROWS` **rows where MKL runs on a CPU that is not Intel's**
  (:func:`mkl_single_core_products`). MKL picks its kernels by CPU vendor; on Intel its packed
  weights made a 16-row forward 0.76x the plain one (``packed_weights``), and those stay.

The numbers do not depend on the thread count: the number of blocks is a property of the machine
(:func:`blocks_for`, from its core count) and of the weight's shape, never of
``torch.get_num_threads()``, so a Ray worker on one thread computes what the driver computes on
all of them (``docs/datasets.md``: distributed collation equals one pass bit for bit). Split needs
float32 weights on the CPU; a weight whose rows no block count divides takes the other paths.
Gradients flow through ``bmm`` as usual (the debugger's backward is split too).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
from torch import nn

from mechscope.models import packed_weights

ALWAYS_SPLIT_ROWS = 2
"""Products of at most this many rows (decode steps) split on every CPU."""

MAX_ROWS = 256
"""Products of more rows are never split (MKL threads them: a 512-token forward gained nothing)."""

MAX_BLOCKS = 8
"""The most blocks a weight is split into (one per core, up to this many)."""


def linear(
    owner: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor
) -> torch.Tensor | None:
    """``F.linear(x, weight, bias)`` by the product for ``x``'s row count (see the module
    docstring), or None where that is plain ``F.linear``: the caller runs its own matmul.
    ``owner`` is the module that holds ``weight`` (packs are cached on it)."""
    rows = x.numel() // x.shape[-1] if x.dim() else 0
    if 0 < rows <= MAX_ROWS and (rows <= ALWAYS_SPLIT_ROWS or mkl_single_core_products()):
        blocks = blocks_for(weight, x)
        if blocks > 1:
            return split_linear(weight, bias, x, blocks)
    return packed_weights.linear(owner, weight, bias, x)


def split_linear(
    weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor, blocks: int
) -> torch.Tensor:
    """``x @ weight.T + bias`` as ``blocks`` blocks of the weight's rows in one ``bmm``, one block
    per thread. ``blocks`` must divide ``weight.shape[0]``."""
    n, k = weight.shape
    rows = x.numel() // k
    xs = x.reshape(1, rows, k).expand(blocks, rows, k)
    w = weight.view(blocks, n // blocks, k).transpose(1, 2)  # (blocks, k, n / blocks), a view
    out = torch.bmm(xs, w) if bias is None else torch.baddbmm(bias.view(blocks, 1, n // blocks), xs, w)
    # (blocks, rows, n / blocks) -> (rows, n): a copy only where there is more than one row
    return out.view(*x.shape[:-1], n) if rows == 1 else out.transpose(0, 1).reshape(*x.shape[:-1], n)


def blocks_for(weight: torch.Tensor, x: torch.Tensor) -> int:
    """How many blocks ``weight``'s rows split into for ``x``: the most, up to the machine's
    cores (at most :data:`MAX_BLOCKS`), that divide its rows; 1 (not split) for what split does
    not serve."""
    if not (
        weight.dim() == 2
        and weight.dtype == torch.float32
        and x.dtype == torch.float32
        and weight.device.type == "cpu"
        and weight.is_contiguous()
    ):
        return 1
    n = weight.shape[0]
    return next(b for b in range(min(_cores(), MAX_BLOCKS), 0, -1) if n % b == 0)


@functools.cache
def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.cache
def mkl_single_core_products() -> bool:
    """Whether torch's matmuls run on MKL on a CPU that is not Intel's, where MKL runs products
    of a few rows on one core (measured on an AMD EPYC; module docstring)."""
    if not torch.backends.mkl.is_available():
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:  # not Linux: no way to tell, keep MKL's own choice
        return False
    return not_intel(cpuinfo)


def not_intel(cpuinfo: str) -> bool:
    """Whether ``/proc/cpuinfo``'s text names a CPU vendor, and not Intel."""
    vendor = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("vendor_id")), ""
    )
    return bool(vendor) and vendor != "GenuineIntel"
