"""What ``model.to_tokens`` (and so every ``run``, ``attribute`` ...) accepts as input, and the
error that names what is allowed otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mechscope.errors import InputError
from tests.conftest import tiny_model


def test_a_flat_list_of_token_ids_is_one_sequence() -> None:
    model = tiny_model("llama")
    want, _ = model.to_tokens([[5, 6, 7]])
    for ids in ([5, 6, 7], (5, 6, 7), [np.int64(5), np.int64(6), np.int64(7)], list(torch.tensor([5, 6, 7]))):
        got, mask = model.to_tokens(ids)  # type: ignore[arg-type]
        assert torch.equal(got, want) and mask is None


def test_a_batch_of_id_sequences_is_left_padded() -> None:
    tokens, mask = tiny_model("llama").to_tokens([[5, 6, 7], [8]])
    assert tokens.shape == (2, 3) and tokens[1, -1] == 8
    assert mask is not None and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


@pytest.mark.parametrize("bad", [[1.5, 2.0], [[1, 2], "ab", None], [object()]])
def test_anything_else_is_an_input_error_naming_what_is_allowed(bad: object) -> None:
    with pytest.raises(InputError, match="neither a string nor a sequence of token ids"):
        tiny_model("llama").to_tokens(bad)  # type: ignore[arg-type]
