"""Attribution graphs (docs/graphs.md): the replacement model of per-layer transcoders, the graph
of direct linear effects between tokens, latents, errors and logits, its pruning and scores,
the causal check in the real model, attention edges explained, and the Neuronpedia export."""

from mechscope.engine.graphs.build import Graph, build_graph
from mechscope.engine.graphs.neuronpedia import to_neuronpedia

__all__ = ["Graph", "build_graph", "to_neuronpedia"]
