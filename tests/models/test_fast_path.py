"""The no-hook fast path (``Block.fast``) computes what the hooked path computes, is taken only
when a block has nothing attached, and leaves every hook working."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import torch

from mechscope.models.components import RotaryTable, rope_inv_freq
from mechscope.models.decoder import Block, HookedDecoder
from mechscope.models.hooks import HookPoint
from tests.conftest import CONFIGS, char_tokenizer, tiny_model

# The conftest families plus a Qwen2-like one (a Llama with q/k/v biases).
QWEN2 = dataclasses.replace(CONFIGS["llama"], architecture="qwen2", qkv_bias=True, tie_embeddings=False)
FAMILIES = [*sorted(CONFIGS), "qwen2"]
PROMPTS = ["a much longer prompt here", "short", "mid length"]


def model_of(family: str) -> HookedDecoder:
    if family != "qwen2":
        return tiny_model(family)
    torch.manual_seed(0)
    model = HookedDecoder(QWEN2, char_tokenizer())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return model.eval().requires_grad_(False)


@contextmanager
def hooked_path(model: HookedDecoder) -> Iterator[None]:
    """Every block on the hooked path: a hook that only reads, on each block's input."""
    with model.hooks(fwd=[("blocks.*.resid_pre", lambda x, hook: None)]):
        yield


