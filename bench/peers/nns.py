"""nnsight wrapping transformers' Llama on mechscope's tensors (transformers' default sdpa attention).

nnsight runs the body of a ``with model.trace(...)`` block from its source, so these functions
must stay in a file (they do) and use plain loops inside the block: names bound by a
comprehension inside it are not visible to nnsight's re-run.
"""

from __future__ import annotations

from typing import Any

import torch

from bench import _common
from mechscope.models.decoder import HookedDecoder


def wrap(model: HookedDecoder, tokenizer: Any) -> Any:
    """``nnsight.LanguageModel`` around a fresh transformers Llama sharing ``model``'s tensors."""
    import warnings

    from nnsight import LanguageModel

    hf = _common.hf_llama(model, "sdpa")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 0.8 deprecates LanguageModel for TransformersModel(repo_id)
        return LanguageModel(hf, tokenizer=tokenizer)


def forward(lm: Any, x: torch.Tensor) -> torch.Tensor:
    """One traced forward that saves nothing but the logits: the cost of tracing itself."""
    with lm.trace(x, use_cache=False):
        logits = lm.output.logits.save()
    return logits


def actgrad(lm: Any, x: torch.Tensor, target: int, distractor: int) -> torch.Tensor:
    """Activation x gradient per MLP neuron (summed over positions), (n_layers, d_mlp): each
    ``mlp.down_proj`` input is saved in the forward and its ``.grad`` in a backward block
    (gradients arrive from the last layer first, so they are asked for in that order)."""
    layers = lm.model.layers
    n = len(layers)
    saved: list[Any] = []
    grads: dict[int, Any] = {}
    with lm.trace(x, use_cache=False, logits_to_keep=1):
        lm.model.embed_tokens.output.requires_grad_()  # as for transformers: weights need no grad
        acts = []
        for i in range(n):
            a = layers[i].mlp.down_proj.input
            acts.append(a)
            saved.append(a.save())
        logits = lm.output.logits
        value = logits[0, -1, target] - logits[0, -1, distractor]
        with value.backward():
            for i in reversed(range(n)):
                grads[i] = acts[i].grad.save()
    return torch.stack([(saved[i].detach() * grads[i]).sum((0, 1)) for i in range(n)])
