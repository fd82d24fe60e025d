"""The building blocks of the decoder: norms, rotary embeddings, attention, MLPs.

Every variant is selected by :class:`ModelConfig` fields, never by family name. Shapes use
the vocabulary of docs/glossary.md: batch, pos (query positions), kv_pos (key positions,
past included), head, kv_head, d_head, d_model, d_mlp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

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
            # Fused kernels when nothing watches the scale (same maths, fewer passes).
            xf, d = x.float(), (x.shape[-1],)
            w = self.weight.float() + self.offset if self.offset else self.weight.float()
            if self.center:
                b = self.bias.float() if self.bias is not None else None
                y = F.layer_norm(xf, d, w, b, self.eps)
            else:
                y = F.rms_norm(xf, d, w, self.eps)
                if self.bias is not None:
                    y = y + self.bias.float()
            return self.out(y.to(x.dtype))
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
    """cos and sin for one set of positions, each (batch, pos, 1, rotary_dim)."""

    cos: torch.Tensor
    sin: torch.Tensor

    @classmethod
    def at(cls, positions: torch.Tensor, inv_freq: torch.Tensor, dtype: torch.dtype) -> Rotary:
        freqs = positions[..., None].float() * inv_freq.to(positions.device)  # (batch, pos, rot/2)
        emb = torch.cat((freqs, freqs), dim=-1)[:, :, None, :]  # (batch, pos, 1, rot)
        return cls(emb.cos().to(dtype), emb.sin().to(dtype))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate the first ``rotary_dim`` features of x: (batch, pos, head, d_head)."""
        rot = self.cos.shape[-1]
        xr = x[..., :rot] if rot < x.shape[-1] else x
        half = rot // 2
        rotated = torch.cat((-xr[..., half:], xr[..., :half]), dim=-1)
        out = xr * self.cos + rotated * self.sin
        return torch.cat((out, x[..., rot:]), dim=-1) if rot < x.shape[-1] else out


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
        self.key_valid = torch.ones(batch, 0, dtype=torch.bool, device=device)  # (batch, kv_pos)

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
        cfg = self.cfg
        b, t, _ = x.shape
        q = _linear(self.q_proj, x).view(b, t, cfg.n_heads, cfg.d_head)
        k = _linear(self.k_proj, x).view(b, t, cfg.n_kv_heads, cfg.d_head)
        v = _linear(self.v_proj, x).view(b, t, cfg.n_kv_heads, cfg.d_head)
        return self.attend(q, k, v, ctx)

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
        b, t = q.shape[:2]
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
        return _linear(self.o_proj, z.reshape(b, t, cfg.n_heads * cfg.d_head))

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
        pattern = self.pattern(torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype))
        vg = v.permute(0, 2, 1, 3).reshape(b * kvh, s, dh)
        z = torch.bmm(pattern.reshape(b * kvh, g * t, s), vg)  # (batch * kv_head, group * pos, d_head)
        return z.view(b, kvh, g, t, dh).permute(0, 3, 1, 2, 4).reshape(b, t, h, dh)

    def _scores(self, q: torch.Tensor, k: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        """Scaled, soft-capped and masked scores (batch, head, pos, kv_pos) of rotated queries and
        keys (batch, pos, head | kv_head, d_head)."""
        cfg = self.cfg
        b, t, h, dh = q.shape
        s, kvh = k.shape[1], cfg.n_kv_heads
        g = h // kvh
        qg = q.reshape(b, t, kvh, g, dh).permute(0, 2, 3, 1, 4).reshape(b * kvh, g * t, dh)
        kt = k.permute(0, 2, 3, 1).reshape(b * kvh, dh, s)
        mask = ctx.additive_mask(self.layer_type, t, s, kvh, g, q.dtype, q.device)
        if cfg.attn_softcap:
            # Out of place: tanh's backward needs its output.
            scores = torch.tanh(torch.bmm(qg, kt) * (cfg.scale / cfg.attn_softcap)) * cfg.attn_softcap + mask
        else:
            scores = torch.baddbmm(mask, qg, kt, alpha=cfg.scale)
        return scores.view(b, h, t, s)

    def pattern_of(self, q: torch.Tensor, k: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        """The attention pattern (batch, head, pos, kv_pos) of the queries and keys that the ``q``
        and ``k`` hook points saw, as the explicit path computes it: the engine rebuilds a
        pattern that a fused forward never formed."""
        return torch.softmax(self._scores(q, k, ctx), dim=-1, dtype=torch.float32).to(q.dtype)


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    # Skips nn.Module.__call__'s bookkeeping: ~5 us a call, 7 calls per layer.
    return F.linear(x, layer.weight, layer.bias)


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
