"""The latents' activation functions: TopK, BatchTopK, JumpReLU and ReLU, each (pre) -> acts.

All keep the pre-activation's shape (..., n_latents) and zero the inactive latents, so one dense
decoder serves them all; TopK also returns the indices it kept for sparse decoding and AuxK.
"""

from __future__ import annotations

import torch


def topk(pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest pre-activations per token, through a ReLU (OpenAI's ``TopK(k, ReLU)``):
    (acts (..., n), indices (..., k))."""
    vals, idx = pre.topk(k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter(-1, idx, vals.relu()), idx


def batch_topk(pre: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k x tokens`` largest positive pre-activations over the whole batch (Bussmann et al.
    2024): tokens share a budget of k latents on average instead of exactly k each."""
    flat = pre.relu().reshape(-1)
    tokens = flat.numel() // pre.shape[-1]
    vals, idx = flat.topk(min(k * tokens, flat.numel()), sorted=False)
    return torch.zeros_like(flat).scatter(0, idx, vals).view_as(pre)


def jumprelu(pre: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """``pre`` where it exceeds the latent's threshold, else 0 (Rajamanoharan et al. 2024)."""
    return pre * (pre > threshold)
