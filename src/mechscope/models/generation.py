"""KV-cached sampling. Hooks attached to the model stay active, so one can generate with,
say, a neuron ablated: on each step a hook sees only that step's new positions."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from mechscope.errors import InputError
from mechscope.models.components import KVCache
from mechscope.models.quantized import WEIGHT_MODES, q4_matmuls

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
    weights: str = "model",
) -> Generation:
    """Sample up to ``max_new_tokens`` per prompt with a KV cache.

    ``stop_tokens`` defaults to the model's end-of-sequence ids; pass ``[]`` to never stop early.
    Batched prompts are left-padded; each row stops on its own. ``weights="q4"`` runs the blocks'
    matmuls on 4-bit copies of their weights (CPU; faster, not exact: see models/quantized.py).
    """
    if max_new_tokens < 0:
        raise InputError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if weights not in WEIGHT_MODES:
        raise InputError(f"weights must be one of {', '.join(WEIGHT_MODES)}; got {weights!r}")
    with q4_matmuls(model) if weights == "q4" else nullcontext():
        return _generate(
            model, prompt, max_new_tokens, temperature, top_k, top_p, stop_tokens, stop_strings, seed, add_bos
        )


def _generate(
    model: HookedDecoder,
    prompt: ModelInput,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    stop_tokens: Sequence[int] | None,
    stop_strings: Sequence[str],
    seed: int | None,
    add_bos: bool | None,
) -> Generation:
    tokens, mask = model.to_tokens(prompt, add_bos)
    b, t = tokens.shape
    if model.cfg.positional == "learned" and t + max_new_tokens > model.cfg.n_ctx:
        raise InputError(f"prompt ({t}) + max_new_tokens ({max_new_tokens}) exceeds n_ctx={model.cfg.n_ctx}")
    stops = set(model.cfg.eos_token_ids if stop_tokens is None else stop_tokens)
    gen = torch.Generator(device=model.device).manual_seed(seed) if seed is not None else None
    cache = KVCache(model.cfg, b, t + max_new_tokens, model.dtype, model.device)
    prompt_mask = mask.bool() if mask is not None else torch.ones(b, t, dtype=torch.bool, device=model.device)
    prompt_rows = [row[m].tolist() for row, m in zip(tokens, prompt_mask, strict=True)]
    # Padded rows need the mask of every position so far on every step: one buffer, sliced per step.
    full_mask = None
    if mask is not None:
        full_mask = torch.ones(b, t + max_new_tokens, dtype=torch.bool, device=model.device)
        full_mask[:, :t] = prompt_mask
    out: list[list[int]] = [[] for _ in range(b)]
    reasons = ["length"] * b
    done = [False] * b  # Python bools: a tensor here cost a few small ops per token
    step_input = tokens
    for step in range(max_new_tokens):
        step_mask = full_mask[:, : t + step] if full_mask is not None else None
        logits = model(step_input, attention_mask=step_mask, cache=cache, logits_from=-1)
        nxt = sample_next(logits[:, -1], temperature, top_k, top_p, gen)
        for i, tok in enumerate(nxt.tolist()):
            if done[i]:
                continue
            if tok in stops:
                done[i], reasons[i] = True, "stop_token"
                continue
            out[i].append(tok)
            if stop_strings and model.tokenizer is not None:
                text = model.tokenizer.decode(out[i])
                if any(s in text for s in stop_strings):
                    done[i], reasons[i] = True, "stop_string"
        if all(done):
            break
        step_input = nxt[:, None]
    texts = [model.tokenizer.decode(o) if model.tokenizer is not None else "" for o in out]
    if stop_strings:
        texts = [_cut_at_stop(s, stop_strings) for s in texts]
    return Generation(out, texts, prompt_rows, reasons)


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = min((text.index(s) for s in stops if s in text), default=len(text))
    return text[:cut]
