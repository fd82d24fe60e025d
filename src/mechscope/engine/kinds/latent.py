"""A spliced dictionary's latents as a node kind of the engine's registry.

The kind has no layer (the layer is in its name, e.g. ``sae_l6_resid_post``), one node per
latent and token (``sae_l6_resid_post.17@5``), and the four metrics of docs/attribution.md:

- activation: the latent's value ``a`` at ``{point}.{name}.acts``;
- write norm: ``|a|`` times the norm of its decoder row mapped into the residual stream
  (:func:`mechscope.models.weights.residual_map`: the identity for residual points and layer
  writes (so for a transcoder, which writes ``mlp_out``), the down projection for ``mlp.post``,
  W_O for ``attn.z``);
- driving tokens (node pages): for a dictionary reading a norm's output (a transcoder reads
  ``ln2.out``), the encoder column through that norm, as for a neuron.
- direct effect: ``a`` times (mapped decoder row . g) at the backward's entry point, for a
  dictionary upstream of it;
- estimated total effect: ``a`` times the gradient at ``acts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mechscope.engine.kinds.base import Collation, Kind, Site, TokenRow, Trace, kinds_of
from mechscope.engine.metrics import Context, KindMetrics, Metrics
from mechscope.engine.objective import Objective, detach_hook, mlp_input_point
from mechscope.errors import InputError
from mechscope.models.dictionaries.coder import SparseCoder
from mechscope.models.dictionaries.points import input_norm, norm_of
from mechscope.models.dictionaries.splicing import splice_coder, unsplice_coder
from mechscope.models.weights import Reader, residual_map, write_rank

if TYPE_CHECKING:
    from mechscope.engine.nodes import Node
    from mechscope.models.decoder import HookedDecoder
    from mechscope.models.hooks import HookFn

_RESIDUAL = ("resid_pre", "resid_mid", "resid_post")


def read_point(model: HookedDecoder, hook: str) -> tuple[str, str | None] | None:
    """Where a dictionary reading ``hook`` reads the residual stream, and the norm (``blocks.L.ln1``
    or ``ln2``) in between, if any: the residual point itself, the attention's input for its
    sub-steps, the MLP's for its own (and a transcoder's ``ln2.out``). None outside the blocks."""
    parts = hook.split(".")
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
        return None
    layer, site = int(parts[1]), parts[2]
    if site in _RESIDUAL:
        return hook, None
    if site in ("ln1", "attn", "attn_out"):
        return f"blocks.{layer}.resid_pre", f"blocks.{layer}.ln1"
    if site in ("ln2", "mlp", "mlp_out"):
        return mlp_input_point(model.cfg.parallel_residual, layer), f"blocks.{layer}.ln2"
    return None


def residual_rows(coder: SparseCoder, model: HookedDecoder, point: str) -> torch.Tensor:
    """(n, d_model): each latent's decoder row mapped into the residual stream (fp32), cached on
    the coder until its decoder or the model's weights change."""
    rmap = residual_map(model, point)
    key = (
        id(model),
        point,
        coder.W_dec.data_ptr(),
        coder.W_dec._version,
        float(coder.scale_out),
        id(rmap.matrix),
    )
    cache = coder.__dict__.setdefault("_residual_rows", {})
    hit = cache.get("key"), cache.get("rows")
    if hit[0] == key and hit[1] is not None:
        return hit[1]
    with torch.no_grad():
        rows = rmap.apply(coder.decoder_rows().float())
    cache.update(key=key, rows=rows)
    return rows


