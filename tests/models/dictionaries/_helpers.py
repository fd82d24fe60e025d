"""Small random dictionaries for the tiny models of tests/conftest.py."""

from __future__ import annotations

import torch

from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries import DictionaryConfig, SparseCoder, init_random
from mechscope.models.weights import residual_map


def random_coder(
    model: HookedDecoder, hook: str, n: int = 64, activation: str = "topk", k: int = 4, seed: int = 0
) -> SparseCoder:
    """A coder of random weights for ``hook`` (non-zero biases and thresholds, a scale != 1, so
    that every term of the maths is exercised)."""
    d = residual_map(model, hook).width
    coder = init_random(
        SparseCoder(DictionaryConfig(d_in=d, n_latents=n, hook=hook, activation=activation, k=k)), seed
    )
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        coder.b_enc.copy_(torch.randn(n, generator=g) * 0.1)
        coder.b_dec.copy_(torch.randn(d, generator=g) * 0.1)
        coder.threshold.copy_(torch.rand(n, generator=g) * 0.2)
        coder.scale_in.fill_(1.7)
        coder.scale_out.fill_(1.7)
    return coder.eval()
