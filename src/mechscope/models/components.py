"""The building blocks of the decoder: norms, rotary embeddings, attention, MLPs.

Every variant is selected by :class:`ModelConfig` fields, never by family name. Shapes use
the vocabulary of docs/glossary.md: batch, pos (query positions), kv_pos (key positions,
past included), head, kv_head, d_head, d_model, d_mlp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from mechscope.models import few_rows, quantized
from mechscope.models.buffer_pool import output_buffer
from mechscope.models.config import ModelConfig
from mechscope.models.hooks import HookPoint

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "relu": F.relu,
}


class Norm(nn.Module):
    """LayerNorm or RMSNorm, computed in fp32, with hook points on the scale and the output.

    ``scale`` is the divisor ``sqrt(var + eps)`` of each position (TransformerLens' convention),
    the quantity that attribution freezes to make direct effects linear.
    """

    def __init__(self, d: int, cfg: ModelConfig, bias: bool | None = None) -> None:
        super().__init__()
        self.center = cfg.norm == "layernorm"
        self.eps = cfg.norm_eps
        self.offset = cfg.norm_weight_offset
        self.weight = nn.Parameter(torch.ones(d) if self.offset == 0 else torch.zeros(d))
        use_bias = self.center if bias is None else bias
        self.bias = nn.Parameter(torch.zeros(d)) if use_bias else None
        self.scale = HookPoint()  # (..., 1)
        self.normalized = HookPoint()  # (..., d): before the weight and bias (opt-in)
        self.out = HookPoint()  # (..., d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.scale.live or self.normalized.live):
            return self.out(self.fast(x))
        xf = x.float()
        if self.center:
            xf = xf - xf.mean(-1, keepdim=True)
        scale = self.scale((xf.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        w = self.weight.float()
        if self.offset:
            w = w + self.offset
        y = self.normalized(xf / scale) * w
        if self.bias is not None:
            y = y + self.bias.float()
        return self.out(y.to(x.dtype))

    def fast(self, x: torch.Tensor) -> torch.Tensor:
        """The norm with fused kernels and no hook point: what :meth:`forward` computes when
        nothing watches the scale (same maths, fewer passes); the no-hook forward calls it."""
        same = x.dtype == torch.float32  # skips three no-op casts per call in the common case
        xf, d = (x if same else x.float()), (x.shape[-1],)
        w = self.weight if same and self.weight.dtype == torch.float32 else self.weight.float()
        if self.offset:
            w = w + self.offset
        if self.center:
            b = None if self.bias is None else self.bias.float()
            y = F.layer_norm(xf, d, w, b, self.eps)
        else:
            y = F.rms_norm(xf, d, w, self.eps)
            if self.bias is not None:
                y = y + self.bias.float()
        return y if same else y.to(x.dtype)

    def gain(self) -> torch.Tensor:
        """The effective elementwise weight (offset applied)."""
        return self.weight + self.offset if self.offset else self.weight


def rope_inv_freq(cfg: ModelConfig, theta: float, scaled: bool) -> torch.Tensor:
    """Rotary inverse frequencies, with Hugging Face's ``rope_scaling`` applied when ``scaled``."""
    dim = cfg.rotary_dim
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64, device="cpu") / dim))
    rs = cfg.rope_scaling if scaled else None
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "linear":
            inv = inv / float(rs["factor"])
        elif kind == "llama3":
            # Llama 3.1's frequency-dependent interpolation (Meta's reference implementation).
            factor, lo, hi = float(rs["factor"]), float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
            old_ctx = float(rs["original_max_position_embeddings"])
            wavelen = 2 * math.pi / inv
            smooth = (old_ctx / wavelen - lo) / (hi - lo)
            mid = (1 - smooth) * inv / factor + smooth * inv
            inv = torch.where(
                wavelen > old_ctx / lo, inv / factor, torch.where(wavelen < old_ctx / hi, inv, mid)
            )
        elif kind == "freq_factors":
            # llama.cpp's rope_freqs tensor (Llama 3.1+ GGUF files): one divisor per frequency.
            factors = torch.tensor(rs["factors"], dtype=torch.float64, device="cpu")
            if factors.shape != inv.shape:
                raise ValueError(f"rope freq_factors has {factors.numel()} entries, expected {inv.numel()}")
            inv = inv / factors
        elif kind not in (None, "default"):
            raise ValueError(
                f"unsupported rope_scaling type {kind!r}; supported: linear, llama3, freq_factors"
            )
    return inv.float()


