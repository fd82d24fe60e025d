"""Sparse dictionaries (SAEs, transcoders) over a model's hook points: the coder
(:class:`SparseCoder`; attaching it to a model so its latents become nodes is
:func:`mechscope.engine.kinds.latent.attach`),
training (:mod:`.training`), evaluation (:mod:`.eval`) and saving (:mod:`.io`).
See docs/autoencoders.md."""

from __future__ import annotations

from mechscope.models.dictionaries.coder import SparseCoder, init_random
from mechscope.models.dictionaries.config import ACTIVATIONS, KINDS, DictionaryConfig

__all__ = ["ACTIVATIONS", "KINDS", "DictionaryConfig", "SparseCoder", "init_random"]
