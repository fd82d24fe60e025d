"""Sparse dictionaries (SAEs, transcoders) over a model's hook points: the coder
(:class:`SparseCoder`), attaching it to a model so its latents become nodes (:func:`attach`),
training (:mod:`.training`), evaluation (:mod:`.eval`) and saving (:mod:`.io`).
See docs/autoencoders.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mechscope.errors import InputError
from mechscope.models.dictionaries.coder import SparseCoder, init_random
from mechscope.models.dictionaries.config import ACTIVATIONS, KINDS, DictionaryConfig

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

__all__ = ["ACTIVATIONS", "KINDS", "DictionaryConfig", "SparseCoder", "attach", "detach", "init_random"]


def attach(model: HookedDecoder, coder: SparseCoder, name: str | None = None) -> str:
    """Splice ``coder`` in at the hook point it reads, with its error term kept (the model's
    outputs do not change until a latent is edited); its latents become the node kind ``name``
    (default :meth:`SparseCoder.default_name`, e.g. ``sae_l6_resid_post``). Returns the name."""
    from mechscope.models.weights import residual_map

    cfg = coder.cfg
    if cfg.kind != "sae":
        raise InputError(f"attaching a {cfg.kind} is not supported yet; only SAEs splice in where they read")
    name = name or coder.default_name()
    if not (name.isidentifier() and name.islower()):
        raise InputError(f"dictionary name {name!r} must be a lower-case identifier (letters, digits, _)")
    rmap = residual_map(model, cfg.hook)
    if rmap.width != cfg.d_in:
        raise InputError(f"{cfg.hook} has width {rmap.width} in this model, the dictionary d_in={cfg.d_in}")
    from mechscope.engine.kinds import kinds_of  # the built-in kinds' names are taken

    if any(k.name == name for k in kinds_of(model)):
        raise InputError(f"a node kind named {name!r} exists already; choose another name")
    # Attached for inspection: no parameter gradients (the engine's backward would fill them).
    model.splice(cfg.hook, coder.to(model.device).eval().requires_grad_(False), name)
    return name


def detach(model: HookedDecoder, name: str) -> SparseCoder:
    """Remove the dictionary attached as ``name`` and return it."""
    for point, n, module in model.splices():
        if n == name and isinstance(module, SparseCoder):
            out = model.unsplice(point, name)
            assert isinstance(out, SparseCoder)
            return out
    attached = [n for _, n, m in model.splices() if isinstance(m, SparseCoder)]
    raise InputError(f"no dictionary attached as {name!r}; attached: {attached}")