@dataclass
class Rotary:
    """cos and sin for one set of positions, each (batch | 1, pos, 1, rotary_dim).

    ``sin`` is signed for the half-swapped input: ``(-sin, sin)`` over the two halves, so the
    rotation is ``x * cos + swap_halves(x) * sin`` with no negation of ``x`` per call: the
    rotate-half formula bit for bit, as ``(-a) * b == a * (-b)`` exactly.
    """

    cos: torch.Tensor
    sin: torch.Tensor

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate the first ``rotary_dim`` features of x: (batch, pos, head, d_head)."""
        rot = self.cos.shape[-1]
        partial = rot < x.shape[-1]
        xr = x[..., :rot] if partial else x
        # Not addcmul: its fused multiply-add rounds differently (logits 6e-5 off on SmolLM2).
        out = xr * self.cos + xr.roll(rot // 2, -1) * self.sin
        return torch.cat((out, x[..., rot:]), dim=-1) if partial else out


def _cos_sin(freqs: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., rot/2) angles -> cos and signed sin (..., rot) in ``dtype`` (see :class:`Rotary`)."""
    cos, sin = freqs.cos(), freqs.sin()
    return torch.cat((cos, cos), -1).to(dtype), torch.cat((-sin, sin), -1).to(dtype)


class RotaryTable:
    """cos and sin of positions 0, 1, ... for one set of inverse frequencies, computed once per
    device and dtype and grown (doubling) when a longer sequence comes: a forward slices its
    rows instead of recomputing cos and sin for every call, which a decode step would pay per token."""

    def __init__(self, inv_freq: torch.Tensor) -> None:
        self.inv_freq = inv_freq  # (rot/2,) float32
        self._tables: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def rows(self, n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and signed sin of positions 0..n-1 at least, each (rows, rot)."""
        table = self._tables.get((device, dtype))
        if table is None or table[0].shape[0] < n:
            size = max(n, 2 * table[0].shape[0] if table is not None else 256)
            # Normal tensors even when the first forward runs under inference_mode: the table
            # outlives it, and a later forward with gradients (the debugger) must be able to save it.
            with torch.inference_mode(False), torch.no_grad():
                rows = torch.arange(size, device=device, dtype=torch.float32)
                angles = rows[:, None] * self.inv_freq.to(device)  # as Hugging Face: position x frequency
                table = self._tables[(device, dtype)] = _cos_sin(angles, dtype)
        return table

    def at(
        self, positions: torch.Tensor | None, start: int, t: int, device: torch.device, dtype: torch.dtype
    ) -> Rotary:
        """The rotation of positions ``start .. start + t - 1`` (shared by every batch row) when
        ``positions`` is None, else of ``positions`` (batch, pos), all below ``start + t``."""
        cos, sin = self.rows(start + t, device, dtype)
        if positions is None:
            return Rotary(cos[start : start + t, None], sin[start : start + t, None])  # (pos, 1, rot)
        return Rotary(cos[positions][:, :, None], sin[positions][:, :, None])  # (batch, pos, 1, rot)


@dataclass
class AttentionContext:
    """What every layer's attention needs about the current call, computed once per forward."""

    rotary: dict[str, Rotary]  # by layer type ("full" / "sliding"); empty for learned positions
    masks: dict[str, torch.Tensor | None]  # bool (batch, 1, pos, kv_pos), True = may attend; None = causal
    cache: KVCache | None = None
    _additive: dict[tuple[str, int, torch.dtype], torch.Tensor] = field(default_factory=dict)

    def additive_mask(
        self, kind: str, t: int, s: int, kv_heads: int, group: int, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """The mask of layer type ``kind`` as 0 / -inf to add to grouped scores.

        Shape (1 or batch * kv_head, group * pos, kv_pos), the layout of the explicit attention
        path's batched matmul; built once per forward and shared by every layer of that type.
        """
        key = (kind, group, dtype)
        if key not in self._additive:
            mask = self.masks[kind]
            allowed = _causal(t, s, device)[None, None] if mask is None else mask  # (b|1, 1, t, s)
            add = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, float("-inf"))
            b = add.shape[0]
            add = add[:, :, None].expand(b, kv_heads if b > 1 else 1, group, t, s)
            self._additive[key] = add.reshape(-1, group * t, s)
        return self._additive[key]


class KVCache:
    """Keys and values of earlier positions, preallocated for ``capacity`` positions."""

    def __init__(self, cfg: ModelConfig, batch: int, capacity: int, dtype: torch.dtype, device: torch.device):
        shape = (batch, capacity, cfg.n_kv_heads, cfg.d_head)
        self.keys = [torch.empty(shape, dtype=dtype, device=device) for _ in range(cfg.n_layers)]
        self.values = [torch.empty(shape, dtype=dtype, device=device) for _ in range(cfg.n_layers)]
        self.capacity = capacity
        self.length = 0  # positions filled by completed forwards

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this call's k, v (batch, pos, kv_head, d_head); return all keys and values so far."""
        end = self.length + k.shape[1]
        if end > self.capacity:
            raise ValueError(f"KV cache capacity {self.capacity} exceeded ({end} positions)")
        self.keys[layer][:, self.length : end] = k
        self.values[layer][:, self.length : end] = v
        return self.keys[layer][:, :end], self.values[layer][:, :end]


class Attention(nn.Module):
    """Multi-head attention with grouped-query heads, optional q/k norms, rotary and soft-capping."""

    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.cfg, self.layer = cfg, layer
        self.layer_type = cfg.layer_types[layer]
        h, kv, dh, d = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model
        self.q_proj = nn.Linear(d, h * dh, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(d, kv * dh, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(d, kv * dh, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(h * dh, d, bias=cfg.attn_out_bias)
        # Projected, before the q/k norms and rotary (opt-in): (batch, pos, head | kv_head, d_head).
        self.q_raw = HookPoint()
        self.k_raw = HookPoint()
        if cfg.qk_norm:
            self.q_norm = Norm(dh, cfg, bias=False)
            self.k_norm = Norm(dh, cfg, bias=False)
        self.q = HookPoint()  # (batch, pos, head, d_head), after rotary
        self.k = HookPoint()  # (batch, pos, kv_head, d_head), after rotary
        self.v = HookPoint()  # (batch, pos, kv_head, d_head)
        self.scores = HookPoint()  # (batch, head, pos, kv_pos), scaled and masked, pre-softmax
        self.pattern = HookPoint()  # (batch, head, pos, kv_pos)
        self.z = HookPoint()  # (batch, pos, head, d_head): per-head weighted values
        self.result = HookPoint()  # (batch, pos, head, d_model): per-head output (opt-in)

    def w_o_heads(self) -> torch.Tensor:
        """The output projection per head, (d_model, head, d_head): head h writes ``W_O[:, h] @ z_h``."""
        return self.o_proj.weight.view(self.cfg.d_model, self.cfg.n_heads, self.cfg.d_head)

    def kv_head(self, head: int) -> int:
        """The key/value head that query head ``head`` shares (grouped-query attention)."""
        return head // (self.cfg.n_heads // self.cfg.n_kv_heads)

    def per_query_head(self, kv: torch.Tensor, dim: int) -> torch.Tensor:
        """Keys or values (..., kv_head, ...) repeated along ``dim`` to one per query head."""
        return kv.repeat_interleave(self.cfg.n_heads // self.cfg.n_kv_heads, dim=dim)

    def forward(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        """Attention of the normalised residual ``x`` (batch, pos, d_model)."""
        return self.attend(*self.project(x), ctx)

    def fast(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        """:meth:`forward` without its hook points, for a forward in which none of them is live:
        the same steps as :meth:`attend` minus the hook calls and their branches."""
        q, k, v = self.project(x)
        if self.cfg.qk_norm:
            q, k = self.q_norm.fast(q), self.k_norm.fast(k)
        rot = ctx.rotary.get(self.layer_type)
        if rot is not None:
            q, k = rot.apply(q), rot.apply(k)
        if ctx.cache is not None:
            k, v = ctx.cache.append(self.layer, k, v)
        if self.cfg.attn_softcap:
            return self.output(self._explicit(q, k, v, ctx))
        return self.output(self._fused(q, k, v, ctx.masks[self.layer_type]))

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries (batch, pos, head, d_head), keys and values (batch, pos, kv_head, d_head) of ``x``."""
        cfg = self.cfg
        b, t, _ = x.shape
        q = _linear(self.q_proj, x).view(b, t, cfg.n_heads, cfg.d_head)
        k = _linear(self.k_proj, x).view(b, t, cfg.n_kv_heads, cfg.d_head)
        v = _linear(self.v_proj, x).view(b, t, cfg.n_kv_heads, cfg.d_head)
        return q, k, v

    def output(self, z: torch.Tensor) -> torch.Tensor:
        """The output projection of every head's weighted values ``z`` (batch, pos, head, d_head)."""
        b, t = z.shape[:2]
        return _linear(self.o_proj, z.reshape(b, t, self.cfg.n_heads * self.cfg.d_head))

    def forward_per_head(
        self, q_in: torch.Tensor, k_in: torch.Tensor, v_in: torch.Tensor, ctx: AttentionContext
    ) -> torch.Tensor:
        """Attention where every head reads its own normalised input: ``q_in`` (batch, pos, head,
        d_model), ``k_in`` and ``v_in`` (batch, pos, kv_head, d_model). Equal to :meth:`forward`
        when every head's input is the same; used when a per-head input hook point is live."""
        q = _per_head_linear(self.q_proj, q_in)
        k = _per_head_linear(self.k_proj, k_in)
        v = _per_head_linear(self.v_proj, v_in)
        return self.attend(q, k, v, ctx)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttentionContext
    ) -> torch.Tensor:
        """From projected queries, keys and values (batch, pos, head | kv_head, d_head) to the
        attention output (batch, pos, d_model): q/k norms, rotary, scores, pattern, output projection."""
        cfg = self.cfg
        q, k = self.q_raw(q), self.k_raw(k)
        if cfg.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        rot = ctx.rotary.get(self.layer_type)
        if rot is not None:
            q, k = rot.apply(q), rot.apply(k)
        q, k, v = self.q(q), self.k(k), self.v(v)
        if ctx.cache is not None:
            k, v = ctx.cache.append(self.layer, k, v)
        if self.scores.live or self.pattern.live or cfg.attn_softcap:
            z = self._explicit(q, k, v, ctx)
        else:
            z = self._fused(q, k, v, ctx.masks[self.layer_type])
        z = self.z(z)  # (batch, pos, head, d_head)
        if self.result.live:
            result = self.result(
                torch.einsum("bphd,mhd->bphm", z, self.w_o_heads())
            )  # (batch, pos, head, d_model)
            out = result.sum(2)
            return out + self.o_proj.bias if self.o_proj.bias is not None else out
        return self.output(z)

    def _fused(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Scaled-dot-product attention without materialising the pattern (nothing hooks it)."""
        t, s = q.shape[1], k.shape[1]
        causal = mask is None and t > 1
        if mask is None and t > 1 and t != s:
            # Causal with a past: offset diagonal, which is_causal does not express.
            mask = _causal(t, s, q.device)
            causal = False
        z = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            is_causal=causal,
            scale=self.cfg.scale,
            enable_gqa=self.cfg.n_kv_heads != self.cfg.n_heads,
        )  # (batch, head, pos, d_head)
        return z.transpose(1, 2)

    def _explicit(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttentionContext
    ) -> torch.Tensor:
        """Attention with the scores and pattern materialised, for hooks and soft-capping.

        Query heads are grouped under their shared key head ((batch * kv_head, group * pos, ...)
        batched matmuls) instead of copying keys and values; scaling and masking are fused into
        the scores' matmul (baddbmm) so the largest tensors of the layer are written once each.
        """
        b, t, h, dh = q.shape
        s, kvh = k.shape[1], self.cfg.n_kv_heads
        g = h // kvh
        scores = self.scores(self._scores(q, k, ctx))  # (batch, head, pos, kv_pos)
        kept = self.pattern.live and q.dtype == torch.float32  # a cache's pattern: into its pool
        out = output_buffer(tuple(scores.shape), scores) if kept else None
        pattern = self.pattern(torch.softmax(scores, dim=-1, dtype=torch.float32, out=out).to(q.dtype))
        vg = v.permute(0, 2, 1, 3).reshape(b * kvh, s, dh)
        z = torch.bmm(pattern.reshape(b * kvh, g * t, s), vg)  # (batch * kv_head, group * pos, d_head)
        return z.view(b, kvh, g, t, dh).permute(0, 3, 1, 2, 4).reshape(b, t, h, dh)

    def _scores(self, q: torch.Tensor, k: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        """Scaled, soft-capped and masked scores (batch, head, pos, kv_pos) of rotated queries and
        keys (batch, pos, head | kv_head, d_head)."""
        cfg = self.cfg
        b, t, h, _ = q.shape
        s, kvh = k.shape[1], cfg.n_kv_heads
        g = h // kvh
        qg, kt = self.grouped_queries(q), self.grouped_keys(k)
        mask = ctx.additive_mask(self.layer_type, t, s, kvh, g, q.dtype, q.device)
        if cfg.attn_softcap:
            # Out of place: tanh's backward needs its output.
            scores = torch.tanh(torch.bmm(qg, kt) * (cfg.scale / cfg.attn_softcap)) * cfg.attn_softcap + mask
        else:
            # Into a pooled buffer only when a hook may keep the scores (a cache): transient
            # scores would just hold pool memory.
            out = output_buffer((b * kvh, g * t, s), qg, kt, mask) if self.scores.live else None
            scores = torch.baddbmm(mask, qg, kt, alpha=cfg.scale, out=out)
        return scores.view(b, h, t, s)

    def grouped_queries(self, q: torch.Tensor) -> torch.Tensor:
        """Per-query-head vectors (batch, pos, head, d) as the left side of a batched matmul with
        :meth:`grouped_keys`: (batch * kv_head, group * pos, d), query heads grouped under the
        key-value head they share. The product is (batch * kv_head, group * pos, kv_pos), which
        views as (batch, head, pos, kv_pos)."""
        b, t, h, d = q.shape
        kvh = self.cfg.n_kv_heads
        return q.reshape(b, t, kvh, h // kvh, d).permute(0, 2, 3, 1, 4).reshape(b * kvh, h // kvh * t, d)

    def grouped_keys(self, k: torch.Tensor) -> torch.Tensor:
        """Per-key-value-head vectors (batch, kv_pos, kv_head, d) as the right side of that
        matmul: (batch * kv_head, d, kv_pos); no copy of keys that are already stored that way."""
        b, s, kvh, d = k.shape
        return k.permute(0, 2, 3, 1).reshape(b * kvh, d, s)

    def pattern_of(self, q: torch.Tensor, k: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        """The attention pattern (batch, head, pos, kv_pos) of the queries and keys that the ``q``
        and ``k`` hook points saw, as the explicit path computes it: the engine rebuilds a
        pattern that a fused forward never formed."""
        return torch.softmax(self._scores(q, k, ctx), dim=-1, dtype=torch.float32).to(q.dtype)


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    # Skips nn.Module.__call__'s bookkeeping (~5 us a call, 7 calls per layer) and reads the
    # parameters from their dict, not through nn.Module.__getattr__ (two Python calls fewer).
    try:
        weight, bias = cast(torch.Tensor, layer._parameters["weight"]), layer._parameters["bias"]
    except KeyError:  # a parametrized tensor (torch.nn.utils.parametrize) is a property, not in the dict
        weight, bias = layer.weight, layer.bias
    q4 = quantized.active(layer, x)  # opt-in 4-bit weights (generate(weights="q4")), else None
    if q4 is not None:
        return q4(x, bias)
    out = few_rows.linear(layer, weight, bias, x)  # a few rows: split over threads, or MKL's packs
    return F.linear(x, weight, bias) if out is None else out


def _per_head_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """(batch, pos, head, d_in) -> (batch, pos, head, d_head): head h applies its own rows of ``layer``."""
    heads = x.shape[2]
    w = layer.weight.view(heads, -1, x.shape[-1])  # (head, d_head, d_in)
    out = torch.einsum("bphi,hoi->bpho", x, w)
    return out + layer.bias.view(heads, -1) if layer.bias is not None else out


def _causal(t: int, s: int, device: torch.device) -> torch.Tensor:
    """(pos, kv_pos) bool mask for the last ``t`` of ``s`` positions."""
    return torch.ones(t, s, dtype=torch.bool, device=device).tril(s - t)


class MLP(nn.Module):
    """``down(act(gate(x)) * up(x))`` (gated) or ``down(act(up(x)))``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, m = cfg.d_model, cfg.d_mlp
        self.gated = cfg.gated_mlp
        self.act = ACTIVATIONS[cfg.act]
        if self.gated:
            self.gate_proj = nn.Linear(d, m, bias=cfg.mlp_bias)
        self.up_proj = nn.Linear(d, m, bias=cfg.mlp_bias)
        self.down_proj = nn.Linear(m, d, bias=cfg.mlp_bias)
        self.pre = HookPoint()  # (batch, pos, d_mlp): input of the nonlinearity
        if self.gated:
            self.gate = HookPoint()  # (batch, pos, d_mlp): act(pre)
            self.linear = HookPoint()  # (batch, pos, d_mlp): up(x), the linear branch
        self.post = HookPoint()  # (batch, pos, d_mlp): the neuron activations, input of down

    def in_rows(self) -> torch.Tensor:
        """(d_mlp, d_model): row n is the direction neuron n's pre-activation reads from its input
        (the gate branch of a gated MLP, whose nonlinearity it passes through)."""
        return (self.gate_proj if self.gated else self.up_proj).weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            gate = self.gate(self.act(self.pre(_linear(self.gate_proj, x))))
            post = self.post(gate * self.linear(_linear(self.up_proj, x)))
        else:
            post = self.post(self.act(self.pre(_linear(self.up_proj, x))))
        return _linear(self.down_proj, post)

    def fast(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` without its hook points (none of them live)."""
        if self.gated:
            return _linear(self.down_proj, self.act(_linear(self.gate_proj, x)) * _linear(self.up_proj, x))
        return _linear(self.down_proj, self.act(_linear(self.up_proj, x)))
