"""Hook points: named places in the forward pass where a tensor or its gradient can be read or replaced.

A :class:`HookPoint` is an identity module; its dotted name is its module path
(``blocks.3.mlp.post``), set once by the decoder. Forward and backward hooks share one
signature, ``fn(tensor, hook) -> tensor | None``: return ``None`` to only read, or a tensor
of the same shape to replace the activation (forward) or the gradient (backward).

``HookPoint.__call__`` is overridden so that a hook point with nothing attached costs one
attribute test, not a trip through ``nn.Module.__call__``: a forward without hooks is as
fast as a model without hook machinery (see ``bench/forward.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import nn

from mechscope.errors import HookError

HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]
"""``fn(tensor, hook) -> tensor | None``: the one signature of forward and backward hooks."""


class HookPoint(nn.Module):
    """An identity on the forward pass that runs the hooks attached to it, then the modules
    spliced in at it (its child modules, see :meth:`HookedDecoder.splice`)."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""
        self.fwd_hooks: list[HookFn] = []
        self.bwd_hooks: list[HookFn] = []
        self.live = False  # any hook attached: the only thing the fast path reads

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.live:
            return x
        x = self._run_forward(x)
        for module in self._modules.values():  # spliced modules (HookedDecoder.splice), in order
            if module is not None:
                x = module(x)
        return x

    def _run_forward(self, x: torch.Tensor) -> torch.Tensor:
        for fn in self.fwd_hooks:
            out = fn(x, self)
            if out is not None:
                if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise HookError(
                        f"forward hook on {self.name!r} returned {got}; expected None or a tensor of shape "
                        f"{tuple(x.shape)}"
                    )
                x = out
        if self.bwd_hooks and x.requires_grad:
            # The hooks attached now belong to this forward's graph: they fire on its backward
            # even when they are detached before it (``run_with_hooks(..., bwd=...)`` detaches
            # them as soon as the forward returns).
            hooks = list(self.bwd_hooks)
            x.register_hook(lambda grad: self._run_backward(grad, hooks))
        return x

    def _run_backward(self, grad: torch.Tensor, hooks: list[HookFn]) -> torch.Tensor:
        for fn in hooks:
            out = fn(grad, self)
            if out is not None:
                if not isinstance(out, torch.Tensor) or out.shape != grad.shape:
                    raise HookError(
                        f"backward hook on {self.name!r} returned a bad value; expected None or a tensor of "
                        f"shape {tuple(grad.shape)}"
                    )
                grad = out
        return grad

    def add(self, fn: HookFn, direction: str = "fwd") -> HookHandle:
        hooks = self._hooks(direction)
        hooks.append(fn)
        self.live = True
        return HookHandle(self, direction, fn)

    def refresh(self) -> None:
        """Recompute ``live`` after hooks or spliced modules change."""
        self.live = bool(self.fwd_hooks or self.bwd_hooks or self._modules)

    def remove(self, direction: str, fn: HookFn) -> None:
        hooks = self._hooks(direction)
        for i, h in enumerate(hooks):
            if h is fn:
                del hooks[i]
                break
        self.refresh()

    def clear(self) -> None:
        self.fwd_hooks.clear()
        self.bwd_hooks.clear()
        self.refresh()

    def _hooks(self, direction: str) -> list[HookFn]:
        if direction == "fwd":
            return self.fwd_hooks
        if direction == "bwd":
            return self.bwd_hooks
        raise HookError(f"hook direction must be 'fwd' or 'bwd', got {direction!r}")

    def extra_repr(self) -> str:
        return f"{self.name!r}, fwd={len(self.fwd_hooks)}, bwd={len(self.bwd_hooks)}"


@dataclass
class HookHandle:
    """Returned by :meth:`HookPoint.add`; ``remove()`` detaches the hook (idempotent)."""

    point: HookPoint
    direction: str
    fn: HookFn

    def remove(self) -> None:
        self.point.remove(self.direction, self.fn)


