"""transformers' Llama on mechscope's tensors (``_common.hf_llama``), as each workload uses it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from mechscope.models.decoder import HookedDecoder


def tokenizer(model: HookedDecoder) -> Any:
    """mechscope's tokenizer as a transformers tokenizer (the same ``tokenizers`` object); for a
    random model without one, a word-level stand-in over its vocabulary (peers such as the
    TransformerLens bridge would otherwise fetch one from the Hub)."""
    from transformers import PreTrainedTokenizerFast

    tok = model.tokenizer
    if tok is None:
        from tokenizers import Tokenizer as Backend
        from tokenizers.models import WordLevel

        vocab = {f"t{i}": i for i in range(model.cfg.d_vocab)}
        return PreTrainedTokenizerFast(
            tokenizer_object=Backend(WordLevel(vocab, unk_token="t0")), eos_token="t1"
        )
    out = PreTrainedTokenizerFast(tokenizer_object=tok.backend)
    # No bos_token: every peer gets token ids, never text, and with one the TransformerLens
    # bridge would reload the tokenizer by name from the Hub to make it prepend BOS.
    if tok.eos_ids:
        out.eos_token = tok.token_str(tok.eos_ids[0])
    return out


@contextmanager
def embeddings_need_grad(hf: Any) -> Iterator[None]:
    """Make the token embeddings' output require grad: the weights need none, so without this
    no graph is built; as in mechscope's own gradient path, the backward starts there."""
    emb = hf.get_input_embeddings()

    def hook(module: torch.nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        return out.requires_grad_()

    handle = emb.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def actgrad(hf: Any, x: torch.Tensor, target: int, distractor: int) -> torch.Tensor:
    """Activation x gradient per MLP neuron (summed over positions), (n_layers, d_mlp): forward
    pre-hooks on each ``mlp.down_proj`` keep its input and a tensor hook its gradient. Only the
    last position's logits are computed (``logits_to_keep=1``)."""
    layers = hf.model.layers
    acts: dict[int, torch.Tensor] = {}
    grads: dict[int, torch.Tensor] = {}

    def pre_hook(i: int) -> Any:
        def fn(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            a = args[0]
            acts[i] = a.detach()
            a.register_hook(lambda g: grads.__setitem__(i, g))

        return fn

    handles = [layer.mlp.down_proj.register_forward_pre_hook(pre_hook(i)) for i, layer in enumerate(layers)]
    try:
        with torch.enable_grad(), embeddings_need_grad(hf):
            logits = hf(input_ids=x, use_cache=False, logits_to_keep=1).logits
            (logits[0, -1, target] - logits[0, -1, distractor]).backward()
    finally:
        for h in handles:
            h.remove()
    return torch.stack([(acts[i] * grads[i]).sum((0, 1)) for i in range(len(layers))])


def cache_all(hf: Any, x: torch.Tensor) -> Any:
    """transformers' own "cache": every layer's residual stream (``output_hidden_states``) and
    attention pattern (``output_attentions``, eager attention), logits included."""
    return hf(input_ids=x, use_cache=False, output_hidden_states=True, output_attentions=True)


def cache_tensors(out: Any) -> list[torch.Tensor]:
    return [out.logits, *out.hidden_states, *out.attentions]


def save_folder(model: HookedDecoder, hf: Any, path: Path) -> None:
    """A Hugging Face checkpoint folder of ``model`` (config, safetensors, tokenizer), for the
    load benchmark: every loader then reads the same files."""
    hf.save_pretrained(path)
    tokenizer(model).save_pretrained(path)


def load_folder(path: Path) -> Any:
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(path, dtype=torch.float32)
