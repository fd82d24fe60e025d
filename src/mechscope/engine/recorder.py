"""One forward and one backward pass that keep exactly what the node metrics need.

Activations are kept for row 0 and the prompt's positions; gradients are summed over rows (see
:mod:`mechscope.engine.directions` for why). Forward hooks slice as they record, so nothing larger
than the kept tensors outlives its layer; the gradients come from one ``torch.autograd.grad``
over the tensors the points passed on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from mechscope.engine.objective import Objective
from mechscope.models.hooks import HookFn, HookPoint

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder


class _StopForward(Exception):
    """Raised by a hook once the objective has what it needs; nothing later can change it."""


@dataclass
class Recording:
    acts: dict[str, torch.Tensor] = field(default_factory=dict)  # row 0, prompt positions
    grads: dict[str, torch.Tensor] = field(default_factory=dict)  # summed over rows, prompt positions
    value: float = 0.0
    logits: torch.Tensor | None = None  # (d_vocab,): row 0 at the scored position, when the forward got there


def _prompt_slice(name: str, x: torch.Tensor, n: int, batched: bool = True) -> torch.Tensor:
    """x (batch, pos, ...), or (pos, ...) when not ``batched``, restricted to the first ``n``
    positions; the pattern has two position dims. No op when there is nothing to cut: a hook
    runs it on every recorded point, and each view op costs as much as a small kernel."""
    if name.endswith(("attn.pattern", "attn.scores")):
        return x if x.shape[-1] == n else x[..., :n, :n]
    dim = 1 if batched else 0
    return x if x.shape[dim] == n else x.narrow(dim, 0, n)


def record(
    model: HookedDecoder,
    objective: Objective,
    act_names: Iterable[str],
    grad_names: Iterable[str],
    extra_hooks: Sequence[tuple[str, HookFn]] = (),
) -> Recording:
    """Run ``objective`` forward and backward, keeping ``act_names`` and the gradients of ``grad_names``.

    ``extra_hooks`` (interventions) run before the recording hooks, so what is recorded is what the
    edited model computed.
    """
    rec = Recording()
    n = objective.prompt_len
    read: dict[str, torch.Tensor] = {}
    grad_set = set(grad_names) | {objective.start}
    act_set = set(act_names)
    # The tensors whose gradients are kept, as each point passed them on. One autograd.grad call
    # over all of them replaces a backward hook per point: no Python callback per point and
    # backward (121 at SmolLM2's defaults), the same gradients (a point's backward hook is
    # registered on exactly this tensor, after the forward hooks).
    wrt: list[tuple[str, torch.Tensor]] = []  # in forward order; a point seen twice counts twice

    def keep(x: torch.Tensor, hp: HookPoint) -> None:
        if hp.name in objective.read:
            read[hp.name] = x
        if hp.name in act_set:
            rec.acts[hp.name] = _prompt_slice(hp.name, x.detach()[0], n, batched=False)
        if hp.name in grad_set and x.requires_grad:
            wrt.append((hp.name, x))
        if hp.name == objective.stop:
            raise _StopForward

    def keep_last(x: torch.Tensor, hp: HookPoint) -> None:
        read[hp.name] = x  # the next-token candidates are read from here when the forward gets here

    fwd = [*objective.fwd_hooks, *extra_hooks]
    fwd += [(name, keep) for name in sorted(act_set | grad_set | set(objective.read))]
    last = f"blocks.{model.cfg.n_layers - 1}.resid_post"
    if last not in objective.read and objective.stop is None:
        fwd.append((last, keep_last))
    with torch.enable_grad(), model.hooks(fwd=fwd):
        with contextlib.suppress(_StopForward):
            model(objective.rows, track_grad=True)  # no backward hook asks for gradients
        missing = [name for name in objective.read if name not in read]
        if missing:
            raise RuntimeError(f"the forward never reached {missing}")
        value = objective.value(read)
        grads = torch.autograd.grad(value, [x for _, x in wrt], allow_unused=True) if wrt else ()
        for (name, _), g in zip(wrt, grads, strict=True):
            if g is not None:  # None: the point lies after what the value reads
                g = _prompt_slice(name, g, n)
                g = g[0] if g.shape[0] == 1 else g.sum(0)
                prev = rec.grads.get(name)
                rec.grads[name] = g if prev is None else prev + g
        wrt.clear()
        if last in read:
            with torch.no_grad():
                rec.logits = model.unembed(model.final_norm(read[last][0, objective.position])).float()
    rec.value = float(value.detach())
    return rec


def evaluate(
    model: HookedDecoder,
    objective: Objective,
    variants: int,
    hooks: Sequence[tuple[str, HookFn]] = (),
    resume: tuple[int, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The objective's value on ``variants`` copies of its rows, batched in one forward: (variants,).

    Variant v owns batch rows ``v * R .. v * R + R - 1`` (R = the objective's rows); ``hooks``
    (ablations, patches) edit variants through those rows. ``resume=(layer, resid)`` starts every
    copy at that block from ``resid`` (R, pos, d_model), the rows' own input to it (see
    :func:`resumable_from`: the objective must read nothing before it).
    """
    r = objective.rows.shape[0]
    read: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hp: HookPoint) -> None:
        read[hp.name] = x.view(variants, r, *x.shape[1:])
        if hp.name == objective.stop:
            raise _StopForward

    fwd = [*objective.fwd_hooks, *hooks, *((name, keep) for name in objective.read)]
    with torch.no_grad(), model.hooks(fwd=fwd):
        with contextlib.suppress(_StopForward):
            start = None if resume is None else (resume[0], resume[1].repeat(variants, 1, 1))
            model(objective.rows.repeat(variants, 1), resume=start)
        return objective.value(read).float()


def capture(
    model: HookedDecoder, objective: Objective, points: Sequence[str]
) -> tuple[dict[str, torch.Tensor], float]:
    """One no-grad forward of the objective's rows: the activations at ``points`` (row, pos, ...)
    and the objective's value, stopping as soon as both are known."""
    got: dict[str, torch.Tensor] = {}
    wanted = set(points) | set(objective.read)

    def keep(x: torch.Tensor, hp: HookPoint) -> None:
        got[hp.name] = x.detach()
        if hp.name == objective.stop and wanted <= got.keys():
            raise _StopForward

    with torch.no_grad(), model.hooks(fwd=[*objective.fwd_hooks, *((p, keep) for p in sorted(wanted))]):
        with contextlib.suppress(_StopForward):
            model(objective.rows)
        value = float(objective.value(got))
    return {p: got[p] for p in points}, value


def resumable_from(objective: Objective, layer: int) -> bool:
    """Whether a forward of ``objective`` may start at block ``layer`` (``evaluate(resume=...)``):
    none of its reads, freezes or its stop point lies before that block's input."""
    names = [*objective.read, *(name for name, _ in objective.fwd_hooks)]
    if objective.stop is not None:
        names.append(objective.stop)
    return all(_block_of(name) >= layer for name in names)


def _block_of(point: str) -> float:
    """The block a hook point belongs to (``blocks.3.mlp_out`` -> 3); the embedding comes before
    every block (-1), the final norm and the logits after all of them (inf)."""
    if point.startswith("blocks."):
        return int(point.split(".")[1])
    return -1 if point.startswith(("embed", "pos_embed")) else float("inf")
