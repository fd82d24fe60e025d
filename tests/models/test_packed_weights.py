"""MKL-packed weights for matmuls of a few rows (models/packed_weights.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import torch

from mechscope.models import few_rows, packed_weights
from mechscope.models.decoder import HookedDecoder
from tests.conftest import tiny_model

T = TypeVar("T")

pytestmark = pytest.mark.skipif(not packed_weights._available(), reason="this torch has no MKL packed GEMM")


@pytest.fixture(autouse=True)
def fresh_packs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(few_rows, "MAX_ROWS", 0)  # no product splits over threads (test_few_rows.py)
    monkeypatch.delenv(packed_weights.BUDGET_ENV, raising=False)
    packed_weights.clear()
    yield
    packed_weights.clear()


def unpacked(fn: Callable[[], T], monkeypatch: pytest.MonkeyPatch) -> T:
    """``fn()`` with packing off: the plain ``F.linear`` result to compare with."""
    monkeypatch.setenv(packed_weights.BUDGET_ENV, "0")
    packed_weights.clear()
    try:
        out = fn()
        assert packed_weights.packed_nbytes() == 0
        return out
    finally:
        monkeypatch.delenv(packed_weights.BUDGET_ENV)
        packed_weights.clear()


def block_linears(model: HookedDecoder) -> list[torch.nn.Linear]:
    return [m for m in model.blocks.modules() if isinstance(m, torch.nn.Linear)]


def embed_grad(model: HookedDecoder, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the gradient of one logit at the last position w.r.t. the embeddings."""
    positions = torch.arange(tokens.shape[1]).expand(tokens.shape)
    with torch.enable_grad():
        emb = x = model.embed_step(tokens, positions, track_grad=True)
        ctx = model.attention_context(positions, None)
        for i in range(model.cfg.n_layers):
            x = model.block(i)(x, ctx)
        logits = model.unembed(model.final_norm(x))
        (grad,) = torch.autograd.grad(logits[0, -1, 3], [emb])
    return logits.detach(), grad


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3"])
@pytest.mark.parametrize("length", [3, 9, 16, 24])
def test_a_forward_of_a_few_rows_uses_the_packs_and_equals_f_linear(
    family: str, length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_model(family)
    tokens = torch.randint(3, model.cfg.d_vocab, (1, length), generator=torch.Generator().manual_seed(length))
    expected = unpacked(lambda: model(tokens), monkeypatch)
    got = model(tokens)
    linears = block_linears(model)
    assert (
        packed_weights.packed_nbytes() == sum(m.weight.numel() * 4 for m in linears) + model.W_U.numel() * 4
    )
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_rows_outside_the_band_keep_f_linear() -> None:
    model = tiny_model("llama")
    model(torch.randint(3, 60, (1, 1)))
    model(torch.randint(3, 60, (1, packed_weights.ROWS.stop)))
    assert packed_weights.packed_nbytes() == 0
    model(torch.randint(3, 60, (2, 4)))  # batch x positions is what counts
    assert packed_weights.packed_nbytes() > 0


def test_input_gradients_through_the_transposed_packs_equal_f_linears(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = tiny_model("llama")
    tokens = torch.randint(3, 60, (1, 12), generator=torch.Generator().manual_seed(1))
    expected = unpacked(lambda: embed_grad(model, tokens), monkeypatch)
    logits, grad = embed_grad(model, tokens)
    backward_packs = sum(p.backward is not None for p in packed_weights._CACHE.values())
    assert backward_packs == len(block_linears(model)) + 1  # and the unembedding's
    torch.testing.assert_close(logits, expected[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, expected[1], rtol=1e-5, atol=1e-6)


def test_an_edited_or_replaced_weight_is_packed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("llama")
    tokens = torch.randint(3, 60, (1, 8), generator=torch.Generator().manual_seed(2))
    model(tokens)  # packs the original weights
    mlp = model.block(0).mlp
    with torch.no_grad():
        mlp.down_proj.weight.mul_(3.0)  # in place: same storage, new version
        model.block(1).attn.o_proj.weight = torch.nn.Parameter(
            torch.randn_like(model.block(1).attn.o_proj.weight), requires_grad=False
        )
    edited = model(tokens)
    expected = unpacked(lambda: model(tokens), monkeypatch)
    torch.testing.assert_close(edited, expected, rtol=1e-5, atol=1e-5)


def test_the_budget_caps_the_packs_and_the_rest_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("llama")
    tokens = torch.randint(3, 60, (1, 8), generator=torch.Generator().manual_seed(3))
    expected = unpacked(lambda: model(tokens), monkeypatch)
    one = block_linears(model)[0].weight.numel() * 4
    monkeypatch.setenv(packed_weights.BUDGET_ENV, str(2.5 * one / 2**20))
    got = model(tokens)
    assert 0 < packed_weights.packed_nbytes() <= 2.5 * one
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_weights_that_need_gradients_are_never_packed() -> None:
    model = tiny_model("llama").requires_grad_(True)
    logits = model(torch.randint(3, 60, (1, 8)))
    logits.sum().backward()
    assert packed_weights.packed_nbytes() == 0
    assert model.block(0).mlp.down_proj.weight.grad is not None
