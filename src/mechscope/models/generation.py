"""KV-cached sampling. Hooks attached to the model stay active, so one can generate with,
say, a neuron ablated: on each step a hook sees only that step's new positions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from mechscope.errors import InputError
from mechscope.models.components import KVCache

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder, ModelInput


@dataclass
class Generation:
    """The result of :func:`generate`: new token ids and text per batch row."""

    tokens: list[list[int]]
    texts: list[str]
    prompt_tokens: list[list[int]]
    stop_reasons: list[str]  # "stop_token", "stop_string" or "length"

    @property
    def text(self) -> str:
        return self.texts[0]


def sample_next(
    logits: torch.Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next token ids (batch,) from last-position logits (batch, d_vocab); temperature 0 is greedy."""
    if temperature < 0:
        raise InputError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise InputError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise InputError(f"top_p must be in (0, 1], got {top_p}")
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        # Drop a token when the tokens before it already hold top_p of the mass.
        drop = probs.cumsum(-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.inference_mode()
def generate(
    model: HookedDecoder,
    prompt: ModelInput,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_tokens: Sequence[int] | None = None,
    stop_strings: Sequence[str] = (),
    seed: int | None = None,
    add_bos: bool | None = None,
) -> Generation:
    """Sample up to ``max_new_tokens`` per prompt with a KV cache.

    ``stop_tokens`` defaults to the model's end-of-sequence ids; pass ``[]`` to never stop early.
    Batched prompts are left-padded; each row stops on its own.
    """
    if max_new_tokens < 0:
        raise InputError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    tokens, mask = model.to_tokens(prompt, add_bos)
    b, t = tokens.shape
    if model.cfg.positional == "learned" and t + max_new_tokens > model.cfg.n_ctx:
        raise InputError(f"prompt ({t}) + max_new_tokens ({max_new_tokens}) exceeds n_ctx={model.cfg.n_ctx}")
    stops = set(model.cfg.eos_token_ids if stop_tokens is None else stop_tokens)
    gen = torch.Generator(device=model.device).manual_seed(seed) if seed is not None else None
    cache = KVCache(model.cfg, b, t + max_new_tokens, model.dtype, model.device)
    full_mask = mask.bool() if mask is not None else torch.ones(b, t, dtype=torch.bool, device=model.device)
    prompt_rows = [row[m].tolist() for row, m in zip(tokens, full_mask, strict=True)]
    out: list[list[int]] = [[] for _ in range(b)]
    reasons = ["length"] * b
    done = torch.zeros(b, dtype=torch.bool, device=model.device)
    step_input, step_mask = tokens, full_mask if mask is not None else None
    for _ in range(max_new_tokens):
        logits = model(step_input, attention_mask=step_mask, cache=cache, logits_from=-1)
        nxt = sample_next(logits[:, -1], temperature, top_k, top_p, gen)
        for i in range(b):
            if done[i]:
                continue
            tok = int(nxt[i])
            if tok in stops:
                done[i], reasons[i] = True, "stop_token"
                continue
            out[i].append(tok)
            if stop_strings and model.tokenizer is not None:
                text = model.tokenizer.decode(out[i])
                if any(s in text for s in stop_strings):
                    done[i], reasons[i] = True, "stop_string"
        if bool(done.all()):
            break
        step_input = nxt[:, None]
        if step_mask is not None:
            full_mask = torch.cat([full_mask, torch.ones(b, 1, dtype=torch.bool, device=model.device)], dim=1)
            step_mask = full_mask
    texts = [model.tokenizer.decode(o) if model.tokenizer is not None else "" for o in out]
    if stop_strings:
        texts = [_cut_at_stop(s, stop_strings) for s in texts]
    return Generation(out, texts, prompt_rows, reasons)


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = min((text.index(s) for s in stops if s in text), default=len(text))
    return text[:cut]
