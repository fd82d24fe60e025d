"""The replacement model of an attribution graph, and its frozen linear forward.

With a transcoder spliced at every layer's MLP (with its error term, so the model's outputs are
unchanged), freezing the attention patterns, every norm's scale, the transcoders' activations
and their error terms makes the residual stream a *linear* function of the sources: token
embeddings, active latents (each writing ``a * decoder row``) and error terms. The direct
effect of a source on a target (a latent's pre-activation, a logit) is then one dot product
with the gradient of the target at the source's write point, and one backward pass gives every
source's effect on one target.

:func:`linearize` runs that forward once on ``batch`` copies of the prompt with a zero "probe"
added where each layer's transcoder writes and where the embedding enters; a backward with a
different target injected into each copy reads ``batch`` rows of the adjacency matrix at once
(:meth:`Linearized.rows`). Everything downstream of the probes is the model's own forward
(``HookedDecoder.forward`` with hooks); nothing here re-derives attention or an MLP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from mechscope.engine.objective import detach_hook
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries.coder import SparseCoder
from mechscope.models.dictionaries.points import TRANSCODER_KINDS
from mechscope.models.hooks import HookFn

if TYPE_CHECKING:
    from mechscope.engine.graphs.build import NodeAt


@dataclass(frozen=True)
class Transcoder:
    """The transcoder spliced at one layer's MLP, as the node kind ``name`` of its latents."""

    layer: int
    coder: SparseCoder
    name: str
    site: str  # blocks.L.mlp_out, where it is spliced (writes)

    def point(self, what: str) -> str:
        """One of the coder's hook points: ``acts``, ``recon`` or ``error``."""
        return f"{self.site}.{self.name}.{what}"

    @property
    def input_point(self) -> str:
        """What it reads: ``blocks.L.ln2.out``."""
        return self.coder.cfg.hook

    def encoder_columns(self, idx: torch.Tensor) -> torch.Tensor:
        """(len(idx), d_in): d(pre-activation)/d(input) of latents ``idx``, in the model's space."""
        return (self.coder.W_enc[:, idx].T / self.coder.scale_in).float()


def transcoders(model: HookedDecoder) -> list[Transcoder]:
    """The attached transcoders, one per layer, in layer order; an InputError names the layers
    without one (a replacement model replaces every MLP)."""
    found: dict[int, Transcoder] = {}
    for point, name, module in model.splices():
        if not isinstance(module, SparseCoder) or module.cfg.kind not in TRANSCODER_KINDS:
            continue
        layer = int(point.split(".")[1])
        if point != f"blocks.{layer}.mlp_out":
            raise InputError(f"transcoder {name} writes {point}; a replacement model needs blocks.L.mlp_out")
        if layer in found:
            raise InputError(f"two transcoders at layer {layer} ({found[layer].name}, {name}); attach one")
        found[layer] = Transcoder(layer, module, name, point)
    missing = [layer for layer in range(model.cfg.n_layers) if layer not in found]
    if missing:
        have = f"it has them at layers {sorted(found)}" if found else "it has none"
        raise InputError(
            f"an attribution graph needs a transcoder at every layer's MLP; {have}, missing {_spans(missing)} "
            "(mechscope train-sae --preset transcoders trains a set for SmolLM2)"
        )
    return [found[layer] for layer in range(model.cfg.n_layers)]


def _spans(xs: list[int]) -> str:
    out, start = [], xs[0]
    for a, b in zip(xs, [*xs[1:], None], strict=True):
        if b != a + 1:
            out.append(f"{start}" if start == a else f"{start}-{a}")
            start = b if b is not None else start
    return ", ".join(out)


def node_site(layers: list[Transcoder], node: NodeAt) -> tuple[str, tuple[int, ...]]:
    """Where a source node's value lives in a forward: (hook point, index into one copy's
    tensor): a latent in its transcoder's ``acts``, an error in its ``error``, a token in the
    residual stream entering block 0."""
    if node.type == "latent":
        assert node.layer is not None and node.index is not None
        return layers[node.layer].point("acts"), (node.pos, node.index)
    if node.type == "error":
        assert node.layer is not None
        return layers[node.layer].point("error"), (node.pos,)
    if node.type == "token":
        return "blocks.0.resid_pre", (node.pos,)
    raise InputError(f"node {node.number} is a logit: it is no source")


def frozen_hooks(model: HookedDecoder) -> list[tuple[str, HookFn]]:
    """Hooks that freeze what an attribution graph holds fixed: every norm's scale and attention
    pattern (no gradient through them), and the queries and keys and the MLP's own path, which
    then need no saved tensors (the MLP's output reaches the residual only through the detached
    error term)."""
    names = model.hook_points
    freeze = [n for n in names if n.endswith(".scale")]
    for layer in range(model.cfg.n_layers):
        b = f"blocks.{layer}"
        freeze += [f"{b}.attn.pattern", f"{b}.attn.q", f"{b}.attn.k", f"{b}.mlp.pre"]
        if f"{b}.mlp.linear" in names:
            freeze.append(f"{b}.mlp.linear")
    return [(n, detach_hook) for n in freeze]


