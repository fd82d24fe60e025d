"""Node metrics from one recording: activation, write magnitude, direct effect, estimated total effect.

One function per node kind, listed in :data:`KIND_METRICS`; each returns a :class:`Metrics` whose
tensors are indexed like the nodes (see the shapes there). Definitions (docs/attribution.md):

- *write*: what the node adds to the residual stream. A neuron writes ``a * W_down[:, n]``; an
  attention pair writes ``p[q, k] * W_O,h v[k]`` at q; a head at a query token writes the sum over
  keys. Gemma's post-norms (``ln1_post``/``ln2_post``) enter with their scale frozen at its value.
- *direct effect*: write . g, where g is the gradient at the residual point where the backward
  pass starts (only nodes upstream of that point have one).
- *estimated total effect*: activation x gradient (for a head at a token: the sum over its pairs).

Per-pair write vectors are never materialised (see :func:`attn_pairs_and_heads`), and direct
effects are only computed at the positions the gradient reaches (:attr:`Context.reached`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
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


@dataclass
class LayerWeights:
    """Weight-only quantities of one layer, with a Gemma post-norm's gain folded in."""

    down: torch.Tensor  # (d_model, d_mlp)
    down_norm: torch.Tensor  # (d_mlp,): norm of each neuron's write per unit of activation
    w_o: torch.Tensor  # (d_model, head, d_head)
    gram: torch.Tensor  # (head, d_head, d_head): W_O,h^T W_O,h, so |W_O,h x| = sqrt(x^T G_h x)

    def write_norm(self, x: torch.Tensor) -> torch.Tensor:
        """``|W_O,h x_h|`` for per-head vectors ``x`` (..., head, d_head), shape (..., head): the
        norm of what each head writes to the residual stream for ``x``, without a d_model product."""
        return torch.einsum("...he,hef,...hf->...h", x, self.gram, x).clamp_(min=0).sqrt_()


_WEIGHTS: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple[int, ...], list[LayerWeights]]] = (
    weakref.WeakKeyDictionary()
)


def layer_weights(model: HookedDecoder) -> list[LayerWeights]:
    """Per-layer weight statistics, cached per model until a weight is replaced or edited in place.

    Column norms of a (d_model, d_mlp) matrix are a strided reduction that costs more than the
    metrics of a short prompt; they only change when the weights do.
    """
    cfg = model.cfg
    params: list[torch.Tensor] = []
    for i in range(cfg.n_layers):
        b = model.block(i)
        params += [b.mlp.down_proj.weight, b.attn.o_proj.weight]
        if cfg.sandwich_norms:
            params += [b.ln1_post.weight, b.ln2_post.weight]
    key = tuple(v for p in params for v in (p.data_ptr(), p._version))
    hit = _WEIGHTS.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    out = []
    with torch.no_grad():
        for i in range(cfg.n_layers):
            b = model.block(i)
            down = b.mlp.down_proj.weight.float()
            w_o = b.attn.o_proj.weight.float().view(cfg.d_model, cfg.n_heads, cfg.d_head)
            if cfg.sandwich_norms:
                down = down * b.ln2_post.gain().float()[:, None]
                w_o = w_o * b.ln1_post.gain().float()[:, None, None]
            gram = torch.einsum("dhe,dhf->hef", w_o, w_o)
            out.append(LayerWeights(down, down.norm(dim=0), w_o, gram))
    _WEIGHTS[model] = (key, out)
    return out


def _post_scale(ctx: Context, layer: int, which: str) -> torch.Tensor | None:
    """The frozen scale (pos, 1) of a Gemma post-norm (its gain is folded into the weights), or None."""
    if not ctx.model.cfg.sandwich_norms:
        return None
    return ctx.rec.acts[f"blocks.{layer}.{which}.scale"].float()


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


def _empty(*shape: int) -> torch.Tensor:
    return torch.empty(shape)


