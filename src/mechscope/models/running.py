"""Turning user input into token tensors, and caching activations during a forward."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING

import torch

from mechscope.errors import InputError
from mechscope.models.activation_cache import ActivationCache
from mechscope.models.buffer_pool import pool_for_caches
from mechscope.models.hooks import GRAD_SUFFIX, HookPoint, NameFilter, compile_filter

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder, ModelInput


def to_tokens(
    model: HookedDecoder, inputs: ModelInput, add_bos: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token ids (batch, pos) on the model's device and a left-padding mask (None if unpadded)."""
    if isinstance(inputs, torch.Tensor):
        tokens = inputs if inputs.dim() == 2 else inputs[None]
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise InputError(f"token tensor must be integer (batch, pos) or (pos), got {tuple(inputs.shape)}")
        _check_ids(model, tokens)
        return tokens.to(model.device, torch.long), None
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, Sequence) or len(inputs) == 0:
        raise InputError("input must be a string, a non-empty list of strings or token ids")
    flat = _token_ids(inputs)  # a flat sequence of ids is one sequence
    seqs = [flat] if flat is not None else [_sequence(model, item, add_bos) for item in inputs]
    if any(not ids for ids in seqs):
        raise InputError("an input is empty: it has no tokens")
    return left_pad(model, seqs)


def _sequence(model: HookedDecoder, item: object, add_bos: bool | None) -> list[int]:
    """The token ids of one input: a string through the tokenizer, or token ids as given."""
    if isinstance(item, str):
        if model.tokenizer is None:
            raise InputError("this model has no tokenizer; pass token ids")
        return model.tokenizer.encode(item, add_bos)
    ids = _token_ids(item)
    if ids is None:
        raise InputError(
            f"input item {item!r:.40} is neither a string nor a sequence of token ids; give a string, "
            "token ids, or a list of either"
        )
    return ids


def _token_ids(item: object) -> list[int] | None:
    """``item`` as token ids when it is a sequence of integers (Python, numpy or 0-d tensors)."""
    if isinstance(item, str) or not isinstance(item, Sequence):
        return None
    try:
        return [operator.index(i) for i in item]
    except TypeError:
        return None


def left_pad(model: HookedDecoder, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Left-pad sequences so that every last token sits at the last position."""
    longest = max(len(s) for s in seqs)
    pad = 0
    if model.tokenizer is not None and model.tokenizer.pad_id is not None:
        pad = model.tokenizer.pad_id
    tokens = torch.full((len(seqs), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), longest), dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, longest - len(s) :] = torch.tensor(list(s), dtype=torch.long)
        mask[i, longest - len(s) :] = 1
    _check_ids(model, tokens)
    if bool(mask.all()):
        return tokens.to(model.device), None
    return tokens.to(model.device), mask.to(model.device)


def _check_ids(model: HookedDecoder, tokens: torch.Tensor) -> None:
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= model.cfg.d_vocab):
        raise InputError(
            f"token ids must be in [0, {model.cfg.d_vocab}); got {int(tokens.min())}..{int(tokens.max())}"
        )


def run_with_cache(
    model: HookedDecoder,
    inputs: ModelInput,
    names: NameFilter,
    detach: bool,
    add_bos: bool | None,
    incl_bwd: bool = False,
    metric: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, ActivationCache]:
    tokens, mask = to_tokens(model, inputs, add_bos)
    known = model.hook_names(include_opt_in=names is not None)
    selected = compile_filter(names, known)
    store: dict[str, torch.Tensor] = {}
    # Pooled copies only where malloc would give the memory back (buffer_pool.py), and only for
    # tensors without a graph: a copy would cut it.
    pool = pool_for_caches() if detach and not incl_bwd else None
    keep: Callable[[torch.Tensor], torch.Tensor] | None = None

    def save(x: torch.Tensor, hook: HookPoint) -> torch.Tensor | None:
        if keep is not None and not x.requires_grad:
            store[hook.name] = x = keep(x)
            return x  # passed on, so that the model's own tensor is freed at once
        store[hook.name] = x.detach() if detach else x
        return None

    def save_grad(g: torch.Tensor, hook: HookPoint) -> None:
        store[hook.name + GRAD_SUFFIX] = g.detach()

    points = [model.hook_points[n] for n in selected]
    handles = [p.add(save) for p in points]
    if incl_bwd:
        handles += [p.add(save_grad, "bwd") for p in points]
    try:
        with (
            torch.enable_grad() if incl_bwd else nullcontext(),
            pool.recording() if pool else nullcontext() as keep,
        ):
            logits = model(tokens, attention_mask=mask)
            if incl_bwd:
                value = metric(logits) if metric is not None else next_token_loss(logits, tokens, mask)
                if value.numel() != 1:
                    raise InputError(
                        f"metric must return a scalar to differentiate, got {tuple(value.shape)}"
                    )
                value.backward()
    finally:
        for h in handles:
            h.remove()
    ordered = {n: store[n] for n in selected if n in store}
    if incl_bwd:
        ordered.update(
            {n + GRAD_SUFFIX: store[n + GRAD_SUFFIX] for n in selected if n + GRAD_SUFFIX in store}
        )
        logits = logits.detach()
    return logits, ActivationCache(ordered, tokens, mask)


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy of predicting each next token (padding excluded): TransformerLens' "loss"."""
    if tokens.shape[1] < 2:
        raise InputError("the next-token loss needs at least two tokens; pass metric= for one")
    nll, _ = next_token_nll(logits, tokens)
    if mask is None:
        return nll.mean()
    keep = mask[:, 1:].to(nll.dtype)
    return (nll * keep).sum() / keep.sum()


def next_token_nll(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each position's negative log-likelihood of the next token (batch, pos - 1), and the
    log-probabilities it was read from (batch, pos - 1, vocab), in fp32."""
    logp = logits[:, :-1].float().log_softmax(-1)
    return -logp.gather(-1, tokens[:, 1:, None])[..., 0], logp