@contextmanager
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the blocks that ran ``Block.fast`` (a path that was never taken proves nothing)."""
    calls: list[int] = []
    original = Block.fast

    def counting(self: Block, x: torch.Tensor, ctx: object) -> torch.Tensor:
        calls.append(self.attn.layer)
        return original(self, x, ctx)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(Block, "fast", counting)
        yield calls


def fast_and_hooked(
    model: HookedDecoder, run: Callable[[], torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> tuple[torch.Tensor, torch.Tensor]:
    with fast_calls(monkeypatch) as calls:
        fast = run()
        assert calls, "the fast path was not taken"
        calls.clear()
        with hooked_path(model):
            hooked = run()
        assert not calls, "a hooked block took the fast path"
    return fast, hooked


@pytest.mark.parametrize("family", FAMILIES)
def test_same_logits_padded_batch_and_logits_from(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_of(family)
    tokens, mask = model.to_tokens(PROMPTS)
    for logits_from in (None, -1, 2):
        fast, hooked = fast_and_hooked(
            model, lambda f=logits_from: model(tokens, attention_mask=mask, logits_from=f), monkeypatch
        )
        torch.testing.assert_close(fast, hooked, atol=1e-5, rtol=1e-5)
    single = model.to_tokens("one prompt")[0]
    fast, hooked = fast_and_hooked(model, lambda: model(single), monkeypatch)
    torch.testing.assert_close(fast, hooked, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_same_logits_through_a_kv_cache(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A padded prefill, a two-token chunk (causal with a past) and single-token steps."""
    from mechscope.models.components import KVCache

    model = model_of(family)
    tokens, mask = model.to_tokens(PROMPTS)
    assert mask is not None
    extra = torch.tensor([[5, 6, 7], [8, 9, 10], [11, 12, 13]])
    full_mask = torch.cat([mask, torch.ones_like(extra)], 1)

    def run() -> torch.Tensor:
        cache = KVCache(model.cfg, 3, tokens.shape[1] + 3, model.dtype, model.device)
        n = tokens.shape[1]
        out = [model(tokens, attention_mask=mask, cache=cache)]
        out.append(model(extra[:, :2], attention_mask=full_mask[:, : n + 2], cache=cache))
        out.append(model(extra[:, 2:], attention_mask=full_mask, cache=cache, logits_from=-1))
        return torch.cat(out, 1)

    fast, hooked = fast_and_hooked(model, run, monkeypatch)
    torch.testing.assert_close(fast, hooked, atol=1e-5, rtol=1e-5)
    # And equal to the whole sequence in one uncached forward.
    whole = model(torch.cat([tokens, extra], 1), attention_mask=full_mask)
    torch.testing.assert_close(fast, whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_unchanged(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_of(family)
    with fast_calls(monkeypatch) as calls:
        fast = model.generate(PROMPTS, max_new_tokens=8, stop_tokens=[]).tokens
        assert calls
    with hooked_path(model):
        hooked = model.generate(PROMPTS, max_new_tokens=8, stop_tokens=[]).tokens
    assert fast == hooked


def test_a_live_hook_fires_and_edits_while_other_blocks_run_fast(
    llama: HookedDecoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = llama.to_tokens("hello")[0]
    seen: list[tuple[int, ...]] = []

    def kill(x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        seen.append(tuple(x.shape))
        x = x.clone()
        x[..., :10] = 0
        return x

    plain = llama(tokens)
    with fast_calls(monkeypatch) as calls, llama.hooks(fwd=[("blocks.0.mlp.post", kill)]):
        hooked = llama(tokens)
    assert calls == [1] and len(seen) == 1  # block 0 took the hooked path, block 1 the fast one
    with torch.no_grad():
        w = llama.block(0).mlp.down_proj.weight
        saved = w.clone()
        w[:, :10] = 0
        edited = llama(tokens)
        w.copy_(saved)
    torch.testing.assert_close(hooked, edited, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(hooked, plain)


def test_torch_module_hooks_still_run(llama: HookedDecoder) -> None:
    """``register_forward_hook`` on a part of a block sends that block down the hooked path."""
    tokens = llama.to_tokens("hello")[0]
    plain = llama(tokens)
    handle = llama.block(1).mlp.register_forward_hook(lambda mod, args, out: out * 0)
    try:
        hooked = llama(tokens)
    finally:
        handle.remove()
    with torch.no_grad():
        w = llama.block(1).mlp.down_proj.weight
        saved = w.clone()
        w.zero_()
        zeroed = llama(tokens)
        w.copy_(saved)
    torch.testing.assert_close(hooked, zeroed)
    torch.testing.assert_close(llama(tokens), plain)  # and off again once removed


def test_in_place_weight_edits_reach_the_fast_path(
    llama: HookedDecoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = llama.to_tokens("hello")[0]
    before = llama(tokens)
    with torch.no_grad():
        llama.block(0).attn.q_proj.weight.mul_(2.0)
    fast, hooked = fast_and_hooked(llama, lambda: llama(tokens), monkeypatch)
    torch.testing.assert_close(fast, hooked, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fast, before)


def test_gradients_through_the_fast_path(llama: HookedDecoder, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = llama.to_tokens("hello")[0]
    w = llama.block(0).mlp.up_proj.weight
    grads = []
    for hooked in (False, True):
        w.requires_grad_(True)
        with fast_calls(monkeypatch) as calls:
            if hooked:
                with hooked_path(llama):
                    loss = llama(tokens)[0, -1, 3]
            else:
                loss = llama(tokens)[0, -1, 3]
        assert bool(calls) != hooked
        (grad,) = torch.autograd.grad(loss, w)
        grads.append(grad)
        w.requires_grad_(False)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_bfloat16_fast_path_equals_hooked(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("gemma3").to(torch.bfloat16)
    tokens, mask = model.to_tokens(PROMPTS)
    fast, hooked = fast_and_hooked(model, lambda: model(tokens, attention_mask=mask), monkeypatch)
    assert fast.dtype == torch.bfloat16
    torch.testing.assert_close(fast, hooked)


def test_rotary_table_grows_and_matches_a_fresh_computation() -> None:
    inv = rope_inv_freq(CONFIGS["llama"], 10000.0, scaled=False)
    table = RotaryTable(inv)
    small = table.rows(5, torch.device("cpu"), torch.float32)[0]
    cos, sin = table.rows(700, torch.device("cpu"), torch.float32)
    assert cos.shape[0] >= 700 and torch.equal(cos[: small.shape[0]], small)
    angles = torch.arange(700, dtype=torch.float32)[:, None] * inv
    torch.testing.assert_close(cos[:700], torch.cat([angles.cos()] * 2, -1))
    torch.testing.assert_close(sin[:700], torch.cat([-angles.sin(), angles.sin()], -1))
    # A gather of explicit positions equals the slice of the same rows.
    positions = torch.arange(600, 604)[None].expand(2, 4)
    gathered = table.at(positions, 0, 604, torch.device("cpu"), torch.float32)
    sliced = table.at(None, 600, 4, torch.device("cpu"), torch.float32)
    torch.testing.assert_close(gathered.cos, sliced.cos.expand(2, -1, -1, -1))
    torch.testing.assert_close(gathered.sin, sliced.sin.expand(2, -1, -1, -1))


def test_a_parametrized_weight_is_read_through_its_property(
    llama: HookedDecoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch.nn.utils import parametrize

    class Double(torch.nn.Module):
        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return w * 2

    tokens = llama.to_tokens("hello")[0]
    before = llama(tokens)
    parametrize.register_parametrization(llama.block(0).attn.q_proj, "weight", Double())
    fast, hooked = fast_and_hooked(llama, lambda: llama(tokens), monkeypatch)
    torch.testing.assert_close(fast, hooked, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fast, before)