def mlp_neuron(ctx: Context) -> Metrics:
    """Shapes (layer, pos, d_mlp)."""
    cfg, n, reached = ctx.model.cfg, ctx.n, ctx.reached
    act, write, te = (_empty(cfg.n_layers, n, cfg.d_mlp) for _ in range(3))
    de = torch.zeros(cfg.n_layers, n, cfg.d_mlp)
    weights = layer_weights(ctx.model)
    g = ctx.g_start.float()[reached]
    for i in range(cfg.n_layers):
        name = f"blocks.{i}.mlp.post"
        if not ctx.ran(name) or not ctx.upstream(2 * i + 2):
            for t in (act, write, te):
                t[i] = 0
            continue
        lw = weights[i]
        a = ctx.rec.acts[name].float()  # (pos, d_mlp)
        scale = _post_scale(ctx, i, "ln2_post")
        act[i] = a
        torch.mul(a.abs(), lw.down_norm, out=write[i])
        de[i, reached] = a[reached] * (g @ lw.down)
        if scale is not None:
            write[i] /= scale
            de[i, reached] /= scale[reached]
        torch.mul(a, ctx.rec.grads[name].float(), out=te[i])
    return Metrics(act, write, de, te)


def attn_pairs_and_heads(ctx: Context) -> tuple[Metrics, Metrics]:
    """Pairs (layer, head, pos, kv_pos) and heads summed over keys (layer, head, pos).

    Per-pair writes ``p[q, k] * W_O,h v[k]`` are never formed: their norms come from each
    head's Gram matrix and their direct effects from the gradient projected into head space.
    """
    cfg, n, reached = ctx.model.cfg, ctx.n, ctx.reached
    layers, heads, group = cfg.n_layers, cfg.n_heads, cfg.n_heads // cfg.n_kv_heads
    p_act, p_write, p_te = (_empty(layers, heads, n, n) for _ in range(3))
    p_de = torch.zeros(layers, heads, n, n)
    h_act, h_write, h_te = (_empty(layers, heads, n) for _ in range(3))
    h_de = torch.zeros(layers, heads, n)
    weights = layer_weights(ctx.model)
    g = ctx.g_start.float()[reached]
    for i in range(layers):
        name = f"blocks.{i}.attn.pattern"
        if not ctx.ran(name) or not ctx.upstream(2 * i + 1):
            for t in (p_act, p_write, p_te, h_act, h_write, h_te):
                t[i] = 0
            continue
        lw = weights[i]
        p = ctx.rec.acts[name].float()  # (head, pos, kv_pos)
        v = (
            ctx.rec.acts[f"blocks.{i}.attn.v"].float().repeat_interleave(group, dim=1)
        )  # (kv_pos, head, d_head)
        z = ctx.rec.acts[f"blocks.{i}.attn.z"].float()  # (pos, head, d_head)
        scale = _post_scale(ctx, i, "ln1_post")
        v_norm = lw.write_norm(v).T  # (head, kv_pos)
        z_norm = lw.write_norm(z).T  # (head, pos)
        g_head = torch.einsum("qd,dhe->qhe", g, lw.w_o)  # (reached, head, d_head)
        de_reached = p[:, reached] * torch.einsum("qhe,khe->hqk", g_head, v)  # (head, reached, kv_pos)
        if scale is not None:
            de_reached /= scale[reached][None]
            z_norm /= scale[:, 0][None]
        p_act[i] = p
        torch.mul(p, v_norm[:, None, :], out=p_write[i])
        if scale is not None:
            p_write[i] /= scale[None]
        p_de[i][:, reached] = de_reached
        torch.mul(p, ctx.rec.grads[name].float(), out=p_te[i])
        h_act[i] = z.norm(dim=-1).T
        h_write[i] = z_norm
        h_de[i][:, reached] = de_reached.sum(-1)
        torch.sum(p_te[i], -1, out=h_te[i])
    return Metrics(p_act, p_write, p_de, p_te), Metrics(h_act, h_write, h_de, h_te)


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
