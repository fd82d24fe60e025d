"""Node metrics from one recording: activation, write magnitude, direct effect, estimated total effect.

One function per node kind, listed in :data:`KIND_METRICS`; each returns a :class:`Metrics` whose
tensors are indexed like the nodes (see the shapes there). Definitions (docs/attribution.md):

- *write*: what the node adds to the residual stream. A neuron writes ``a * W_down[:, n]``; an
  attention pair writes ``p[q, k] * W_O,h v[k]`` at q; a head at a query token writes the sum over
  keys. Gemma's post-norms (``ln1_post``/``ln2_post``) enter with their scale frozen at its value.
- *direct effect*: write . g, where g is the gradient at the residual point where the backward
  pass starts (only nodes upstream of that point have one).
- *estimated total effect*: activation x gradient (for a head at a token: the sum over its pairs).

Per-pair write vectors are never materialised: per (key, head) value vectors are projected once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from mechscope.engine.recorder import Recording

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder


@dataclass
class Metrics:
    """Metrics of every node of one kind; ``activation`` is None where a kind has none."""

    activation: torch.Tensor | None
    write_norm: torch.Tensor
    direct_effect: torch.Tensor
    total_effect: torch.Tensor


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

    def upstream(self, rank: int) -> bool:
        return rank <= self.start_rank

    def ran(self, name: str) -> bool:
        return name in self.rec.acts


def _post_norm(ctx: Context, layer: int, which: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gain (d_model,) and frozen scale (pos, 1) of a Gemma post-norm, or (None, None)."""
    if not ctx.model.cfg.sandwich_norms:
        return None, None
    norm = getattr(ctx.model.block(layer), which)
    return norm.gain().float(), ctx.rec.acts[f"blocks.{layer}.{which}.scale"].float()


def required_points(model: HookedDecoder, kinds: set[str]) -> tuple[list[str], list[str]]:
    """Hook points whose activations and gradients the metrics of ``kinds`` read."""
    acts: list[str] = []
    grads: list[str] = []
    post_norms = model.cfg.sandwich_norms
    for i in range(model.cfg.n_layers):
        b = f"blocks.{i}"
        if "mlp_neuron" in kinds:
            acts.append(f"{b}.mlp.post")
            grads.append(f"{b}.mlp.post")
            if post_norms:
                acts.append(f"{b}.ln2_post.scale")
        if "attn_head" in kinds:
            acts += [f"{b}.attn.pattern", f"{b}.attn.v", f"{b}.attn.z"]
            grads.append(f"{b}.attn.pattern")
            if post_norms:
                acts.append(f"{b}.ln1_post.scale")
        for kind in ("attn_out", "mlp_out"):
            if kind in kinds:
                acts.append(f"{b}.{kind}")
                grads.append(f"{b}.{kind}")
    if "embedding" in kinds:
        points = ["embed"] + (["pos_embed"] if model.cfg.positional == "learned" else [])
        acts += points
        grads += points
    return acts, grads


def mlp_neuron(ctx: Context) -> Metrics:
    """Shapes (layer, pos, d_mlp)."""
    cfg, n = ctx.model.cfg, ctx.n
    out = {k: torch.zeros(cfg.n_layers, n, cfg.d_mlp) for k in ("act", "write", "de", "te")}
    for i in range(cfg.n_layers):
        block = ctx.model.block(i)
        name = f"blocks.{i}.mlp.post"
        if not ctx.ran(name) or not ctx.upstream(2 * i + 2):
            continue
        a = ctx.rec.acts[name].float()  # (pos, d_mlp)
        w = block.mlp.down_proj.weight.float()  # (d_model, d_mlp)
        gain, scale = _post_norm(ctx, i, "ln2_post")
        g = ctx.g_start.float()
        if gain is not None and scale is not None:
            g = g * gain / scale
            col = (w * gain[:, None]).norm(dim=0)[None] / scale  # (pos, d_mlp)
        else:
            col = w.norm(dim=0)[None]
        out["act"][i] = a
        out["write"][i] = a.abs() * col
        out["de"][i] = a * (g @ w)
        out["te"][i] = a * ctx.rec.grads[name].float()
    return Metrics(out["act"], out["write"], out["de"], out["te"])