@dataclass
class Sources:
    """The graph's source nodes on one prompt: active latents (layer-major, then position, then
    index), error terms (layer x position) and token embeddings (position)."""

    layer: torch.Tensor  # (F,) int64
    pos: torch.Tensor  # (F,)
    index: torch.Tensor  # (F,)
    activation: torch.Tensor  # (F,) fp32
    errors: torch.Tensor  # (n_layers, T, d_model): each layer's error term
    embeddings: torch.Tensor  # (T, d_model): the residual stream entering block 0
    offsets: list[int] = field(default_factory=list)  # first feature of each layer, and the total

    @property
    def n_features(self) -> int:
        return int(self.layer.numel())

    @property
    def n_positions(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def n_errors(self) -> int:
        return int(self.errors.shape[0] * self.errors.shape[1])

    @property
    def n_sources(self) -> int:
        return self.n_features + self.n_errors + self.n_positions


@dataclass
class Linearized:
    """The frozen forward of ``batch`` copies of one prompt, kept for repeated backward passes."""

    model: HookedDecoder
    layers: list[Transcoder]
    tokens: torch.Tensor  # (T,)
    sources: Sources
    logits: torch.Tensor  # (d_vocab,) fp32, at the last position
    batch: int
    _inputs: list[torch.Tensor]  # per layer (batch, T, d_in): each transcoder's input
    _final: torch.Tensor  # (batch, T, d_model): the final norm's output
    _probes: list[torch.Tensor]  # per layer (batch, T, d_model) zeros where the transcoder writes
    _embed_probe: torch.Tensor  # (batch, T, d_model)
    # Per layer, the writes ``a x decoder row`` of its active latents packed by position,
    # (T, slots, d_model) with zero rows for unused slots (at most k latents a token), and where
    # each latent sits in the flattened (T * slots): one batched matmul reads them all.
    _writes: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    check: Callable[[], None] | None = None  # called before each backward pass (a stop flag raises)

    def rows(self, targets: Sequence[Target]) -> torch.Tensor:
        """(len(targets), n_sources): the direct effect of every source on each target, ``batch``
        targets per backward pass (targets of a pass share its depth: sort them by layer)."""
        out = torch.zeros(len(targets), self.sources.n_sources)
        for start in range(0, len(targets), self.batch):
            if self.check is not None:
                self.check()
            chunk = targets[start : start + self.batch]
            out[start : start + len(chunk)] = self._rows(chunk)
        return out

    def _rows(self, chunk: Sequence[Target]) -> torch.Tensor:
        b, t = self.batch, self.sources.n_positions
        d = self._final.shape[-1]
        seeds: dict[int, torch.Tensor] = {}  # layer (n_layers = the logits) -> grad_output
        dtype, device = self._final.dtype, self._final.device
        for j, target in enumerate(chunk):
            key = len(self.layers) if target.layer is None else target.layer
            width = self._inputs[key].shape[-1] if key < len(self.layers) else d
            g = seeds.setdefault(key, torch.zeros(b, t, width, dtype=dtype, device=device))
            g[j, target.pos] = target.vector.to(dtype=dtype, device=device)
        depth = max(seeds)
        outputs = [self._final if key == len(self.layers) else self._inputs[key] for key in seeds]
        probes = [*self._probes[:depth], self._embed_probe]
        grads = torch.autograd.grad(
            outputs, probes, list(seeds.values()), retain_graph=True, allow_unused=True
        )
        src = self.sources
        row = torch.zeros(b, src.n_sources)
        for layer in range(depth):
            g = grads[layer]
            if g is None:
                continue
            g = g.float()
            lo, hi = src.offsets[layer], src.offsets[layer + 1]
            if hi > lo:
                packed, where = self._writes[layer]
                per_pos = torch.bmm(g.transpose(0, 1), packed.transpose(1, 2))  # (T, batch, slots)
                row[:, lo:hi] = per_pos.permute(1, 0, 2).reshape(b, -1)[:, where]
            e0 = src.n_features + layer * t
            row[:, e0 : e0 + t] = (g * src.errors[layer]).sum(-1)
        if grads[-1] is not None:
            row[:, src.n_features + src.n_errors :] = (grads[-1].float() * src.embeddings).sum(-1)
        return row[: len(chunk)]


@dataclass(frozen=True)
class Target:
    """A row of the adjacency matrix: a latent's pre-activation (``layer``, ``pos``, read along
    its encoder column) or a logit (``layer`` None: the last position's final-norm output read
    along the token's unembedding row minus the mean row)."""

    layer: int | None
    pos: int
    vector: torch.Tensor  # (d,)


def linearize(
    model: HookedDecoder, tokens: torch.Tensor, batch: int, extra: Sequence[tuple[str, HookFn]] = ()
) -> Linearized:
    """Run the frozen forward of ``tokens`` (T,) on ``batch`` copies; see the module docstring.
    ``extra`` hooks run after the freezing ones (an explanation of an attention edge scales one
    head's pattern in each copy)."""
    layers = transcoders(model)
    t = int(tokens.numel())
    d = model.cfg.d_model
    dtype, device = model.dtype, model.device
    probes = [torch.zeros(batch, t, d, dtype=dtype, device=device, requires_grad=True) for _ in layers]
    embed_probe = torch.zeros(batch, t, d, dtype=dtype, device=device, requires_grad=True)
    got: dict[str, torch.Tensor] = {}

    def keep(name: str, detach: bool = False) -> HookFn:
        def fn(x: torch.Tensor, _hp: object) -> torch.Tensor:
            got[name] = x.detach() if detach else x
            return got[name]

        return fn

    def add(probe: torch.Tensor, name: str | None = None) -> HookFn:
        def fn(x: torch.Tensor, _hp: object) -> torch.Tensor:
            if name is not None:
                got[name] = x.detach()
            return x.detach() + probe

        return fn

    hooks = frozen_hooks(model) + list(extra)
    hooks.append(("blocks.0.resid_pre", add(embed_probe, "embed")))
    hooks.append(("ln_final.out", keep("final")))
    for tc, probe in zip(layers, probes, strict=True):
        hooks += [
            (tc.input_point, keep(f"in{tc.layer}")),
            (tc.point("acts"), keep(f"acts{tc.layer}", detach=True)),
            (tc.point("error"), keep(f"err{tc.layer}", detach=True)),
            # recon (skip term included) keeps its gradient to the input; the probe's gradient
            # is the residual stream's at this layer's write.
            (tc.point("recon"), _plus(probe)),
        ]
    rows = tokens.to(device).view(1, t).expand(batch, t)
    with torch.enable_grad(), model.hooks(fwd=hooks):
        logits = model(rows, logits_from=-1)
    acts = [got[f"acts{tc.layer}"][0].float() for tc in layers]
    sources = _sources(acts, [got[f"err{tc.layer}"][0].float() for tc in layers], got["embed"][0].float())
    lin = Linearized(
        model, layers, tokens.cpu(), sources, logits[0, -1].detach().float().cpu(), batch,
        [got[f"in{tc.layer}"] for tc in layers], got["final"], probes, embed_probe,
    )  # fmt: skip
    for tc in layers:
        lo, hi = sources.offsets[tc.layer], sources.offsets[tc.layer + 1]
        writes = sources.activation[lo:hi, None] * tc.coder.decoder_rows().float()[sources.index[lo:hi]]
        lin._writes.append(_pack(writes, sources.pos[lo:hi], t))
    return lin


def _pack(writes: torch.Tensor, pos: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``writes`` (F, d) of latents at positions ``pos`` (sorted) -> (T, slots, d) and each
    latent's index in the flattened (T * slots)."""
    counts = torch.bincount(pos, minlength=t)
    slots = max(1, int(counts.max())) if len(pos) else 1
    start = torch.cumsum(counts, 0) - counts  # first latent of each position
    slot = torch.arange(len(pos)) - start[pos]
    where = pos * slots + slot
    packed = torch.zeros(t * slots, writes.shape[1], dtype=writes.dtype)
    packed[where] = writes
    return packed.view(t, slots, -1), where


def _plus(probe: torch.Tensor) -> HookFn:
    def fn(x: torch.Tensor, _hp: object) -> torch.Tensor:
        return x + probe

    return fn


def _sources(acts: list[torch.Tensor], errors: list[torch.Tensor], embeddings: torch.Tensor) -> Sources:
    layer, pos, index, value, offsets = [], [], [], [], [0]
    for i, a in enumerate(acts):
        nz = a.nonzero()  # (F_l, 2): position, index, in that order
        layer.append(torch.full((len(nz),), i, dtype=torch.long))
        pos.append(nz[:, 0])
        index.append(nz[:, 1])
        value.append(a[nz[:, 0], nz[:, 1]])
        offsets.append(offsets[-1] + len(nz))
    return Sources(
        torch.cat(layer), torch.cat(pos), torch.cat(index), torch.cat(value),
        torch.stack(errors), embeddings, offsets,
    )  # fmt: skip
