from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.generation import sample_next
from mechscope.models.hooks import HookPoint


def greedy_without_cache(model: HookedDecoder, ids: list[int], n: int) -> list[int]:
    out: list[int] = []
    for _ in range(n):
        logits = model(torch.tensor([ids + out]))
        out.append(int(logits[0, -1].argmax()))
    return out


def test_kv_cached_greedy_equals_recomputing_everything(model: HookedDecoder) -> None:
    ids = model.to_tokens("Hello there")[0][0].tolist()
    got = model.generate("Hello there", max_new_tokens=10, stop_tokens=[])
    assert got.tokens[0] == greedy_without_cache(model, ids, 10)
    assert got.stop_reasons == ["length"]


def test_logits_from_equal_the_full_forwards_rows(model: HookedDecoder) -> None:
    """Generation's prefill unembeds the last position alone; a hook on ``logits`` still sees every
    position (and its edit reaches the last row)."""
    tokens, mask = model.to_tokens(["Hi", "A longer prompt"])
    full = model(tokens, attention_mask=mask)
    last = model(tokens, attention_mask=mask, logits_from=-1)
    assert last.shape == (2, 1, full.shape[-1])
    torch.testing.assert_close(last, full[:, -1:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        model(tokens, attention_mask=mask, logits_from=2), full[:, 2:], rtol=1e-5, atol=1e-5
    )
    seen: list[int] = []

    def shift(logits: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        seen.append(logits.shape[1])
        return logits + torch.arange(logits.shape[1], dtype=logits.dtype)[None, :, None]

    with model.hooks(fwd=[("logits", shift)]):
        hooked = model(tokens, attention_mask=mask, logits_from=-1)
    assert seen == [tokens.shape[1]]
    torch.testing.assert_close(hooked, full[:, -1:] + tokens.shape[1] - 1, rtol=1e-5, atol=1e-4)


def test_batched_generation_equals_one_by_one(model: HookedDecoder) -> None:
    prompts = ["Hi", "A longer prompt"]
    batched = model.generate(prompts, max_new_tokens=6, stop_tokens=[])
    for i, p in enumerate(prompts):
        assert batched.tokens[i] == model.generate(p, max_new_tokens=6, stop_tokens=[]).tokens[0]


def test_generation_with_a_hook_sees_only_new_positions_and_applies(llama: HookedDecoder) -> None:
    seen: list[int] = []

    def force_token_7(logits: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        seen.append(logits.shape[1])
        out = torch.full_like(logits, -10.0)
        out[..., 7] = 10.0
        return out

    with llama.hooks(fwd=[("logits", force_token_7)]):
        got = llama.generate("abc", max_new_tokens=4, stop_tokens=[])
    assert got.tokens[0] == [7, 7, 7, 7]
    assert seen == [4, 1, 1, 1]  # "abc" + BOS, then one new position per step


def test_generation_with_an_ablated_neuron_matches_the_weight_edit(llama: HookedDecoder) -> None:
    def kill(x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        x = x.clone()
        x[..., :20] = 0
        return x

    with llama.hooks(fwd=[("blocks.0.mlp.post", kill)]):
        hooked = llama.generate("xyz", max_new_tokens=8, stop_tokens=[]).tokens[0]
    with torch.no_grad():
        w = llama.blocks[0].mlp.down_proj.weight
        saved = w.clone()
        w[:, :20] = 0
        edited = llama.generate("xyz", max_new_tokens=8, stop_tokens=[]).tokens[0]
        w.copy_(saved)
    assert hooked == edited


def test_stop_tokens_and_strings(llama: HookedDecoder) -> None:
    free = llama.generate("q", max_new_tokens=6, stop_tokens=[]).tokens[0]
    stopped = llama.generate("q", max_new_tokens=6, stop_tokens=[free[2]])
    assert stopped.tokens[0] == free[: free.index(free[2])]
    assert stopped.stop_reasons == ["stop_token"]
    text = llama.tokenizer.decode(free)  # type: ignore[union-attr]
    by_string = llama.generate("q", max_new_tokens=6, stop_tokens=[], stop_strings=[text[1:3]])
    assert by_string.stop_reasons == ["stop_string"] and text[1:3] not in by_string.text


def test_sampling_options() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.9]])
    assert sample_next(logits).tolist() == [1]
    g = torch.Generator().manual_seed(0)
    assert {int(sample_next(logits, 1.0, top_k=1, generator=g)) for _ in range(20)} == {1}
    assert {int(sample_next(logits, 1.0, top_p=0.01, generator=g)) for _ in range(20)} == {1}
    two = {int(sample_next(logits, 1.0, top_k=2, generator=g)) for _ in range(200)}
    assert two == {1, 3}
    nucleus = {int(sample_next(logits, 1.0, top_p=0.6, generator=g)) for _ in range(200)}
    assert nucleus == {1, 3}  # 1 alone holds < 0.6 of the mass; 1 and 3 together hold more
    with pytest.raises(InputError, match="top_p"):
        sample_next(logits, 1.0, top_p=1.5)
    with pytest.raises(InputError, match="temperature"):
        sample_next(logits, -1.0)


def test_seeded_sampling_is_reproducible(llama: HookedDecoder) -> None:
    a = llama.generate("ab", max_new_tokens=8, temperature=1.0, seed=3, stop_tokens=[]).tokens
    b = llama.generate("ab", max_new_tokens=8, temperature=1.0, seed=3, stop_tokens=[]).tokens
    assert a == b


def test_bad_inputs_are_clear_errors(llama: HookedDecoder) -> None:
    with pytest.raises(InputError, match="empty"):
        llama.run([[]])
    with pytest.raises(InputError, match="token ids must be in"):
        llama.run(torch.tensor([[1, 10_000]]))
    with pytest.raises(InputError, match="max_new_tokens"):
        llama.generate("a", max_new_tokens=-1)