def _head_vectors(
    ctx: Context, i: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Per (key, head) value writes (pos, head, d_model), the output weights, post-norm gain and scale."""
    cfg = ctx.model.cfg
    w_o = ctx.model.block(i).attn.o_proj.weight.float().view(cfg.d_model, cfg.n_heads, cfg.d_head)
    v = ctx.rec.acts[f"blocks.{i}.attn.v"].float()  # (pos, kv_head, d_head)
    v = v.repeat_interleave(cfg.n_heads // cfg.n_kv_heads, dim=1)  # (pos, head, d_head)
    u = torch.einsum("khe,dhe->khd", v, w_o)  # (kv_pos, head, d_model)
    gain, scale = _post_norm(ctx, i, "ln1_post")
    return u, w_o, gain, scale


def attn_pairs_and_heads(ctx: Context) -> tuple[Metrics, Metrics]:
    """Pairs (layer, head, pos, kv_pos) and heads summed over keys (layer, head, pos)."""
    cfg, n = ctx.model.cfg, ctx.n
    shape = (cfg.n_layers, cfg.n_heads, n, n)
    pair = {k: torch.zeros(shape) for k in ("act", "write", "de", "te")}
    head = {k: torch.zeros(shape[:3]) for k in ("act", "write", "de", "te")}
    for i in range(cfg.n_layers):
        name = f"blocks.{i}.attn.pattern"
        if not ctx.ran(name) or not ctx.upstream(2 * i + 1):
            continue
        p = ctx.rec.acts[name].float()  # (head, pos, kv_pos)
        u, w_o, gain, scale = _head_vectors(ctx, i)
        g = ctx.g_start.float()  # (pos, d_model)
        z = ctx.rec.acts[f"blocks.{i}.attn.z"].float()  # (pos, head, d_head)
        w = torch.einsum("qhe,dhe->hqd", z, w_o)  # (head, pos, d_model): each head's write
        if gain is not None and scale is not None:
            g = g * gain / scale
            u_norm = (u * gain).norm(dim=-1).T[:, None, :] / scale[None]  # (head, pos, kv_pos)
            w = w * gain / scale[None]
        else:
            u_norm = u.norm(dim=-1).T[:, None, :]  # (head, 1, kv_pos)
        pair["act"][i] = p
        pair["write"][i] = p * u_norm
        pair["de"][i] = p * torch.einsum("qd,khd->hqk", g, u)
        pair["te"][i] = p * ctx.rec.grads[name].float()
        head["act"][i] = z.norm(dim=-1).T
        head["write"][i] = w.norm(dim=-1)
        head["de"][i] = pair["de"][i].sum(-1)
        head["te"][i] = pair["te"][i].sum(-1)
    return (
        Metrics(pair["act"], pair["write"], pair["de"], pair["te"]),
        Metrics(head["act"], head["write"], head["de"], head["te"]),
    )


def embedding(ctx: Context) -> Metrics:
    """Shapes (pos,): the token embedding plus, for learned positions, the position embedding."""
    names = [p for p in ("embed", "pos_embed") if p in ctx.rec.acts]
    x = sum(ctx.rec.acts[p].float() for p in names)
    assert isinstance(x, torch.Tensor)
    te = sum((ctx.rec.acts[p].float() * ctx.rec.grads[p].float()).sum(-1) for p in names)
    assert isinstance(te, torch.Tensor)
    return Metrics(None, x.norm(dim=-1), (x * ctx.g_start.float()).sum(-1), te)


def _layer_outputs(ctx: Context, kind: str, offset: int) -> Metrics:
    cfg, n = ctx.model.cfg, ctx.n
    out = {k: torch.zeros(cfg.n_layers, n) for k in ("write", "de", "te")}
    for i in range(cfg.n_layers):
        name = f"blocks.{i}.{kind}"
        if not ctx.ran(name) or not ctx.upstream(2 * i + offset):
            continue
        x = ctx.rec.acts[name].float()
        out["write"][i] = x.norm(dim=-1)
        out["de"][i] = (x * ctx.g_start.float()).sum(-1)
        out["te"][i] = (x * ctx.rec.grads[name].float()).sum(-1)
    return Metrics(None, out["write"], out["de"], out["te"])


def attn_out(ctx: Context) -> Metrics:
    """Shapes (layer, pos): a whole attention layer's write, biases included."""
    return _layer_outputs(ctx, "attn_out", 1)


def mlp_out(ctx: Context) -> Metrics:
    """Shapes (layer, pos): a whole MLP layer's write, biases included."""
    return _layer_outputs(ctx, "mlp_out", 2)


KIND_METRICS: dict[str, Callable[[Context], Metrics]] = {
    "mlp_neuron": mlp_neuron,
    "embedding": embedding,
    "attn_out": attn_out,
    "mlp_out": mlp_out,
}
"""Node kind -> metric function. Attention heads (pairs and per-token) come from
:func:`attn_pairs_and_heads` together, since the per-token metrics are sums over pairs."""
