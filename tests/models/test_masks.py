"""Masks and positions checked against brute force on tiny models."""

from __future__ import annotations

import torch

from tests.conftest import tiny_model


def test_sliding_window_layer_sees_only_the_window() -> None:
    gemma = tiny_model("gemma3")  # layer 0 slides over 3 tokens, layer 1 is global
    tokens = torch.randint(0, gemma.cfg.d_vocab, (1, 8))
    _, cache = gemma.run_with_cache(tokens, names="blocks.*.attn.pattern")
    local, full = cache["blocks.0.attn.pattern"][0], cache["blocks.1.attn.pattern"][0]
    q, k = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    assert torch.all(local[:, (k > q) | (q - k >= 3)] == 0)
    assert torch.all(local[:, (k <= q) & (q - k < 3)] > 0)
    assert torch.all(full[:, k <= q] > 0)


def test_sliding_window_with_kv_cache_matches_full_forward() -> None:
    gemma = tiny_model("gemma3")
    ids = torch.randint(0, gemma.cfg.d_vocab, (1, 7))
    out = gemma.generate(ids, max_new_tokens=6, stop_tokens=[]).tokens[0]
    full = gemma(torch.cat([ids, torch.tensor([out[:-1]])], dim=1))
    assert full[0, 6:].argmax(-1).tolist() == out


def test_left_padding_gives_the_same_logits_as_no_padding() -> None:
    for fam in ("llama", "gpt2", "gemma3", "neox"):
        model = tiny_model(fam)
        tokens, mask = model.to_tokens(["a much longer prompt", "short"])
        assert mask is not None
        batched = model(tokens, attention_mask=mask)
        alone = model.run("short")
        n = alone.shape[1]
        torch.testing.assert_close(batched[1, -n:], alone[0], atol=1e-5, rtol=1e-5)
        assert torch.isfinite(batched).all()  # padding rows attend to themselves: no NaN
