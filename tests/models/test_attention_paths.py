"""The two attention paths (fused SDPA, and explicit scores/pattern for hooks) compute the same thing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mechscope.models.decoder import HookedDecoder
from tests.conftest import CONFIGS, char_tokenizer, tiny_model

FAMILIES = ["llama", "gpt2", "neox", "gemma3"]


def without_softcap(family: str) -> HookedDecoder:
    """The tiny model, with attention soft-capping off so the fused path is allowed."""
    model = tiny_model(family)
    if model.cfg.attn_softcap:
        cfg = dataclasses.replace(CONFIGS[family], attn_softcap=0.0)
        other = HookedDecoder(cfg, char_tokenizer())
        other.load_state_dict(model.state_dict())
        model = other.eval().requires_grad_(False)
    return model


def explicit(model: HookedDecoder) -> dict[str, torch.Tensor]:
    """Forces the explicit path by watching every pattern; returns what it saw."""
    seen: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hook: object) -> None:
        seen[hook.name] = x  # type: ignore[attr-defined]

    model.add_hook("blocks.*.attn.pattern", keep)
    return seen


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batch_same_logits_on_both_paths(family: str) -> None:
    model = without_softcap(family)
    tokens, mask = model.to_tokens(["a much longer prompt here", "short", "mid length"])
    fused = model(tokens, attention_mask=mask)
    seen = explicit(model)
    try:
        slow = model(tokens, attention_mask=mask)
    finally:
        model.reset_hooks()
    assert len(seen) == model.cfg.n_layers
    torch.testing.assert_close(slow, fused, atol=1e-5, rtol=1e-5)
    # Rows of the pattern sum to 1, masked keys get exactly 0.
    for pattern in seen.values():
        torch.testing.assert_close(pattern.sum(-1), torch.ones(pattern.shape[:-1]))
        assert mask is not None
        assert torch.all(pattern[1, :, -1][:, ~mask[1].bool()] == 0)


@pytest.mark.parametrize("family", FAMILIES)
def test_kv_cached_generation_same_on_both_paths(family: str) -> None:
    model = without_softcap(family)
    prompts = ["first prompt", "2nd"]
    fused = model.generate(prompts, max_new_tokens=5, stop_tokens=[]).tokens
    explicit(model)
    try:
        slow = model.generate(prompts, max_new_tokens=5, stop_tokens=[]).tokens
    finally:
        model.reset_hooks()
    assert slow == fused


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_same_on_both_paths(family: str) -> None:
    model = without_softcap(family)
    tokens = torch.randint(3, model.cfg.d_vocab, (2, 9))

    def embed_grad() -> torch.Tensor:
        grads: list[torch.Tensor] = []
        model.add_hook("embed", lambda g, hook: grads.append(g), direction="bwd")
        model(tokens)[:, -1].logsumexp(-1).sum().backward()
        model.reset_hooks()
        return grads[0]

    fused = embed_grad()
    explicit(model)
    slow = embed_grad()
    torch.testing.assert_close(slow, fused, atol=1e-5, rtol=1e-4)
