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

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import torch

from mechscope.engine.ranking import top_indices
from mechscope.engine.recorder import Recording

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

METRIC_NAMES = ("activation", "write_norm", "direct_effect", "total_effect")
SIGNED = {"direct_effect", "total_effect"}  # whose most negative values mean something too
Values = tuple[float | None, float, float, float]  # one node's metrics, in METRIC_NAMES order


class MetricTable(Protocol):
    """What the node table reads from a kind's metrics: the shape of the (conceptual) metric
    tensors, the flat indices of a metric's extremes, and the four values at given entries.

    :class:`Metrics` holds dense tensors; a kind whose tensors would be too large to keep (the
    (query, key) pairs of heads, which grow with the square of the prompt) answers from factors
    and from candidates it kept while computing them, and builds dense tensors only on demand."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def top(self, metric: str, k: int, largest: bool = True) -> torch.Tensor | None:
        """Flat indices of the ``k`` largest (smallest) entries of ``metric``; None without it."""
        ...

    def values(self, flat: torch.Tensor) -> list[Values]:
        """The four metrics at each flat index."""
        ...


@dataclass
class Metrics:
    """Metrics of every node of one kind, shaped like the kind's ``coords``; ``activation`` is
    None where a kind has none. ``pairs`` holds the (query, key) pair metrics of kinds with pairs."""

    activation: torch.Tensor | None
    write_norm: torch.Tensor
    direct_effect: torch.Tensor
    total_effect: torch.Tensor
    pairs: MetricTable | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.write_norm.shape)

    def top(self, metric: str, k: int, largest: bool = True) -> torch.Tensor | None:
        t = getattr(self, metric)
        return None if t is None else top_indices(t, k, largest)

    def values(self, flat: torch.Tensor) -> list[Values]:
        cols = [
            None if t is None else t.reshape(-1)[flat].tolist()
            for t in (self.activation, self.write_norm, self.direct_effect, self.total_effect)
        ]
        act = cols[0] if cols[0] is not None else [None] * len(flat)
        return list(zip(act, *cols[1:], strict=True))  # type: ignore[arg-type]


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


def stack_layers(ts: list[torch.Tensor]) -> torch.Tensor:
    """Recorded tensors stacked along a new layer dimension, in fp32 (one layer: a view)."""
    return ts[0].float()[None] if len(ts) == 1 else torch.stack(ts).float()


STEP_ENTRIES = 1 << 21  # entries a LayerTable scores per step (8 MB per fp32 tensor): fewer, larger ops
CANDIDATES = 32  # extremes a LayerTable keeps per step and metric; a larger k scores the table again


class LayerTable:
    """Metrics too large to keep (a neuron or a head pair at every layer and position),
    scored a few layers at a time and never stored whole.

    A kind subclasses it with :meth:`score`: the four metric tensors of some layers, rebuilt from
    the recording. :meth:`run` scores every active layer once, in steps of about
    :data:`STEP_ENTRIES` entries, keeping each step's :data:`CANDIDATES` extremes with all four
    of their values and the sums over ``summed`` dimensions; the node table is answered from
    those. Dense tensors (``activation`` ...) are built only when asked for (notebooks, tests).

    Direct effects exist only at the positions the start gradient reaches (usually one), so
    ``score`` returns them compact: ``reached_dim`` (of one layer's block) holds only the
    ``reached`` positions. ``pairs`` is None: a table is a kind's pairs or a kind without pairs.
    """

    pairs = None
    has_activation = True

    def __init__(
        self,
        shape: tuple[int, ...],
        active: list[int],
        summed: tuple[int, ...],
        reached: torch.Tensor,
        reached_dim: int,
    ) -> None:
        self.shape = shape
        self.active = active  # layers that ran and lie upstream of the start; others are zero
        self._summed = summed  # dims of one layer's block (layer excluded) that ``sums`` sum over
        self.reached, self._rdim = reached, reached_dim + 1  # the latter counts the layer dim
        self.sums: dict[str, torch.Tensor] = {}  # metric -> sum over layers and ``summed`` dims
        self._count = CANDIDATES  # extremes kept per step, metric and sign
        self._found: dict[tuple[str, bool], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._known: dict[int, Values] = {}  # flat index -> values, for every kept extreme

    def score(self, layers: list[int]) -> dict[str, torch.Tensor]:
        """The four metrics (``activation`` only when ``has_activation``) of ``layers``, each
        (len(layers), *shape[1:]), the direct effects compact (see the class); other entries
        are the kind's own (for ``run``'s ``on_step``)."""
        raise NotImplementedError

    def run(self, on_step: Callable[[torch.Tensor, dict[str, torch.Tensor]], None] | None = None) -> None:
        """Score every active layer once; ``on_step(rows, tensors)`` sees each step."""
        self.sums, self._found = {}, {}
        step = max(1, STEP_ENTRIES // math.prod(self.shape[1:]))
        for at in range(0, len(self.active), step):
            chunk = self.active[at : at + step]
            rows = torch.tensor(chunk)
            tensors = self.score(chunk)
            if on_step is not None:
                on_step(rows, tensors)
            self._keep(rows, tensors)

    def _keep(self, rows: torch.Tensor, tensors: dict[str, torch.Tensor]) -> None:
        dims = (0, *(d + 1 for d in self._summed))
        for metric in ("direct_effect", "total_effect"):
            part = tensors[metric].sum(dims)
            if metric == "direct_effect" and self._rdim not in dims:  # spread the reached positions
                kept = sum(1 for d in range(1, self._rdim) if d not in dims)
                shape = list(part.shape)
                shape[kept] = self.shape[self._rdim]
                part = torch.zeros(shape).index_copy_(kept, self.reached, part)
            self.sums[metric] = self.sums[metric] + part if metric in self.sums else part
        full = (len(rows), *self.shape[1:])
        picked = []
        for metric in METRIC_NAMES:
            t = tensors.get(metric)
            if t is None:
                continue
            for largest in (True, False) if metric in SIGNED else (True,):
                local = top_indices(t, self._count, largest)
                value = t.reshape(-1)[local]
                if metric == "direct_effect":  # compact -> the full block's positions
                    coords = list(torch.unravel_index(local, t.shape))
                    coords[self._rdim] = self.reached[coords[self._rdim]]
                    local = ravel(coords, full)
                flat = self._global(rows, local)
                self._found.setdefault((metric, largest), []).append((value, flat))
                picked.append((local, flat))
        local = torch.cat([loc for loc, _ in picked])
        flat = torch.cat([f for _, f in picked])
        for f, values in zip(flat.tolist(), self._gather(tensors, local, full), strict=True):
            self._known[f] = values

    def _global(self, rows: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        per_layer = math.prod(self.shape[1:])
        return rows[local // per_layer] * per_layer + local % per_layer

    def _gather(
        self, tensors: dict[str, torch.Tensor], local: torch.Tensor, full: tuple[int, ...]
    ) -> list[Values]:
        """The four values at flat indices ``local`` of a step's full (uncompact) shape ``full``."""
        cols: list[list[float] | list[None]] = []
        for metric in METRIC_NAMES:
            t = tensors.get(metric)
            if t is None:
                cols.append([None] * len(local))
            elif metric != "direct_effect":
                cols.append(t.reshape(-1)[local].tolist())
            else:
                coords = list(torch.unravel_index(local, full))
                q = coords[self._rdim]
                r = torch.searchsorted(self.reached, q.contiguous()).clamp_(max=max(len(self.reached) - 1, 0))
                hit = self.reached[r] == q if len(self.reached) else torch.zeros(len(q), dtype=torch.bool)
                coords[self._rdim] = r
                at = ravel(coords, tuple(t.shape)) if len(self.reached) else torch.zeros_like(q)
                got = t.reshape(-1)[at] if len(self.reached) else torch.zeros(len(q))
                cols.append(torch.where(hit, got, 0.0).tolist())
        return list(zip(*cols, strict=True))

    # ----- MetricTable -------------------------------------------------------------------------
    def top(self, metric: str, k: int, largest: bool = True) -> torch.Tensor | None:
        if metric == "activation" and not self.has_activation:
            return None
        if k > self._count:  # score again, keeping more (never the dense tensors: 1 GB at 512 tokens)
            self._count = k
            self.run()
        found = self._found.get((metric, largest))
        if found is None:
            return None
        values = torch.cat([v for v, _ in found])
        flat = torch.cat([f for _, f in found])
        return flat[values.topk(min(k, len(values)), largest=largest).indices]

    def values(self, flat: torch.Tensor) -> list[Values]:
        todo = [f for f in flat.tolist() if f not in self._known]
        if todo:  # entries that were no step's extremes: rebuild their layers
            per_layer = math.prod(self.shape[1:])
            zero: Values = (0.0 if self.has_activation else None, 0.0, 0.0, 0.0)
            for i in sorted({f // per_layer for f in todo}):
                at = [f % per_layer for f in todo if f // per_layer == i]
                if i in self.active:
                    rows = self._gather(self.score([i]), torch.tensor(at), (1, *self.shape[1:]))
                else:
                    rows = [zero] * len(at)
                for f, v in zip(at, rows, strict=True):
                    self._known[i * per_layer + f] = v
        return [self._known[f] for f in flat.tolist()]

    # ----- dense views, built on demand ----------------------------------------------------------
    @cached_property
    def _dense(self) -> dict[str, torch.Tensor]:
        out = {m: torch.zeros(self.shape) for m in METRIC_NAMES}
        for i in self.active:
            tensors = self.score([i])
            for metric in METRIC_NAMES:
                t = tensors.get(metric)
                if t is not None and metric == "direct_effect":
                    out[metric][i].index_copy_(self._rdim - 1, self.reached, t[0])
                elif t is not None:
                    out[metric][i] = t[0]
        return out

    @property
    def activation(self) -> torch.Tensor | None:
        return self._dense["activation"] if self.has_activation else None

    @property
    def write_norm(self) -> torch.Tensor:
        return self._dense["write_norm"]

    @property
    def direct_effect(self) -> torch.Tensor:
        return self._dense["direct_effect"]

    @property
    def total_effect(self) -> torch.Tensor:
        return self._dense["total_effect"]


def ravel(coords: list[torch.Tensor], shape: tuple[int, ...]) -> torch.Tensor:
    """Flat row-major indices of ``coords`` (one tensor per dimension) in ``shape``."""
    flat = torch.zeros_like(coords[0])
    for c, size in zip(coords, shape, strict=True):
        flat = flat * size + c
    return flat


KindMetrics = Metrics | LayerTable
"""What a kind's ``metrics`` returns: dense tensors, or a table scored layer by layer."""
