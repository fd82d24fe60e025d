"""Node kinds: one file per kind, one registry line each.

The registry order is the display order (the node table's filters, ``/api/model``) and the order
in which collation lays out its tables. See docs/architecture.md for how to add a kind.
"""

from mechscope.engine.kinds import embedding, head, latent, layer_output, neuron
from mechscope.engine.kinds.base import (
    Collation,
    Kind,
    Site,
    TokenRow,
    Trace,
    get_kind,
    kinds_of,
    register,
    register_spliced,
    unregister,
    unregister_spliced,
)
from mechscope.models.dictionaries import SparseCoder

register(neuron.KIND)
register(head.KIND)
register(embedding.KIND)
register(layer_output.ATTN_OUT)
register(layer_output.MLP_OUT)
register_spliced(SparseCoder, latent.latent_kind)  # a dictionary's latents, one kind per dictionary

__all__ = [
    "Collation",
    "Kind",
    "Site",
    "TokenRow",
    "Trace",
    "get_kind",
    "kinds_of",
    "register",
    "register_spliced",
    "unregister",
    "unregister_spliced",
]
