"""Directions of interest: the scalar whose causes the debugger explains.

A direction is a pydantic spec (what the user asks, JSON-ready); :func:`compile_direction` turns it
into an :class:`Objective` for one prompt: the token rows to run, the hooks that shape the backward
pass, where that pass enters the residual stream, and the function from the forward's output to
the scalar.

Multi-token continuations are teacher-forced: each one gets its own row (prompt + continuation,
right-padded), the rows share the prompt's positions, and a prompt-position node's gradient is the
sum over rows (its activation is the same in every row, attention being causal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from mechscope.engine.nodes import Node
from mechscope.engine.objective import Objective, detach_hook, resolve_position
from mechscope.engine.tracing import node_objective
from mechscope.errors import InputError
from mechscope.models.hooks import HookFn

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

Continuation = str | list[int]
"""Text (tokenised without BOS) or token ids."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogitDiff(_Spec):
    """Mean score of the targets minus mean score of the distractors at ``position``.

    A single-token continuation scores its logit; when any continuation has several tokens, every
    continuation scores the sum of its tokens' log-probabilities (teacher-forced), which for single
    tokens differs from the logit by the normaliser shared by all of them.
    """

    kind: Literal["logit_diff"] = "logit_diff"
    targets: list[Continuation] = Field(min_length=1)
    distractors: list[Continuation] = Field(default_factory=list)
    position: int = Field(default=-1, description="prompt position whose next token is scored; -1 = last")


class LogProb(_Spec):
    """Log-probability of a continuation (summed over its tokens)."""

    kind: Literal["logprob"] = "logprob"
    continuation: Continuation
    position: int = -1


class Prob(_Spec):
    """Probability of a continuation (product over its tokens)."""

    kind: Literal["prob"] = "prob"
    continuation: Continuation
    position: int = -1


class ResidualDirection(_Spec):
    """A user's direction in the residual stream (a probe, a steering vector) read at one point."""

    kind: Literal["residual"] = "residual"
    vector: list[float]
    layer: int = Field(ge=0)
    point: Literal["resid_pre", "resid_mid", "resid_post"] = "resid_post"
    position: int = -1


class NodeDirection(_Spec):
    """A node's own activation: the direction of interest when tracing upstream from it.

    ``through`` picks what is traced: a neuron's ``pre``-activation (default) or ``post``; an attention
    pair's score through its ``query``, ``key`` or both (``query_key``, default); a head's ``value``
    (the only choice for a head summed over keys), projected on ``downstream``'s input direction when
    given (an MLP neuron of a later layer), else on the head's own write direction.
    """

    kind: Literal["node"] = "node"
    node: Node
    through: str | None = Field(
        default=None,
        max_length=32,
        description="one of the node kind's trace choices (GET /api/model); None = its default",
    )
    downstream: Node | None = None


Direction = Annotated[
    LogitDiff | LogProb | Prob | ResidualDirection | NodeDirection, Field(discriminator="kind")
]


def compile_direction(
    model: HookedDecoder, prompt: Sequence[int], direction: Direction, freeze_norm_scale: bool = True
) -> Objective:
    """The :class:`Objective` of ``direction`` on the token ids ``prompt``.

    ``freeze_norm_scale`` (TDB's default) stops the gradient through the final norm's scale so that
    direct effects are linear in the writes; set it False to keep that path in the gradient.
    """
    if isinstance(direction, ResidualDirection):
        return _residual_objective(model, list(prompt), direction)
    if isinstance(direction, NodeDirection):
        d = direction
        return node_objective(model, list(prompt), d.node, d.through, d.downstream, freeze_norm_scale)
    return _logit_objective(model, list(prompt), direction, freeze_norm_scale)


def _token_ids(model: HookedDecoder, c: Continuation, field_name: str) -> list[int]:
    if isinstance(c, str):
        if model.tokenizer is None:
            raise InputError(f"{field_name}: this model has no tokenizer; give token ids")
        ids = model.tokenizer.encode(c, add_bos=False)
    else:
        ids = [int(i) for i in c]
    if not ids:
        raise InputError(f"{field_name}: {c!r} has no tokens")
    bad = [i for i in ids if not 0 <= i < model.cfg.d_vocab]
    if bad:
        raise InputError(f"{field_name}: token ids {bad} out of range 0..{model.cfg.d_vocab - 1}")
    return ids


