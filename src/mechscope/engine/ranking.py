"""Top-k over large metric tensors without a single-threaded sort of every element.

``torch.topk`` on a flat tensor of tens of millions of entries is slow on CPU (one thread, ~250
ms for the head pairs of 256 tokens), and costs ~5 ns an entry even at a hundred thousand. The
k largest entries always lie in the k rows with the largest row maxima (each such entry's row
has a maximum at least as large), so one vectorised pass for row maxima and a top-k over k
gathered rows give the same set for a fraction of the cost.
"""

from __future__ import annotations

import torch

_ROW = 1024  # the widest row of the two-stage search
_MIN_ROW = 64  # tensors too small for rows this wide take the plain path


def top_indices(t: torch.Tensor, k: int, largest: bool = True) -> torch.Tensor:
    """Flat indices of the ``k`` largest (or smallest) entries of ``t`` (ties broken arbitrarily)."""
    flat = t.reshape(-1)
    n = flat.numel()
    k = min(k, n)
    # Rows narrow enough that there are many more of them than k, so that the k best rows are
    # a small part of the tensor.
    width = min(_ROW, n // (8 * max(k, 1)))
    if width < _MIN_ROW:
        return flat.topk(k, largest=largest).indices
    rows = n // width
    body = flat[: rows * width].view(rows, width)
    extremes = body.amax(1) if largest else body.amin(1)
    best_rows = extremes.topk(k, largest=largest).indices
    tail = flat[rows * width :]  # the ragged end, always a candidate
    cand = torch.cat([body[best_rows].reshape(-1), tail])
    pick = cand.topk(k, largest=largest).indices
    in_body = pick < k * width
    row_pick = pick.clamp(max=k * width - 1)
    from_body = best_rows[row_pick // width] * width + row_pick % width
    return torch.where(in_body, from_body, rows * width + pick - k * width)
