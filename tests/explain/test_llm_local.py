"""The in-process backend on a tiny random-weight llama (character tokenizer, ChatML template),
checked against plain forwards of the same model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mechscope.errors import InputError
from mechscope.explain import llm_local
from mechscope.explain.backends import make_llm, map_calls
from mechscope.explain.chat_template import ChatTemplateError
from mechscope.explain.llm import LLMError, Message, PromptTooLong
from mechscope.explain.llm_cache import LLMCache
from mechscope.explain.llm_local import LocalLLM
from mechscope.models.decoder import HookedDecoder
from mechscope.models.generation import Generation
from tests.conftest import tiny_model

# SmolLM2's template without its default system prompt: the ChatML shape.
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
MSGS = [Message("system", "Rate 0-10."), Message("user", "cat")]
N_CTX = 256


def tiny_chat_llama(seed: int = 0) -> HookedDecoder:
    """The tiny llama with ChatML and a 256-token context (one token per character: rotary
    positions, so the context is only a limit)."""
    model = tiny_model("llama", seed)
    model.cfg = replace(model.cfg, n_ctx=N_CTX)
    assert model.tokenizer is not None
    model.tokenizer.chat_template = CHATML
    return model


@pytest.fixture
def llama() -> HookedDecoder:
    return tiny_chat_llama()


def test_renders_the_model_template(llama: HookedDecoder) -> None:
    llm = LocalLLM(llama)
    assert (
        llm.render(MSGS)
        == "<|im_start|>system\nRate 0-10.<|im_end|>\n<|im_start|>user\ncat<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = llm.prompt_ids(MSGS)
    assert ids[0] == 1 and llama.tokenizer is not None  # the char tokenizer adds BOS; the template did not
    assert "".join(llama.tokenizer.token_strs(ids[1:])) == llm.render(MSGS)


def test_a_model_without_template_gets_the_plain_fallback(llama: HookedDecoder) -> None:
    assert llama.tokenizer is not None
    llama.tokenizer.chat_template = None
    assert LocalLLM(llama).render(MSGS) == "system: Rate 0-10.\nuser: cat\nassistant:"


def test_without_template_generation_stops_at_the_next_turn(
    llama: HookedDecoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert llama.tokenizer is not None
    llama.tokenizer.chat_template = None
    tok = llama.tokenizer
    said = tok.encode(" 7\nuser: more", add_bos=False)
    seen: dict[str, object] = {}

    def scripted(model: HookedDecoder, prompt: torch.Tensor, **kw: object) -> Generation:
        seen.update(kw)
        return Generation([said], [" 7"], [prompt[0].tolist()], ["stop_string"])

    monkeypatch.setattr(llm_local, "generate", scripted)
    out = LocalLLM(llama).complete(MSGS, max_tokens=20, top_logprobs=1)
    assert seen["stop_strings"] == ("\nsystem:", "\nuser:", "\nassistant:")
    assert (out.text, out.finish_reason) == (" 7", "stop")
    assert out.logprobs is not None and [t.token for t in out.logprobs] == [" ", "7"]


def test_template_errors_are_typed(llama: HookedDecoder) -> None:
    assert llama.tokenizer is not None
    llama.tokenizer.chat_template = "{{ raise_exception('System role not supported') }}"
    with pytest.raises(ChatTemplateError, match="System role not supported"):
        LocalLLM(llama).complete(MSGS, max_tokens=2)


def _forward_logprobs(model: HookedDecoder, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids]))[0].float(), -1)  # (pos, d_vocab)


def test_prompt_logprobs_equal_a_plain_forward(llama: HookedDecoder) -> None:
    llm = LocalLLM(llama)
    prefix = "cat\tunknown\n"
    got = llm.prompt_logprobs(MSGS, prefix, top_logprobs=4)
    assert got is not None and llama.tokenizer is not None
    prompt = llm.prompt_ids(MSGS)
    ids = prompt + llama.tokenizer.encode(prefix, add_bos=False)
    lp = _forward_logprobs(llama, ids)
    assert [t.token for t in got] == list(prefix)
    for j, t in enumerate(got):
        row = lp[len(prompt) + j - 1]  # the position before token j predicts it
        assert t.logprob == pytest.approx(float(row[ids[len(prompt) + j]]), abs=1e-5)
        values, index = row.topk(4)
        expected = {llama.tokenizer.token_str(int(i)): float(v) for v, i in zip(values, index, strict=True)}
        expected.setdefault(t.token, t.logprob)
        assert t.top == pytest.approx(expected, abs=1e-5)


def test_batched_prompt_logprobs_equal_one_at_a_time(llama: HookedDecoder) -> None:
    llm = LocalLLM(llama, max_batch_tokens=10_000)
    requests = [
        (MSGS, "a\t3\n"),
        ([Message("user", "a much longer question here")], "b\tunknown"),
        (MSGS, ""),
    ]
    batched = llm.prompt_logprobs_batch(requests, top_logprobs=2)
    assert batched[2] == []
    for (messages, prefix), got in zip(requests, batched, strict=True):
        alone = llm.prompt_logprobs(messages, prefix, top_logprobs=2)
        assert alone is not None
        assert [t.token for t in got] == [t.token for t in alone]
        assert [t.logprob for t in got] == pytest.approx([t.logprob for t in alone], abs=1e-5)


def test_greedy_completion_is_deterministic_and_its_logprobs_match_a_forward(llama: HookedDecoder) -> None:
    llm = LocalLLM(llama)
    a = llm.complete(MSGS, max_tokens=8, top_logprobs=3)
    b = llm.complete(MSGS, max_tokens=8, top_logprobs=3)
    assert a == b
    assert a.logprobs is not None and llama.tokenizer is not None
    answer = [llama.tokenizer.backend.token_to_id(t.token) for t in a.logprobs]
    assert a.text == llama.tokenizer.decode(answer)
    assert a.finish_reason == ("length" if len(answer) == 8 else "stop")
    prompt = llm.prompt_ids(MSGS)
    lp = _forward_logprobs(llama, prompt + answer)
    for j, t in enumerate(a.logprobs):
        row = lp[len(prompt) + j - 1]
        assert int(row.argmax()) == answer[j]  # the KV-cached greedy step chose the forward's argmax
        assert t.logprob == pytest.approx(float(row.max()), abs=1e-5)
        assert len(t.top) == 3 and max(t.top.values()) == pytest.approx(t.logprob, abs=1e-6)


def test_threads_share_one_model_safely(llama: HookedDecoder) -> None:
    llm = LocalLLM(llama)
    prompts = [[Message("user", f"question {i}")] for i in range(6)]
    alone = [llm.complete(p, max_tokens=5, top_logprobs=2) for p in prompts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda p: llm.complete(p, max_tokens=5, top_logprobs=2), prompts))
    assert together == alone


def test_sampling_is_seeded_by_the_request(llama: HookedDecoder) -> None:
    llm = LocalLLM(llama)
    first = llm.complete(MSGS, max_tokens=6, temperature=1.0)
    assert llm.complete(MSGS, max_tokens=6, temperature=1.0) == first
    assert first.logprobs is None


def test_prompt_over_the_context_is_refused_naming_both_lengths(llama: HookedDecoder) -> None:
    llm = LocalLLM(llama)
    long = [Message("user", "x" * 300)]
    with pytest.raises(PromptTooLong, match=r"is 3\d\d tokens; .*context is 256 tokens") as e:
        llm.complete(long, max_tokens=2)
    assert isinstance(e.value, InputError) and isinstance(e.value, LLMError)
    with pytest.raises(PromptTooLong, match="prompt and assistant prefix are 2"):
        llm.prompt_logprobs([Message("user", "x" * 200)], "y" * 40, top_logprobs=1)


def test_generation_stops_at_the_context_with_length(llama: HookedDecoder) -> None:
    llama.cfg = replace(llama.cfg, eos_token_ids=())  # nothing stops it but the context
    llm = LocalLLM(llama)
    msgs = [Message("user", "x" * 200)]
    room = llama.cfg.n_ctx - len(llm.prompt_ids(msgs))
    out = llm.complete(msgs, max_tokens=500, top_logprobs=1)
    assert out.logprobs is not None and len(out.logprobs) == room
    assert out.finish_reason == "length"


def test_local_answers_are_cached(
    llama: HookedDecoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = LLMCache(tmp_path / "c.sqlite")
    llm = LocalLLM(llama, "tiny", cache=cache)
    first = llm.complete(MSGS, max_tokens=4, top_logprobs=2)
    lps = llm.prompt_logprobs(MSGS, "ab", top_logprobs=2)

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model ran although the answer was cached")

    monkeypatch.setattr(llm_local, "generate", boom)
    monkeypatch.setattr(LocalLLM, "_logprobs_rows", boom)
    again = LocalLLM(llama, "tiny", cache=LLMCache(tmp_path / "c.sqlite"))
    assert again.complete(MSGS, max_tokens=4, top_logprobs=2) == first
    assert again.prompt_logprobs(MSGS, "ab", top_logprobs=2) == lps
    other = LocalLLM(tiny_chat_llama(seed=1), "tiny", cache=LLMCache(tmp_path / "c.sqlite"))
    with pytest.raises(AssertionError, match="cached"):  # other weights, another key: it must run
        other.complete(MSGS, max_tokens=4, top_logprobs=2)


def test_make_llm_and_map_calls(llama: HookedDecoder, tmp_path: Path) -> None:
    llm = make_llm("local", decoder=llama, cache=tmp_path / "c.sqlite")
    assert isinstance(llm, LocalLLM) and llm.name == "local"

    def call(i: int) -> str:
        if i == 1:
            raise PromptTooLong("too long")
        return llm.complete([Message("user", str(i))], max_tokens=2).text

    out = map_calls(llm, call, range(3))
    assert isinstance(out[1], PromptTooLong) and isinstance(out[0], str)
    with pytest.raises(InputError, match="model"):
        make_llm("http://localhost:1/v1", use_cache=False)
    with pytest.raises(InputError, match="'local' or an endpoint"):
        make_llm("openai", use_cache=False)


@pytest.mark.slow
def test_smollm2_template_and_a_short_completion() -> None:
    from mechscope.models.loading import load_model

    model = load_model()
    llm = LocalLLM(model)
    msgs = [Message("system", "You are terse."), Message("user", "What is the capital of France?")]
    assert llm.render(msgs) == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert model.tokenizer is not None
    start = model.tokenizer.single_token("<|im_start|>")
    assert llm.prompt_ids(msgs).count(start) == 3  # special tokens are single tokens, not text
    out = llm.complete(msgs, max_tokens=12, top_logprobs=2)
    assert out.text.strip() and out.finish_reason in ("stop", "length")
    assert out.logprobs is not None and len(out.logprobs) >= 1
    digits = llm.prompt_logprobs(msgs, "Paris\t7", top_logprobs=5)
    assert digits is not None and digits[-1].token == "7"


def test_always_reports_one_token_texts_at_every_position_wherever_they_rank(llama: HookedDecoder) -> None:
    llm = LocalLLM(llama)
    prefix = "cat\tunknown\n"
    got = llm.prompt_logprobs(MSGS, prefix, top_logprobs=1, always=["q", "z", "not one token"])
    assert got is not None and llama.tokenizer is not None
    prompt = llm.prompt_ids(MSGS)
    ids = prompt + llama.tokenizer.encode(prefix, add_bos=False)
    lp = _forward_logprobs(llama, ids)
    q, z = (llama.tokenizer.encode(t, add_bos=False)[0] for t in "qz")
    for j, t in enumerate(got):
        row = lp[len(prompt) + j - 1]
        assert t.top["q"] == pytest.approx(float(row[q]), abs=1e-5)
        assert t.top["z"] == pytest.approx(float(row[z]), abs=1e-5)
        assert "not one token" not in t.top and len(t.top) <= 4  # the top 1, the chosen token, q, z
    assert llm.prompt_logprobs(MSGS, prefix, top_logprobs=1) != got  # another request, not a cache hit