def latent_kind(coder: SparseCoder, point: str, name: str) -> Kind:
    """The node kind of ``coder``'s latents, spliced at ``point`` as ``name``."""
    acts_point = f"{point}.{name}.acts"
    n = coder.cfg.n_latents

    rank = write_rank(point)

    def points(model: HookedDecoder) -> tuple[list[str], list[str]]:
        rmap = residual_map(model, point)
        return [acts_point] + ([rmap.post_norm] if rmap.post_norm else []), [acts_point]

    def metrics(ctx: Context) -> Metrics:
        """Shapes (pos, n)."""
        rmap = residual_map(ctx.model, point)
        zero = torch.zeros(ctx.n, n)
        if not ctx.ran(acts_point):
            return Metrics(zero, zero.clone(), zero.clone(), zero.clone())
        rows = residual_rows(coder, ctx.model, point)  # (n, d_model)
        a = ctx.rec.acts[acts_point].float()  # (pos, n)
        write = a.abs() * rows.norm(dim=-1)
        de = torch.zeros(ctx.n, n)
        if ctx.upstream(rank):
            r = ctx.reached
            de[r] = a[r] * (ctx.g_start.float()[r] @ rows.T)
        if rmap.post_norm is not None:  # a Gemma post-norm divides the write by its frozen scale
            scale = ctx.rec.acts[rmap.post_norm].float()  # (pos, 1)
            write /= scale
            de /= scale
        grad = ctx.rec.grads.get(acts_point)  # None when the value does not depend on the latents
        te = a * grad.float() if grad is not None else torch.zeros_like(a)
        return Metrics(a, write, de, te)

    def site(
        model: HookedDecoder, _layer: int | None, index: int | list[int] | None, _key: int | None
    ) -> Site:
        assert index is not None
        idx = [index] if isinstance(index, int) else list(index)
        if not idx or any(not 0 <= i < n for i in idx):
            raise InputError(f"target.index {index} out of range 0..{n - 1} (latents of {name})")
        return Site(acts_point, (idx,), 1)

    def write(model: HookedDecoder, node: Node, _ids: list[int] | None) -> torch.Tensor:
        assert node.index is not None
        return residual_rows(coder, model, point)[node.index]

    def feed(
        _model: HookedDecoder, _layer: int, stash: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, None, None]:
        return stash[acts_point].float(), None, None

    def token_rows(m: KindMetrics) -> list[TokenRow]:
        return [
            TokenRow(
                name,
                f"{name} latents",
                f"the latents of the dictionary at {point}",
                [float(v) for v in m.direct_effect.sum(-1)],
                [float(v) for v in m.total_effect.sum(-1)],
            )
        ]

    norm_point = coder.cfg.hook  # a dictionary reading a norm's output reads like a neuron

    def reader(model: HookedDecoder, _layer: int | None, index: int) -> Reader:
        norm = input_norm(model, norm_point) if norm_of(norm_point) else None
        return Reader(norm, (coder.W_enc[:, index] / coder.scale_in).detach())

    reads_residual = norm_of(norm_point) is not None or norm_point.split(".")[-1] in _RESIDUAL

    def trace(
        model: HookedDecoder,
        node: Node,
        _through: str | None,
        _downstream: Node | None,
        freeze: bool,
        **common: object,
    ) -> Objective:
        """Trace a latent's activation back to the residual stream its dictionary reads (with the
        norm in between frozen, as for a neuron); never linear: the activation is TopK/ReLU'd."""
        found = read_point(model, coder.cfg.hook)
        if found is None:
            raise InputError(f"{name} reads {coder.cfg.hook}, which is not downstream of a residual point")
        start, norm = found
        t, i = node.token, node.index

        def latent_value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
            return acts[acts_point][..., 0, t, i]

        hooks: list[tuple[str, HookFn]] = [(f"{norm}.scale", detach_hook)] if freeze and norm else []
        return Objective(
            start=start,
            value=latent_value,
            read=(acts_point,),
            stop=acts_point,
            fwd_hooks=hooks,
            linear=False,
            **common,  # type: ignore[arg-type]
        )

    c = coder.cfg
    return Kind(
        name=name,
        label=f"{c.kind.replace('_', '-')} latent ({point}, {c.n_latents} {c.activation})",
        value_label="latent activation",
        group="latents",
        layered=False,
        unit="latent",
        size=lambda _cfg: n,
        rank=lambda _layer: rank,
        hook=lambda _layer: acts_point,
        activations=lambda x: x,
        points=points,
        metrics=metrics,
        coords=("token", "index"),
        site=site,
        trace=Trace(trace, through=((None, "trace"),)),
        write=write,
        reader=reader if reads_residual else None,
        collation=Collation(
            lambda _layer: [acts_point], feed, density="fraction of stream tokens with activation > 0"
        ),
        token_rows=token_rows,
        verify=True,
    )


def attach(model: HookedDecoder, coder: SparseCoder, name: str | None = None) -> str:
    """Splice ``coder`` in with its error term kept (the model's outputs do not change until a
    latent is edited): an SAE where it reads, a transcoder where it writes (the MLP's output,
    :mod:`mechscope.models.dictionaries.splicing`); its latents become the node kind ``name``
    (default :meth:`SparseCoder.default_name`, e.g. ``sae_l6_resid_post``). Returns the name."""
    name = name or coder.default_name()
    if not (name.isidentifier() and name.islower()):
        raise InputError(f"dictionary name {name!r} must be a lower-case identifier (letters, digits, _)")
    if any(k.name == name for k in kinds_of(model)):
        raise InputError(f"a node kind named {name!r} exists already; choose another name")
    # Attached for inspection: no parameter gradients (the engine's backward would fill them).
    splice_coder(model, coder.to(model.device).eval().requires_grad_(False), name)
    return name


def detach(model: HookedDecoder, name: str) -> SparseCoder:
    """Remove the dictionary attached as ``name`` and return it."""
    for point, n, module in model.splices():
        if n == name and isinstance(module, SparseCoder):
            return unsplice_coder(model, point, name)
    attached = [n for _, n, m in model.splices() if isinstance(m, SparseCoder)]
    raise InputError(f"no dictionary attached as {name!r}; attached: {attached}")