# TransformerLens names -> mechscope names. Only the suffix after ``blocks.{i}.`` varies.
_TL_BLOCK_ALIASES = {
    "hook_resid_pre": "resid_pre",
    "hook_resid_mid": "resid_mid",
    "hook_resid_post": "resid_post",
    "hook_attn_out": "attn_out",
    "hook_mlp_out": "mlp_out",
    "ln1.hook_scale": "ln1.scale",
    "ln1.hook_normalized": "ln1.normalized",
    "ln2.hook_scale": "ln2.scale",
    "ln2.hook_normalized": "ln2.normalized",
    "hook_attn_in": "attn_in",
    "hook_q_input": "q_input",
    "hook_k_input": "k_input",
    "hook_v_input": "v_input",
    "hook_mlp_in": "mlp_in",
    # TransformerLens' hook_q/hook_k are the projections, before q/k norms and rotary;
    # hook_rot_q/hook_rot_k are after rotary, mechscope's attn.q/attn.k.
    "attn.hook_q": "attn.q_raw",
    "attn.hook_k": "attn.k_raw",
    "attn.hook_rot_q": "attn.q",
    "attn.hook_rot_k": "attn.k",
    "attn.hook_v": "attn.v",
    "attn.hook_attn_scores": "attn.scores",
    "attn.hook_pattern": "attn.pattern",
    "attn.hook_z": "attn.z",
    "attn.hook_result": "attn.result",
    "mlp.hook_pre": "mlp.pre",
    "mlp.hook_pre_linear": "mlp.linear",
    "mlp.hook_post": "mlp.post",
}
_TL_GLOBAL_ALIASES = {
    "hook_embed": "embed",
    "hook_pos_embed": "pos_embed",
    "ln_final.hook_scale": "ln_final.scale",
    "ln_final.hook_normalized": "ln_final.normalized",
    "unembed.hook_in": "ln_final.out",
    "unembed.hook_out": "logits",
    "unembed.hook_logits": "logits",
}
# The layer part may be a glob (``blocks.*.hook_resid_post``): TransformerLens users write that.
_BLOCK_RE = re.compile(r"^blocks\.([^.]+)\.(.+)$")


GRAD_SUFFIX = "_grad"
"""``run_with_cache(..., incl_bwd=True)`` stores the gradient of ``name`` as ``name + GRAD_SUFFIX``."""


def canonical_name(name: str) -> str:
    """Map a TransformerLens-style alias onto the mechscope name; other names pass through.

    A gradient's name maps the same way: ``blocks.3.hook_mlp_out_grad`` -> ``blocks.3.mlp_out_grad``.
    """
    if name.endswith(GRAD_SUFFIX):
        return canonical_name(name.removesuffix(GRAD_SUFFIX)) + GRAD_SUFFIX
    if name in _TL_GLOBAL_ALIASES:
        return _TL_GLOBAL_ALIASES[name]
    m = _BLOCK_RE.match(name)
    if m and m.group(2) in _TL_BLOCK_ALIASES:
        return f"blocks.{m.group(1)}.{_TL_BLOCK_ALIASES[m.group(2)]}"
    return name


def alias_names(name: str) -> list[str]:
    """The TransformerLens aliases of a canonical name (``blocks.3.resid_post`` -> ``blocks.3.hook_resid_post``)."""
    out = [alias for alias, canon in _TL_GLOBAL_ALIASES.items() if canon == name]
    m = _BLOCK_RE.match(name)
    if m:
        out += [f"blocks.{m.group(1)}.{a}" for a, canon in _TL_BLOCK_ALIASES.items() if canon == m.group(2)]
    return out


def tl_aliases() -> dict[str, str]:
    """Alias suffixes (``blocks.{i}.`` omitted for per-block ones) -> mechscope suffixes, for docs."""
    return {
        **_TL_GLOBAL_ALIASES,
        **{f"blocks.{{i}}.{k}": f"blocks.{{i}}.{v}" for k, v in _TL_BLOCK_ALIASES.items()},
    }


NameFilter = str | list[str] | tuple[str, ...] | Callable[[str], bool] | None
"""Which hook points: an exact name or alias, a glob (``blocks.*.attn.pattern``), a list of
either, or a predicate on the canonical name. ``None`` means every default point."""


def compile_filter(names: NameFilter, known: list[str]) -> list[str]:
    """Resolve a filter to the matching canonical names, in model order; unknown names raise."""
    import fnmatch

    if names is None:
        return list(known)
    if callable(names):
        return [n for n in known if names(n)]
    patterns = [names] if isinstance(names, str) else list(names)
    selected: set[str] = set()
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            canon = canonical_name(pattern)
            hits = [
                n
                for n in known
                if fnmatch.fnmatchcase(n, pattern)
                or fnmatch.fnmatchcase(n, canon)
                or any(fnmatch.fnmatchcase(a, pattern) for a in alias_names(n))
            ]
        else:
            canon = canonical_name(pattern)
            hits = [canon] if canon in known else []
        if not hits:
            raise HookError(unknown_hook_message(pattern, known))
        selected.update(hits)
    return [n for n in known if n in selected]


def unknown_hook_message(name: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(canonical_name(name), known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"no hook point named {name!r}{hint} (see docs/hooks.md or model.hook_names())"


# ----- where a forward's tokens sit -------------------------------------------------------------
_POSITIONS: ContextVar[torch.Tensor | None] = ContextVar("mechscope_forward_positions", default=None)


@contextmanager
def forward_positions(positions: torch.Tensor) -> Iterator[None]:
    """Set for the duration of a model forward: the (batch, pos) positions of its tokens."""
    token = _POSITIONS.set(positions)
    try:
        yield
    finally:
        _POSITIONS.reset(token)


def current_positions() -> torch.Tensor | None:
    """The (batch, pos) positions of the tokens in the forward now running (None outside one).
    A spliced module sees only activations; this tells it where they sit, e.g. which row is the
    start token, also when a KV cache feeds it one new token at a time."""
    return _POSITIONS.get()
