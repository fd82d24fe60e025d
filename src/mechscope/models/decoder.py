"""The one generic decoder-only transformer, with a hook point on every activation.

Sub-steps are public so that attribution code calls the model's own maths instead of
copying it: :meth:`HookedDecoder.embed`, :meth:`Block.attn_part`, :meth:`Block.mlp_part`,
:meth:`HookedDecoder.final_norm` and :meth:`HookedDecoder.unembed`.

A block with nothing attached to any of its hook points runs :meth:`Block.fast`, the same steps
without hook dispatch (docs/models.md, "Speed"); any live hook puts its block back on the hooked path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from mechscope.errors import HookError, InputError
from mechscope.models import few_rows
from mechscope.models.buffer_pool import output_buffer
from mechscope.models.components import (
    MLP,
    Attention,
    AttentionContext,
    KVCache,
    Norm,
    RotaryTable,
    rope_inv_freq,
)
from mechscope.models.config import ModelConfig
from mechscope.models.hooks import (
    HookFn,
    HookHandle,
    HookPoint,
    NameFilter,
    compile_filter,
    forward_positions,
    unknown_hook_message,
)

if TYPE_CHECKING:
    from mechscope.models.activation_cache import ActivationCache
    from mechscope.models.tokenizer import Tokenizer

# Hook points left out of "cache everything": per-head d_model copies and writes cost memory, and
# the others repeat a default point's tensor (TransformerLens names them; mechscope has them for that).
OPT_IN_SUFFIXES = (
    "attn.result",
    "attn_in",
    "q_input",
    "k_input",
    "v_input",
    "mlp_in",
    "attn.q_raw",
    "attn.k_raw",
    ".normalized",
)

ModelInput = str | Sequence[str] | torch.Tensor | Sequence[int] | Sequence[Sequence[int]]
HookSpec = Sequence[tuple[NameFilter, HookFn]]


class Block(nn.Module):
    """One transformer layer: attention then MLP (or both in parallel), each writing to the residual."""

    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.parallel = cfg.parallel_residual
        self.resid_pre = HookPoint()  # (batch, pos, d_model)
        # Per-head copies of the attention input (TransformerLens' use_attn_in / use_split_qkv_input),
        # opt-in: live, they make every head read its own copy, which a hook can patch alone.
        self.attn_in = HookPoint()  # (batch, pos, head, d_model)
        self.q_input = HookPoint()  # (batch, pos, head, d_model)
        self.k_input = HookPoint()  # (batch, pos, kv_head, d_model)
        self.v_input = HookPoint()  # (batch, pos, kv_head, d_model)
        self.n_heads, self.n_kv_heads = cfg.n_heads, cfg.n_kv_heads
        self.ln1 = Norm(cfg.d_model, cfg)
        self.attn = Attention(cfg, layer)
        if cfg.sandwich_norms:
            self.ln1_post = Norm(cfg.d_model, cfg)
        self.attn_out = HookPoint()  # (batch, pos, d_model): attention's write to the residual
        if not self.parallel:
            self.resid_mid = HookPoint()  # (batch, pos, d_model)
        self.mlp_in = HookPoint()  # (batch, pos, d_model): the MLP's own copy of its input (opt-in)
        self.ln2 = Norm(cfg.d_model, cfg)
        self.mlp = MLP(cfg)
        if cfg.sandwich_norms:
            self.ln2_post = Norm(cfg.d_model, cfg)
        self.mlp_out = HookPoint()  # (batch, pos, d_model): the MLP's write to the residual
        self.resid_post = HookPoint()  # (batch, pos, d_model)
        self.sandwich = cfg.sandwich_norms
        self._points: tuple[HookPoint, ...] = ()
        self._parts: tuple[nn.Module, ...] = ()
        self.index_parts()

    def attn_part(self, resid: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        """What attention adds to the residual stream ``resid``."""
        if self.attn_in.live or self.q_input.live or self.k_input.live or self.v_input.live:
            q_in, k_in, v_in = self.per_head_inputs(resid)
            out = self.attn.forward_per_head(self.ln1(q_in), self.ln1(k_in), self.ln1(v_in), ctx)
        else:
            out = self.attn(self.ln1(resid), ctx)
        if self.sandwich:
            out = self.ln1_post(out)
        return self.attn_out(out)

    def per_head_inputs(self, resid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The query, key and value inputs of every head, (batch, pos, head | kv_head, d_model):
        copies of ``resid`` through ``attn_in`` (one per query head), then ``q_input``, ``k_input``
        and ``v_input``. Key/value head j reads the ``attn_in`` copy of its group's first query head."""
        attn_in = self.attn_in(resid[:, :, None].repeat(1, 1, self.n_heads, 1))
        group = self.n_heads // self.n_kv_heads
        kv_in = attn_in[:, :, ::group]
        return self.q_input(attn_in.clone()), self.k_input(kv_in.clone()), self.v_input(kv_in.clone())

    def mlp_part(self, resid: torch.Tensor) -> torch.Tensor:
        """What the MLP adds to the residual stream ``resid``."""
        if self.mlp_in.live:
            resid = self.mlp_in(resid.clone())  # a copy: patching it leaves the residual alone
        out = self.mlp(self.ln2(resid))
        if self.sandwich:
            out = self.ln2_post(out)
        return self.mlp_out(out)

    def forward(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        x = self.resid_pre(x)
        if self.parallel:
            return self.resid_post(x + self.attn_part(x, ctx) + self.mlp_part(x))
        mid = self.resid_mid(x + self.attn_part(x, ctx))
        return self.resid_post(mid + self.mlp_part(mid))

    def fast(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        """:meth:`forward` without hook points, for when :meth:`idle`: the components' own
        hook-free steps (``Norm.fast``, ``Attention.fast``, ``MLP.fast``) in the same order, so
        the result is the same; no nn.Module call and no hook dispatch per component."""
        attn = self.attn.fast(self.ln1.fast(x), ctx)
        if self.sandwich:
            attn = self.ln1_post.fast(attn)
        if self.parallel:
            mlp = self.mlp.fast(self.ln2.fast(x))
            return x + attn + (self.ln2_post.fast(mlp) if self.sandwich else mlp)
        mid = x + attn
        mlp = self.mlp.fast(self.ln2.fast(mid))
        return mid + (self.ln2_post.fast(mlp) if self.sandwich else mlp)

    def index_parts(self) -> None:
        """List the block's hook points and other modules for :meth:`idle`; rerun when a module is
        spliced in or out (the decoder does)."""
        parts = list(self.modules())
        self._points = tuple(m for m in parts if isinstance(m, HookPoint))
        self._parts = tuple(m for m in parts if not isinstance(m, HookPoint))

    def idle(self) -> bool:
        """Whether :meth:`fast` may stand in for :meth:`forward`: no hook point of this block is
        live (an attached hook or a spliced module makes its point live) and torch has no module
        hook (``register_forward_hook`` and kin) on the block or its parts."""
        return not (any(map(_LIVE, self._points)) or any(map(_torch_hooked, self._parts)))


class HookedDecoder(nn.Module):
    """A decoder-only transformer configured by :class:`ModelConfig`.

    Parameter names: ``embed_tokens.weight``, ``embed_positions.weight`` (learned positions),
    ``blocks.{i}.{ln1,ln2,ln1_post,ln2_post}.{weight,bias}``,
    ``blocks.{i}.attn.{q,k,v,o}_proj.{weight,bias}``, ``blocks.{i}.attn.{q,k}_norm.weight``,
    ``blocks.{i}.mlp.{gate,up,down}_proj.{weight,bias}``, ``ln_final.{weight,bias}``,
    ``lm_head.weight`` (absent when embeddings are tied).
    """

    load_seconds: float = 0.0
    """Wall time of :func:`mechscope.load_model` for this model."""

    def __init__(self, cfg: ModelConfig, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.embed_tokens = _embedding(cfg.d_vocab, cfg.d_model)
        self.embed = HookPoint()  # (batch, pos, d_model): token embeddings (scaled)
        if cfg.positional == "learned":
            self.embed_positions = _embedding(cfg.n_ctx, cfg.d_model)
            self.pos_embed = HookPoint()  # (batch, pos, d_model)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.ln_final = Norm(cfg.d_model, cfg)
        if not cfg.tie_embeddings:
            self.lm_head = nn.Linear(cfg.d_model, cfg.d_vocab, bias=False)
        self.logits = HookPoint()  # (batch, pos, d_vocab)
        self.hook_points: dict[str, HookPoint] = {}
        self._index_hook_points()
        self._rotary: dict[str, RotaryTable] = {}
        if cfg.positional == "rotary":
            kinds = set(cfg.layer_types)
            if "full" in kinds:
                self._rotary["full"] = RotaryTable(rope_inv_freq(cfg, cfg.rope_theta, scaled=True))
            if "sliding" in kinds:
                local = cfg.rope_theta_local or cfg.rope_theta
                # Gemma 3's sliding layers use their own base and no scaling.
                self._rotary["sliding"] = RotaryTable(
                    rope_inv_freq(cfg, local, scaled=not cfg.rope_theta_local)
                )

    # ----- model maths, as sub-steps ---------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_tokens.weight.dtype

    def block(self, layer: int) -> Block:
        """Block ``layer``, typed (``self.blocks[i]`` is an ``nn.Module`` to type checkers)."""
        return cast(Block, self.blocks[layer])

    @property
    def W_U(self) -> torch.Tensor:
        """Unembedding matrix (d_vocab, d_model)."""
        return self._unembedding().weight

    def _unembedding(self) -> nn.Embedding | nn.Linear:
        """The module that holds :attr:`W_U`: the tied embedding, or ``lm_head``."""
        return self.embed_tokens if self.cfg.tie_embeddings else self.lm_head

    def embed_step(
        self, tokens: torch.Tensor, positions: torch.Tensor, track_grad: bool = False
    ) -> torch.Tensor:
        """The residual stream before the first block: (batch, pos) -> (batch, pos, d_model).

        ``track_grad`` makes the embeddings require grad: weights are frozen, so without it
        nothing would, and backward hooks downstream would never fire.
        """
        x = self.embed_tokens(tokens)
        if self.cfg.embed_scale != 1.0:
            x = x * torch.tensor(self.cfg.embed_scale, dtype=x.dtype)
        x = self.embed(x.requires_grad_(True) if track_grad and not x.requires_grad else x)
        if self.cfg.positional == "learned":
            p = self.embed_positions(positions)
            x = x + self.pos_embed(p.requires_grad_(True) if track_grad and not p.requires_grad else p)
        return x

    def final_norm(self, resid: torch.Tensor) -> torch.Tensor:
        return self.ln_final(resid)

    def unembed(self, x: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised residual (..., d_model) -> logits (..., d_vocab), soft-capped where the model does.

        With ``ids`` only those vocabulary entries are computed, (..., len(ids)): a logit
        difference needs two rows of the unembedding, not all of them. Partial logits do not pass
        through the ``logits`` hook point.
        """
        w = self.W_U if ids is None else self.W_U[ids]
        out = output_buffer((*x.shape[:-1], w.shape[0]), x, w) if ids is None else None
        if out is not None:
            logits = torch.matmul(x, w.T, out=out)
        else:
            fast = few_rows.linear(self._unembedding(), w, None, x) if ids is None else None
            logits = x @ w.T if fast is None else fast
        if self.cfg.final_softcap:
            logits = torch.tanh(logits / self.cfg.final_softcap) * self.cfg.final_softcap
        return self.logits(logits) if ids is None else logits

    def attention_context(
        self,
        positions: torch.Tensor,
        key_valid: torch.Tensor | None,
        cache: KVCache | None = None,
        first: int | None = None,
        past: int = 0,
    ) -> AttentionContext:
        """Rotary tables and masks shared by every layer for one forward.

        ``positions`` (batch, pos) are the queries' positions; ``key_valid`` (batch, kv_pos) marks
        real (non-padding) keys, past included, or is None when nothing is padded. ``first``:
        every row's positions are ``first, first + 1, ...``, so the rotary rows are a slice of the
        cached table shared by the batch (no gather, no look at ``positions``' values). ``past``:
        keys before the queries when there is no ``cache`` (the engine rebuilding the pattern of
        a window of queries against every earlier key).
        """
        t = positions.shape[1]
        device = positions.device
        if self._rotary:
            if first is None:
                first, n, rows = 0, int(positions.max()) + 1 if positions.numel() else 0, positions
            else:
                n, rows = t, None
            rotary = {k: table.at(rows, first, n, device, self.dtype) for k, table in self._rotary.items()}
        else:
            rotary = {}
        s = t + (cache.length if cache is not None else past)
        masks: dict[str, torch.Tensor | None] = {}
        for kind in set(self.cfg.layer_types):
            window = self.cfg.sliding_window if kind == "sliding" else 0
            masks[kind] = _attention_mask(t, s, key_valid, window, device)
        return AttentionContext(rotary=rotary, masks=masks, cache=cache)

    def forward(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        logits_from: int | None = None,
        resume: tuple[int, torch.Tensor] | None = None,
        track_grad: bool = False,
    ) -> torch.Tensor:
        """Logits (batch, pos, d_vocab) for token ids (batch, pos).

        ``attention_mask`` (batch, kv_pos) is 1 for real tokens, 0 for (left) padding, and covers
        the cached past too when ``cache`` is given. Positions count real tokens only.
        ``logits_from``: only the logits of positions ``logits_from:`` (an index into this call's
        positions, negative from the end: -1 is what a sampler reads); the unembedding, d_vocab x
        d_model per position, is skipped before it unless a hook on ``logits`` needs every position.
        ``resume=(layer, resid)``: start at block ``layer`` from its input ``resid`` (batch, pos,
        d_model), as recorded on the same tokens, skipping the embedding and the blocks before it
        (no hook before ``blocks.{layer}.resid_pre`` fires); a patching sweep at layer L needs no more.
        ``track_grad``: the embeddings require grad (with grad enabled), so that activations can be
        differentiated without a backward hook (which asks for it itself): the weights are frozen.
        """
        if resume is not None and cache is not None:
            raise InputError("resume starts a forward mid-model; it cannot extend a KV cache")
        past = cache.length if cache is not None else 0
        b, t = tokens.shape
        key_valid = None
        if attention_mask is not None:
            attention_mask = attention_mask.to(device=tokens.device, dtype=torch.bool)
            if attention_mask.shape != (b, past + t):
                raise InputError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}; expected {(b, past + t)}"
                )
            if not bool(attention_mask.all()):
                key_valid = attention_mask
        if key_valid is None:  # every row counts past, past + 1, ...: rotary rows are one slice
            positions, first_position = torch.arange(past, past + t, device=tokens.device).expand(b, t), past
        else:
            positions, first_position = (key_valid.long().cumsum(-1) - 1).clamp(min=0)[:, past:], None
        if self.cfg.positional == "learned":
            last = past + t - 1 if key_valid is None else int(positions.max())
            if last >= self.cfg.n_ctx:
                raise InputError(f"sequence of {last + 1} positions exceeds n_ctx={self.cfg.n_ctx}")
        ctx = self.attention_context(positions, key_valid, cache, first=first_position)
        track = torch.is_grad_enabled() and (track_grad or self._has_backward_hooks())
        if resume is None:
            x, first = self.embed_step(tokens, positions, track_grad=track), 0
        else:
            first, x = resume
            if not 0 <= first < self.cfg.n_layers or x.shape != (b, t, self.cfg.d_model):
                raise InputError(
                    f"resume needs a layer in 0..{self.cfg.n_layers - 1} and a residual of shape "
                    f"{(b, t, self.cfg.d_model)}; got layer {first} and {tuple(x.shape)}"
                )
        blocks = cast(list[Block], list(self.blocks))[first:]
        # Torch's global module hooks see every module call: keep them all (rare; debugging tools).
        hooked_globally = _torch_hooked_globally()
        with forward_positions(positions):  # for spliced modules (a dictionary skips the start token)
            for block in blocks:
                x = block(x, ctx) if hooked_globally or not block.idle() else block.fast(x, ctx)
        x = self.final_norm(x)
        if logits_from is not None and not self.logits.live:
            x = x[:, logits_from:]
        logits = self.unembed(x)
        if cache is not None:
            cache.length += t
        return logits[:, logits_from:] if logits_from is not None and self.logits.live else logits

    # ----- hooks ---------------------------------------------------------------------------
    def _index_hook_points(self) -> None:
        """Name every hook point by its module path (spliced modules' points included), and give
        each block the lists that :meth:`Block.idle` reads."""
        self.hook_points = {}
        for name, mod in self.named_modules():
            if isinstance(mod, HookPoint):
                mod.name = name
                self.hook_points[name] = mod
        for block in self.blocks:
            cast(Block, block).index_parts()
        # Read on every engine call (the kinds of a model include its spliced dictionaries).
        self._splices = [
            (p, n, m) for p, hp in self.hook_points.items() for n, m in hp._modules.items() if m is not None
        ]

    def splice(self, point: str, module: nn.Module, name: str) -> None:
        """Run ``module`` on the activation at hook point ``point`` (after that point's hooks)
        and pass its output on instead: a dictionary spliced into the residual stream, say.

        The module becomes a child of the hook point, so its own hook points are named by their
        module path, ``{point}.{name}.{...}`` (e.g. ``blocks.6.resid_post.sae.acts``), and it
        moves with the model. The module must return a tensor of its input's shape.
        """
        hp = self.hook_point(point)
        if not name.isidentifier():
            raise HookError(f"splice name {name!r} must be a Python identifier (letters, digits, _)")
        if name in hp._modules:
            raise HookError(f"{hp.name!r} already has a module spliced in as {name!r}; unsplice it first")
        hp.add_module(name, module)
        hp.refresh()
        self._index_hook_points()

    def unsplice(self, point: str, name: str) -> nn.Module:
        """Remove the module spliced in at ``point`` as ``name`` and return it."""
        hp = self.hook_point(point)
        module = hp._modules.pop(name, None)
        if module is None:
            raise HookError(f"nothing is spliced in at {hp.name!r} as {name!r}; spliced: {list(hp._modules)}")
        hp.refresh()
        self._index_hook_points()
        return module

    @contextmanager
    def spliced(self, point: str, module: nn.Module, name: str) -> Iterator[HookedDecoder]:
        """:meth:`splice` for the duration of a ``with`` block; removed even on error."""
        self.splice(point, module, name)
        try:
            yield self
        finally:
            self.unsplice(point, name)

    def splices(self) -> list[tuple[str, str, nn.Module]]:
        """``(point, name, module)`` of every spliced module, in forward order."""
        return list(self._splices)

    def _has_backward_hooks(self) -> bool:
        return any(hp.bwd_hooks for hp in self.hook_points.values())

    def hook_names(self, include_opt_in: bool = True) -> list[str]:
        """Every hook point's name, in forward order of definition."""
        names = list(self.hook_points)
        return names if include_opt_in else [n for n in names if not n.endswith(OPT_IN_SUFFIXES)]

    def hook_point(self, name: str) -> HookPoint:
        from mechscope.models.hooks import canonical_name

        hp = self.hook_points.get(canonical_name(name))
        if hp is None:
            raise HookError(unknown_hook_message(name, list(self.hook_points)))
        return hp

    def add_hook(self, name: NameFilter, fn: HookFn, direction: str = "fwd") -> list[HookHandle]:
        """Attach ``fn`` to every point that ``name`` selects; keep the handles to remove it."""
        if isinstance(name, str) and name in self.hook_points:
            # Exact names are the common case (the engine attaches hundreds per request): skip
            # resolving a filter against every point's name.
            return [self.hook_points[name].add(fn, direction)]
        return [self.hook_points[n].add(fn, direction) for n in compile_filter(name, self.hook_names())]

    def reset_hooks(self) -> None:
        for hp in self.hook_points.values():
            hp.clear()

    @contextmanager
    def hooks(self, fwd: HookSpec = (), bwd: HookSpec = ()) -> Iterator[HookedDecoder]:
        """Attach hooks for the duration of a ``with`` block; they are removed even on error."""
        handles: list[HookHandle] = []
        try:
            for name, fn in fwd:
                handles += self.add_hook(name, fn, "fwd")
            for name, fn in bwd:
                handles += self.add_hook(name, fn, "bwd")
            yield self
        finally:
            for h in handles:
                h.remove()

    # ----- running -------------------------------------------------------------------------
    def to_tokens(
        self, inputs: ModelInput, add_bos: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token ids (batch, pos) and, when sequences differ in length, a left-padding mask."""
        from mechscope.models.running import to_tokens

        return to_tokens(self, inputs, add_bos)

    def run(self, inputs: ModelInput, add_bos: bool | None = None) -> torch.Tensor:
        """Logits for text, a list of texts (left-padded) or token ids."""
        tokens, mask = self.to_tokens(inputs, add_bos)
        return self(tokens, attention_mask=mask)

    def run_with_hooks(
        self,
        inputs: ModelInput,
        fwd: HookSpec = (),
        bwd: HookSpec = (),
        add_bos: bool | None = None,
        *,
        fwd_hooks: HookSpec = (),
        bwd_hooks: HookSpec = (),
    ) -> torch.Tensor:
        """Logits of one forward with temporary hooks; backward hooks fire when you call backward
        on them. ``fwd_hooks``/``bwd_hooks`` are TransformerLens' spellings of ``fwd``/``bwd``."""
        fwd, bwd = _one_of("fwd", fwd, fwd_hooks), _one_of("bwd", bwd, bwd_hooks)
        with self.hooks(fwd, bwd):
            return self.run(inputs, add_bos)

    def run_with_cache(
        self,
        inputs: ModelInput,
        names: NameFilter = None,
        detach: bool = True,
        add_bos: bool | None = None,
        *,
        names_filter: NameFilter = None,
        incl_bwd: bool = False,
        metric: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, ActivationCache]:
        """Logits and the activations of the selected hook points (all default points when None).

        ``names_filter`` is TransformerLens' spelling of ``names``. With ``incl_bwd`` the gradient
        of ``metric(logits)`` (a scalar; default: the mean next-token cross-entropy of the input)
        at each selected point is cached too, as ``{name}_grad``.
        """
        from mechscope.models.running import run_with_cache

        if names is not None and names_filter is not None:
            raise HookError("pass names= or its TransformerLens spelling names_filter=, not both")
        return run_with_cache(
            self, inputs, names if names is not None else names_filter, detach, add_bos, incl_bwd, metric
        )

    def generate(self, prompt: ModelInput, **kwargs: Any) -> Any:
        """KV-cached sampling; see :func:`mechscope.models.generation.generate` for the options."""
        from mechscope.models.generation import generate

        return generate(self, prompt, **kwargs)


_LIVE = attrgetter("live")


def _torch_hooked(module: nn.Module) -> bool:
    """Whether torch itself would run a hook around a call of ``module``."""
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
    )


def _torch_hooked_globally() -> bool:
    """Whether torch has a hook registered for every module (``register_module_forward_hook`` and kin)."""
    return bool(
        torch_module._global_forward_hooks
        or torch_module._global_forward_pre_hooks
        or torch_module._global_backward_hooks
        or torch_module._global_backward_pre_hooks
    )


def _one_of(name: str, ours: HookSpec, tl: HookSpec) -> HookSpec:
    if ours and tl:
        raise HookError(f"pass {name}= or its TransformerLens spelling {name}_hooks=, not both")
    return ours or tl


def _embedding(n: int, d: int) -> nn.Embedding:
    """An embedding table, randomly initialised unless built on the meta device for loading.

    Passing ``_weight`` skips nn.Embedding's own init, which on the meta device imports
    torch._dynamo and costs ~2 s of every model load.
    """
    weight = torch.empty(n, d)
    if not weight.is_meta:
        nn.init.normal_(weight)
    return nn.Embedding(n, d, _weight=weight)


def _attention_mask(
    t: int, s: int, key_valid: torch.Tensor | None, window: int, device: torch.device
) -> torch.Tensor | None:
    """Bool (batch, 1, pos, kv_pos) mask for the last ``t`` of ``s`` positions; None when plain causal.

    A padding query attends to itself only, so no softmax row is empty (no NaN in its gradient).
    """
    if key_valid is None and (window <= 0 or s <= window):
        return None
    q_idx = torch.arange(s - t, s, device=device)[:, None]
    k_idx = torch.arange(s, device=device)[None, :]
    allowed = k_idx <= q_idx  # (pos, kv_pos)
    if window > 0:
        allowed = allowed & (q_idx - k_idx < window)
    if key_valid is None:
        return allowed[None, None]
    allowed = allowed[None] & key_valid[:, None, :]  # (batch, pos, kv_pos)
    allowed = allowed | (k_idx == q_idx)[None]
    return allowed[:, None]
