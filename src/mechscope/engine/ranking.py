"""Top-k over large metric tensors without a single-threaded sort of every element.

``torch.topk`` on a flat tensor of tens of millions of entries is slow on CPU (one thread, ~250
ms for the head pairs of 256 tokens). The k largest entries always lie in the k rows with the
largest row maxima (each such entry's row has a maximum at least as large), so one parallel
pass for row maxima and a top-k over k rows give the same set in a few milliseconds.
"""

from __future__ import annotations

import torch

_ROW = 4096  # row width of the two-stage search; small tensors take the plain path


def top_indices(t: torch.Tensor, k: int, largest: bool = True) -> torch.Tensor:
    """Flat indices of the ``k`` largest (or smallest) entries of ``t`` (ties broken arbitrarily)."""
    flat = t.reshape(-1)
    n = flat.numel()
    k = min(k, n)
    rows = n // _ROW
    if rows <= 2 * k:
        return flat.topk(k, largest=largest).indices
    body = flat[: rows * _ROW].view(rows, _ROW)
    extremes = body.amax(1) if largest else body.amin(1)
    best_rows = extremes.topk(k, largest=largest).indices
    cand = (best_rows[:, None] * _ROW + torch.arange(_ROW, device=t.device)).reshape(-1)
    cand = torch.cat([cand, torch.arange(rows * _ROW, n, device=t.device)])
    return cand[flat[cand].topk(k, largest=largest).indices]