def _logit_objective(
    model: HookedDecoder, prompt: list[int], d: LogitDiff | LogProb | Prob, freeze: bool
) -> Objective:
    n = len(prompt)
    pos = resolve_position(d.position, n)
    if isinstance(d, LogitDiff):
        groups = [("targets", d.targets, 1.0 / len(d.targets))]
        if d.distractors:
            groups.append(("distractors", d.distractors, -1.0 / len(d.distractors)))
    else:
        groups = [("continuation", [d.continuation], 1.0)]
    conts = [(_token_ids(model, c, f"{name}[{i}]"), w) for name, cs, w in groups for i, c in enumerate(cs)]
    multi = any(len(ids) > 1 for ids, _ in conts)
    if multi and pos != n - 1:
        raise InputError(
            "multi-token continuations are scored after the last prompt token only (position -1)"
        )
    use_logprob = multi or not isinstance(d, LogitDiff)

    rows: list[list[int]] = [prompt]
    entries: list[tuple[int, int, int, float]] = []  # (row, pos, token, weight)
    for ids, w in conts:
        if len(ids) == 1:
            entries.append((0, pos, ids[0], w))
            continue
        rows.append(prompt + ids[:-1])
        entries += [(len(rows) - 1, n - 1 + j, tok, w) for j, tok in enumerate(ids)]
    width = max(len(r) for r in rows)
    pad = model.tokenizer.pad_id if model.tokenizer is not None and model.tokenizer.pad_id is not None else 0
    # Right padding: causal attention keeps it out of every real position.
    tokens = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long, device=model.device)
    t_idx = torch.tensor([e[2] for e in entries], device=model.device)
    weights = torch.tensor([e[3] for e in entries], device=model.device)
    as_prob = isinstance(d, Prob)

    last = f"blocks.{model.cfg.n_layers - 1}.resid_post"

    # Only the scored positions go through the final norm and the unembedding (at 256 tokens the
    # full logits and their backward cost a fifth of the pass), and a logit difference only
    # needs the unembedding rows of its tokens.
    sites = sorted({(e[0], e[1]) for e in entries})
    s_row, s_pos = (torch.tensor([x[i] for x in sites], device=model.device) for i in range(2))
    site_of = torch.tensor([sites.index((e[0], e[1])) for e in entries], device=model.device)
    e_idx = torch.arange(len(entries), device=model.device)

    def value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        x = model.final_norm(acts[last][..., s_row, s_pos, :])  # (..., site, d_model)
        if use_logprob:
            lp = model.unembed(x).float().log_softmax(-1)  # (..., site, d_vocab)
            v = lp[..., site_of, t_idx]
        else:
            v = model.unembed(x, t_idx).float()[..., site_of, e_idx]
        v = (v * weights).sum(-1)
        return v.exp() if as_prob else v

    hooks: list[tuple[str, HookFn]] = [("ln_final.scale", detach_hook)] if freeze else []
    return Objective(
        rows=tokens,
        prompt_len=n,
        position=pos,
        start=last,
        value=value,
        read=(last,),
        stop=last,
        fwd_hooks=hooks,
        pinned=list(dict.fromkeys(ids[0] for ids, _ in conts)),
        linear=freeze and not use_logprob and not model.cfg.final_softcap,
        description=_describe(model, d, conts),
    )


def _describe(
    model: HookedDecoder, d: LogitDiff | LogProb | Prob, conts: list[tuple[list[int], float]]
) -> str:
    def text(ids: list[int]) -> str:
        return repr(model.tokenizer.decode(ids)) if model.tokenizer is not None else str(ids)

    if isinstance(d, LogitDiff):
        pos = [text(ids) for ids, w in conts if w > 0]
        neg = [text(ids) for ids, w in conts if w < 0]
        return f"logit diff: {', '.join(pos)}" + (f" vs {', '.join(neg)}" if neg else "")
    return f"{d.kind} of {text(conts[0][0])}"


def _residual_objective(model: HookedDecoder, prompt: list[int], d: ResidualDirection) -> Objective:
    cfg = model.cfg
    if d.layer >= cfg.n_layers:
        raise InputError(f"layer {d.layer} out of range 0..{cfg.n_layers - 1}")
    if len(d.vector) != cfg.d_model:
        raise InputError(f"vector has {len(d.vector)} entries; expected d_model = {cfg.d_model}")
    if d.point == "resid_mid" and cfg.parallel_residual:
        raise InputError(
            "point 'resid_mid' does not exist with parallel residual; use resid_pre or resid_post"
        )
    pos = resolve_position(d.position, len(prompt))
    vec = torch.tensor(d.vector, dtype=model.dtype, device=model.device)
    name = f"blocks.{d.layer}.{d.point}"

    def value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        return acts[name][..., 0, pos, :] @ vec

    return Objective(
        rows=torch.tensor([prompt], dtype=torch.long, device=model.device),
        prompt_len=len(prompt),
        position=pos,
        start=name,
        value=value,
        read=(name,),
        stop=name,
        description=f"residual direction at {name}, position {pos}",
    )
