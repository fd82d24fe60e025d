"""A model mechscope loads, as an in-process :class:`~mechscope.explain.llm.LLM`: offline, free,
and with logprobs at every position (the default is the shipped SmolLM2-135M-Instruct: weak, but real).

- The chat is rendered with the model's own template (:mod:`.chat_template`).
- ``complete`` samples with the KV-cached :func:`mechscope.models.generation.generate`; its
  logprobs (when asked) come from one teacher-forced forward over prompt + answer and are the
  model's own distribution (temperature 1), as llama.cpp's server reports them (pre-sampling).
- ``prompt_logprobs`` is one forward over prompt + assistant prefix: what the all-at-once
  simulator needs, and what chat endpoints no longer return.
- One lock around the model: torch already uses every core, so calls run one at a time.
- Answers go to the :class:`LLMCache` (when given) keyed by the model's name and weights
  fingerprint, the chat template, the messages and every parameter.
- Hooks attached to the model stay active during calls (the answers are then the edited model's).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from mechscope.errors import InputError
from mechscope.explain.chat_template import FALLBACK_STOPS, render_chat
from mechscope.explain.llm import (
    Completion,
    LLMError,
    Message,
    PromptTooLong,
    TokenLogprobs,
    check_request,
)
from mechscope.explain.llm_cache import (
    LLMCache,
    completion_from_json,
    completion_to_json,
    logprobs_from_json,
    logprobs_to_json,
    request_key,
)
from mechscope.models.generation import generate

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder
    from mechscope.models.tokenizer import Tokenizer

T = TypeVar("T")
R = TypeVar("R")
PromptRequest = tuple[list[Message], str]  # (messages, assistant_prefix)


class LocalLLM:
    """``LocalLLM(model)``: ``name`` is "local"; ``model`` is ``name`` or the model's own name.

    ``max_batch_tokens`` bounds one batched forward of :meth:`prompt_logprobs_batch` (rows x
    longest row), which bounds its memory: the logits are ``max_batch_tokens x d_vocab`` floats.
    """

    concurrency = 1

    def __init__(
        self,
        model: HookedDecoder,
        name: str | None = None,
        *,
        cache: LLMCache | None = None,
        max_batch_tokens: int = 4096,
    ) -> None:
        if model.tokenizer is None:
            raise InputError("the local LLM backend needs a model with a tokenizer")
        self.decoder = model
        self.tokenizer: Tokenizer = model.tokenizer
        self.name = "local"
        self.model = name or model.cfg.name or "local-model"
        self.cache = cache
        self.max_batch_tokens = max_batch_tokens
        self._lock = threading.Lock()
        self._identity: dict[str, str] | None = None
        # The config's end-of-sequence ids and the tokenizer's end-of-generation ones (a GGUF's
        # tokenizer adds e.g. Gemma's <end_of_turn>, as llama.cpp does).
        self.stop_tokens = sorted(set(model.cfg.eos_token_ids) | set(model.tokenizer.eos_ids))

    def __repr__(self) -> str:
        return f"LocalLLM({self.model!r})"

    # ----- the LLM protocol ------------------------------------------------------------------
    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_logprobs: int = 0,
        json_schema: dict[str, object] | None = None,
    ) -> Completion:
        """Greedy (temperature 0) or sampled generation, at most up to the model's context
        (``finish_reason="length"`` then). ``json_schema`` is not enforced: no constrained
        decoding, the caller parses the text."""
        check_request(messages, max_tokens, temperature, top_logprobs)
        params = {"max_tokens": max_tokens, "temperature": temperature, "top_logprobs": top_logprobs}
        key = self._key("complete", messages, params)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return completion_from_json(hit)
        ids = self.prompt_ids(messages)
        n_ctx = self.decoder.cfg.n_ctx
        if len(ids) >= n_ctx:
            raise PromptTooLong(f"the prompt is {len(ids)} tokens; {self.model}'s context is {n_ctx} tokens")
        # Sampling is seeded from the request: the same request samples the same answer.
        seed = int(key[:8], 16) if temperature > 0 else None
        stops = () if self.tokenizer.chat_template else FALLBACK_STOPS
        with self._lock:
            gen = generate(
                self.decoder,
                torch.tensor([ids]),
                max_new_tokens=min(max_tokens, n_ctx - len(ids)),
                temperature=temperature,
                stop_tokens=self.stop_tokens,
                stop_strings=stops,
                seed=seed,
            )
            answer = gen.tokens[0]
            if gen.stop_reasons[0] == "stop_string":  # the text was cut at the stop: cut the tokens too
                answer = answer[: self._tokens_within(answer, len(gen.texts[0]))]
            logprobs = None
            if top_logprobs > 0:
                logprobs = self._logprobs_rows([(ids + answer, len(ids))], top_logprobs)[0] if answer else []
        finish = "length" if gen.stop_reasons[0] == "length" else "stop"
        completion = Completion(gen.texts[0], finish, logprobs)
        if self.cache is not None:
            self.cache.put(key, completion_to_json(completion))
        return completion

    def prompt_logprobs(
        self,
        messages: list[Message],
        assistant_prefix: str,
        *,
        top_logprobs: int,
        always: Sequence[str] = (),
    ) -> list[TokenLogprobs] | None:
        """Teacher-forced logprobs of each token of ``assistant_prefix`` (tokenized on its own, so
        the tokens are the prefix's whatever the template ends with), in one forward; ``always``'s
        one-token texts are read from the whole distribution at every position."""
        return self.prompt_logprobs_batch(
            [(messages, assistant_prefix)], top_logprobs=top_logprobs, always=always
        )[0]

    def prompt_logprobs_batch(
        self, requests: Sequence[PromptRequest], *, top_logprobs: int, always: Sequence[str] = ()
    ) -> list[list[TokenLogprobs]]:
        """:meth:`prompt_logprobs` of several (messages, assistant_prefix) pairs, right-padded into
        as few forwards as ``max_batch_tokens`` allows (causal attention: padding after a row's
        last token changes nothing before it)."""
        out: list[list[TokenLogprobs] | None] = [None] * len(requests)
        todo: list[tuple[int, list[int], int, str]] = []  # (index, ids, prefix start, cache key)
        extra = self._single_tokens(always)
        for i, (messages, prefix) in enumerate(requests):
            check_request(messages, 1, 0.0, top_logprobs)
            params = {"prefix": prefix, "top_logprobs": top_logprobs, "always": sorted(extra)}
            key = self._key("prompt_logprobs", messages, params)
            if self.cache is not None and (hit := self.cache.get(key)) is not None:
                out[i] = logprobs_from_json(hit["logprobs"])
                continue
            prompt = self.prompt_ids(messages)
            ids = prompt + self.tokenizer.encode(prefix, add_bos=False)
            if len(ids) > self.decoder.cfg.n_ctx:
                raise PromptTooLong(
                    f"prompt and assistant prefix are {len(ids)} tokens; {self.model}'s context is "
                    f"{self.decoder.cfg.n_ctx} tokens"
                )
            if not prompt:
                raise InputError("the rendered chat has no tokens; nothing to condition the prefix on")
            todo.append((i, ids, len(prompt), key))
        for group in _batches(sorted(todo, key=lambda r: len(r[1])), self.max_batch_tokens):
            with self._lock:
                rows = [(ids, start) for _, ids, start, _ in group]
                results = self._logprobs_rows(rows, top_logprobs, extra)
            for (i, _, _, key), result in zip(group, results, strict=True):
                out[i] = result
                if self.cache is not None:
                    self.cache.put(key, {"logprobs": logprobs_to_json(result)})
        return [r if r is not None else [] for r in out]

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R | LLMError]:
        """``fn(item)`` for each item, one at a time (the model is one lock); a call that raised
        :class:`LLMError` gives that error in its place."""
        out: list[R | LLMError] = []
        for item in items:
            try:
                out.append(fn(item))
            except LLMError as e:
                out.append(e)
        return out

    # ----- tokens and logprobs ---------------------------------------------------------------
    def _tokens_within(self, ids: list[int], n_chars: int) -> int:
        """How many leading tokens of ``ids`` print as at most ``n_chars`` characters."""
        k = total = 0
        while k < len(ids) and total + len(self.tokenizer.token_str(ids[k])) <= n_chars:
            total += len(self.tokenizer.token_str(ids[k]))
            k += 1
        return k

    def render(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        """The prompt text of ``messages`` through the model's chat template."""
        tok = self.tokenizer
        bos = tok.token_str(tok.bos_id) if tok.bos_id is not None else ""
        eos = tok.token_str(tok.eos_ids[0]) if tok.eos_ids else ""
        return render_chat(
            tok.chat_template,
            messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos,
            eos_token=eos,
        )

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """Token ids of the rendered chat. The template writes its own special tokens; BOS is
        added only when the tokenizer adds one and the template did not (as llama.cpp's server)."""
        tok = self.tokenizer
        ids = tok.encode(self.render(messages), add_bos=False)
        if tok.add_bos and tok.bos_id is not None and (not ids or ids[0] != tok.bos_id):
            ids.insert(0, tok.bos_id)
        return ids

    def _single_tokens(self, texts: Sequence[str]) -> dict[str, int]:
        """The texts of ``texts`` that are one token, with its id."""
        out = {}
        for t in texts:
            ids = self.tokenizer.encode(t, add_bos=False)
            if len(ids) == 1:
                out[t] = ids[0]
        return out

    @torch.inference_mode()
    def _logprobs_rows(
        self, rows: list[tuple[list[int], int]], top_logprobs: int, extra: dict[str, int] | None = None
    ) -> list[list[TokenLogprobs]]:
        """For each (ids, start): the logprob of every token from ``start`` on given those before
        it, with the ``top_logprobs`` most likely alternatives and the ``extra`` tokens (text -> id)
        wherever they rank. One forward for all rows."""
        longest = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_id or 0
        tokens = torch.tensor(
            [ids + [pad] * (longest - len(ids)) for ids, _ in rows], device=self.decoder.device
        )
        # Position p's logits predict token p + 1: none are needed before the earliest start - 1
        # (a simulator's prompt is mostly instructions and examples before the record it scores).
        first = max(min(start for _, start in rows) - 1, 0)
        logits = self.decoder(tokens, logits_from=first)  # (batch, pos - first, d_vocab)
        out = []
        for b, (ids, start) in enumerate(rows):
            lp = torch.log_softmax(logits[b, start - 1 - first : len(ids) - 1 - first].float(), dim=-1)
            target = torch.tensor(ids[start:], device=lp.device)
            chosen = lp.gather(-1, target[:, None])[:, 0].tolist()
            top_v, top_i = lp.topk(top_logprobs, dim=-1)  # (pos, top_logprobs), most likely first
            wanted = lp[:, list(extra.values())] if extra else None  # (pos, len(extra))
            row = []
            for j, token_id in enumerate(ids[start:]):
                token = self.tokenizer.token_str(token_id)
                top: dict[str, float] = {}
                # Two ids may print alike (byte tokens): keep the likelier, which comes first.
                for v, t in zip(top_v[j].tolist(), top_i[j].tolist(), strict=True):
                    top.setdefault(self.tokenizer.token_str(t), v)
                top.setdefault(token, chosen[j])
                for text, value in zip(
                    extra or {}, wanted[j].tolist() if wanted is not None else [], strict=True
                ):
                    top.setdefault(text, value)
                row.append(TokenLogprobs(token, chosen[j], top))
            out.append(row)
        return out

    def _key(self, method: str, messages: list[Message], params: dict[str, Any]) -> str:
        if self._identity is None:
            self._identity = {"model": self.model, "weights": _fingerprint(self.decoder)}
            self._identity["template"] = hashlib.sha256(
                (self.tokenizer.chat_template or "").encode()
            ).hexdigest()
        request = {
            "backend": "local",
            **self._identity,
            "method": method,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **params,
        }
        return request_key(request)


def _batches(
    rows: list[tuple[int, list[int], int, str]], max_tokens: int
) -> list[list[tuple[int, list[int], int, str]]]:
    """Consecutive rows (sorted by length) grouped so that rows x longest <= max_tokens."""
    groups: list[list[tuple[int, list[int], int, str]]] = []
    for row in rows:
        if groups and (len(groups[-1]) + 1) * len(row[1]) <= max_tokens:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def _fingerprint(model: HookedDecoder) -> str:
    from mechscope.data.collate import weights_fingerprint

    return weights_fingerprint(model)
