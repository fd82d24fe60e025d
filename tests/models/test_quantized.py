"""Opt-in 4-bit matmuls for generation (``generate(..., weights="q4")``, models/quantized.py)."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.models import quantized
from mechscope.models.decoder import HookedDecoder
from mechscope.models.hooks import HookPoint
from mechscope.models.quantized import GROUP, packed_linears, q4_groups, q4_matmuls
from tests.conftest import tiny_model


def q4_1_weight(out_features: int, in_features: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight as llama.cpp's Q4_1 dequantizes it (``d * q + m`` per block of 32, d and m in
    float16, each block's codes spanning 0..15), and its codes."""
    g = torch.Generator().manual_seed(seed)
    blocks = in_features // GROUP
    codes = torch.randint(0, 16, (out_features, blocks, GROUP), generator=g)
    codes[..., 0], codes[..., 1] = 0, 15  # the block's minimum and maximum
    d = (torch.rand(out_features, blocks, 1, generator=g) * 0.01 + 1e-3).half().float()
    m = (torch.randn(out_features, blocks, 1, generator=g) * 0.05).half().float()
    return (d * codes + m).reshape(out_features, in_features), codes.reshape(out_features, in_features)


def q4_model(family: str = "llama") -> HookedDecoder:
    """A tiny model whose block matrices hold Q4_1 values where the kernel takes their shape."""
    model = tiny_model(family)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            if name.startswith("blocks.") and p.dim() == 2 and p.shape[1] % GROUP == 0:
                p.copy_(q4_1_weight(*p.shape, seed=i)[0] * 10)
    return model


def test_groups_of_a_q4_1_weight_are_its_blocks() -> None:
    w, codes = q4_1_weight(48, 64)
    got, scale, low = q4_groups(w)
    assert torch.equal(got, codes.to(torch.int32))
    rebuilt = got.float().view(48, 2, GROUP) * scale[..., None] + low[..., None]
    torch.testing.assert_close(rebuilt.view(48, 64), w, atol=1e-7, rtol=0)


def test_q4_forward_is_close_to_float32_and_uses_the_packed_weights() -> None:
    model = q4_model()
    packs = packed_linears(model)
    # q, k, v, o, gate, up per layer; down (48 inputs) is not a multiple of 32 and stays float32.
    assert len(packs) == 6 * model.cfg.n_layers
    assert not any(model.block(i).mlp.down_proj in packs for i in range(model.cfg.n_layers))
    tokens, mask = model.to_tokens(["a longer prompt", "short"])
    exact = model(tokens, attention_mask=mask)
    with q4_matmuls(model):
        approx = model(tokens, attention_mask=mask)
    err = (approx - exact).abs().max()
    assert 0 < err < 0.02 * (exact.max() - exact.min())  # bfloat16 activations: close, not equal
    torch.testing.assert_close(model(tokens, attention_mask=mask), exact)  # float32 again outside


def test_long_inputs_keep_the_models_weights() -> None:
    """Above MAX_ROWS rows the int4 kernel is slower than float32: a long prefill stays exact."""
    model = q4_model()
    tokens = torch.randint(3, 40, (2, quantized.MAX_ROWS // 2 + 1))
    exact = model(tokens)
    with q4_matmuls(model):
        torch.testing.assert_close(model(tokens), exact, atol=0, rtol=0)
        assert not torch.allclose(model(tokens[:, :-1]), exact[:, :-1])


def test_a_weight_edit_rebuilds_its_packed_copy() -> None:
    model = q4_model()
    tokens = model.to_tokens("hello")[0]
    with q4_matmuls(model):
        before = model(tokens)
    with torch.no_grad():
        model.block(0).attn.o_proj.weight.mul_(-1.0)
    exact = model(tokens)
    with q4_matmuls(model):
        after = model(tokens)
    assert not torch.allclose(before, after, atol=1e-2)
    assert (after - exact).abs().max() < 0.02 * (exact.max() - exact.min())


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_q4_generation_runs_with_hooks(family: str) -> None:
    model = q4_model(family)
    seen: list[int] = []

    def force_token_7(logits: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        seen.append(logits.shape[1])
        out = torch.full_like(logits, -10.0)
        out[..., 7] = 10.0
        return out

    assert len(model.generate("abc", max_new_tokens=5, stop_tokens=[], weights="q4").tokens[0]) == 5
    with model.hooks(fwd=[("logits", force_token_7)]):
        got = model.generate("abc", max_new_tokens=3, stop_tokens=[], weights="q4")
    assert got.tokens[0] == [7, 7, 7] and seen == [4, 1, 1]
    assert quantized.active(model.block(0).attn.q_proj, torch.ones(1, 32)) is None  # the context ended


def test_bad_weight_modes_are_input_errors(llama: HookedDecoder) -> None:
    with pytest.raises(InputError, match="weights must be one of"):
        llama.generate("a", max_new_tokens=1, weights="int3")
    with pytest.raises(InputError, match="CPU only"):
        packed_linears(tiny_model("llama").to("meta"))
