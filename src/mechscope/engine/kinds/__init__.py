"""Node kinds: one file per kind, one registry line each.

The registry order is the display order (the node table's filters, ``/api/model``) and the order
in which collation lays out its tables. See docs/architecture.md for how to add a kind.
"""

from mechscope.engine.kinds import embedding, head, layer_output, neuron
from mechscope.engine.kinds.base import (
    Collation,
    Kind,
    Site,
    TokenRow,
    Trace,
    get_kind,
    kinds_of,
    register,
    unregister,
)

register(neuron.KIND)
register(head.KIND)
register(embedding.KIND)
register(layer_output.ATTN_OUT)
register(layer_output.MLP_OUT)

__all__ = ["Collation", "Kind", "Site", "TokenRow", "Trace", "get_kind", "kinds_of", "register", "unregister"]
