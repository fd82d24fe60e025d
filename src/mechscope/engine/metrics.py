"""Node metrics from one recording: activation, write magnitude, direct effect, estimated total effect.

Each node kind computes its own (``metrics`` in its file under :mod:`mechscope.engine.kinds`);
this module holds what they share. Definitions (docs/attribution.md):

- *write*: what the node adds to the residual stream. A neuron writes ``a * W_down[:, n]``; an
  attention pair writes ``p[q, k] * W_O,h v[k]`` at q; a head at a query token writes the sum over
  keys. Gemma's post-norms (``ln1_post``/``ln2_post``) enter with their scale frozen at its value.
- *direct effect*: write . g, where g is the gradient at the residual point where the backward
  pass starts (only nodes upstream of that point have one).
- *estimated total effect*: activation x gradient (for a head at a token: the sum over its pairs).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import torch

from mechscope.engine.recorder import Recording

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder


@dataclass
class Metrics:
    """Metrics of every node of one kind, shaped like the kind's ``coords``; ``activation`` is
    None where a kind has none. ``pairs`` holds the (query, key) pair metrics of kinds with pairs."""

    activation: torch.Tensor | None
    write_norm: torch.Tensor
    direct_effect: torch.Tensor
    total_effect: torch.Tensor
    pairs: Metrics | None = None


@dataclass
class Context:
    """What every metric function reads: the model, the recording and the backward's entry point."""

    model: HookedDecoder
    rec: Recording
    start: str
    start_rank: int
    n: int  # prompt positions

    @property
    def g_start(self) -> torch.Tensor:  # (pos, d_model)
        return self.rec.grads[self.start]

    @cached_property
    def reached(self) -> torch.Tensor:
        """Positions whose start gradient is non-zero: the only ones with direct effects.

        A logit objective's gradient enters the residual stream at the scored position alone, so
        direct effects cost one position's worth of products instead of the whole prompt's.
        """
        return (self.g_start != 0).any(-1).nonzero()[:, 0]

    def upstream(self, rank: int) -> bool:
        return rank <= self.start_rank

    def ran(self, name: str) -> bool:
        return name in self.rec.acts

    def post_scale(self, layer: int, which: str) -> torch.Tensor | None:
        """The frozen scale (pos, 1) of a Gemma post-norm (its gain is folded into the weight
        views of :mod:`mechscope.models.weights`), or None without post-norms."""
        if not self.model.cfg.sandwich_norms:
            return None
        return self.rec.acts[f"blocks.{layer}.{which}.scale"].float()


def empty(*shape: int) -> torch.Tensor:
    return torch.empty(shape)
