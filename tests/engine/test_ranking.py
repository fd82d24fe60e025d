"""The two-stage top-k returns the same values as a full sort."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.ranking import top_indices


@pytest.mark.parametrize("shape", [(7,), (3, 5000), (2, 4, 64, 64), (5, 40, 1536), (1, 4096 * 9 + 17)])
@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [1, 10, 32])
def test_top_indices_match_a_full_sort(shape: tuple[int, ...], largest: bool, k: int) -> None:
    torch.manual_seed(0)
    t = torch.randn(shape)
    flat = t.flatten()
    idx = top_indices(t, k, largest)
    assert idx.shape == (min(k, flat.numel()),)
    assert len(set(idx.tolist())) == len(idx)
    expected = flat.sort(descending=largest).values[: len(idx)]
    torch.testing.assert_close(flat[idx].sort(descending=largest).values, expected, rtol=0, atol=0)


def test_the_extreme_in_the_ragged_tail_is_found() -> None:
    t = torch.zeros(4096 * 30 + 5)
    t[-1] = 3.0
    t[-2] = -3.0
    assert top_indices(t, 1).tolist() == [len(t) - 1]
    assert top_indices(t, 1, largest=False).tolist() == [len(t) - 2]


def test_ties_give_k_distinct_indices() -> None:
    t = torch.ones(4096 * 40)
    assert len(set(top_indices(t, 10).tolist())) == 10
