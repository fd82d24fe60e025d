"""Token views: the logit lens, a node's activation over a prompt, and the tokens a node promotes,
suppresses and is driven by.

Everything goes through the model's own sub-steps (``final_norm``, ``unembed``, the layer norms),
so soft-capping, norm offsets and embedding scales are the model's, not a copy.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
from pydantic import BaseModel, Field

from mechscope.engine.attribution import prompt_ids
from mechscope.engine.kinds import get_kind, kinds_of
from mechscope.engine.nodes import Node
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder, ModelInput

VOCAB_CHUNK = 8192  # vocabulary rows normalised at a time (Gemma's 262k x 640 would be 670 MB)


class TokenValue(BaseModel):
    id: int
    token: str
    value: float


class LensResult(BaseModel):
    """``top[layer][pos]``: the most likely next tokens when the residual stream entering block
    ``layer`` (the last entry: the final residual) is read out directly."""

    tokens: list[str]
    layers: list[str]
    top: list[list[list[TokenValue]]] = Field(description="(layer, pos, k) probabilities")


class NodeTokens(BaseModel):
    promoted: list[TokenValue]  # output tokens its write pushes up (logit units per unit of write)
    suppressed: list[TokenValue]
    drivers: list[TokenValue] | None  # input tokens whose embedding drives it most (neurons only)


class NodeActivations(BaseModel):
    """A node's activation at every token of a prompt (its kind at each position)."""

    node: Node
    tokens: list[str]
    values: list[float]  # per position: neuron activation, head output norm, layer write norm
    pattern: list[float] | None = None  # heads: the attention of the node's query token over keys


def node_activations(model: HookedDecoder, prompt: ModelInput, node: Node) -> NodeActivations:
    """What ``node``'s unit does at each token of ``prompt`` (the node's own token picks the
    pattern row shown for kinds with (query, key) pairs)."""
    ids = prompt_ids(model, prompt)
    node.check(model, len(ids))
    kind = get_kind(node.kind, model)
    layer = node.layer or 0
    point = kind.hook(layer)
    names = [point] + ([kind.pattern_point(layer)] if kind.pattern_point is not None else [])
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]), names=names)
    values = kind.activations(cache[point][0])[:, node.index or 0]
    pattern = None
    if kind.pattern_point is not None:
        row = cache[kind.pattern_point(layer)][0, node.index or 0, node.token, : node.token + 1]
        pattern = [float(v) for v in row]
    return NodeActivations(
        node=node, tokens=[_tok(model, i) for i in ids], values=[float(v) for v in values], pattern=pattern
    )


class _Reached(Exception):
    """Raised by the hook that has what :func:`unit_activations` needs: the rest of the forward
    (later blocks, the unembedding) is skipped."""


def unit_activations(
    model: HookedDecoder, kind_name: str, layer: int | None, index: int, rows: list[list[int]]
) -> torch.Tensor:
    """(row, pos) activations of one unit over equal-length token rows: what a dataset stores
    per window (its quantile samples are stored without them), recomputed."""
    return layer_activations(model, kind_name, layer, rows)[:, :, index]


def layer_activations(
    model: HookedDecoder, kind_name: str, layer: int | None, rows: list[list[int]]
) -> torch.Tensor:
    """(row, pos, unit) activations of every unit of a kind's layer over equal-length token rows,
    in one forward that stops at the layer's hook point."""
    kind = get_kind(kind_name, model)
    point = kind.hook(layer or 0)
    got: dict[str, torch.Tensor] = {}

    def grab(x: torch.Tensor, _hook: object) -> None:
        got["x"] = x
        raise _Reached

    with torch.inference_mode(), model.hooks(fwd=[(point, grab)]), contextlib.suppress(_Reached):
        model(torch.tensor(rows, device=model.device))
    return kind.activations(got["x"]).float().cpu()  # (row, pos, unit)


def _tok(model: HookedDecoder, i: int) -> str:
    return model.tokenizer.token_str(i) if model.tokenizer is not None else str(i)


def logit_lens(model: HookedDecoder, prompt: ModelInput, k: int = 5) -> LensResult:
    """Each layer's residual stream through the final norm and the unembedding."""
    if not 1 <= k <= 100:
        raise InputError(f"k must be in 1..100, got {k}")
    ids = prompt_ids(model, prompt)
    names = [f"blocks.{i}.resid_pre" for i in range(model.cfg.n_layers)]
    names.append(f"blocks.{model.cfg.n_layers - 1}.resid_post")
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]), names=names)
        top = []
        for name in names:
            probs = model.unembed(model.final_norm(cache[name][0])).float().softmax(-1)  # (pos, d_vocab)
            p, i = probs.topk(k, dim=-1)
            top.append(
                [
                    [
                        TokenValue(id=int(t), token=_tok(model, int(t)), value=float(v))
                        for v, t in zip(pv, pi, strict=True)
                    ]
                    for pv, pi in zip(p, i, strict=True)
                ]
            )
    layers = [f"L{i}" for i in range(model.cfg.n_layers)] + ["final"]
    return LensResult(tokens=[_tok(model, i) for i in ids], layers=layers, top=top)


def _ranked(model: HookedDecoder, scores: torch.Tensor, k: int, largest: bool) -> list[TokenValue]:
    v, i = scores.topk(k, largest=largest)
    return [
        TokenValue(id=int(t), token=_tok(model, int(t)), value=float(x)) for x, t in zip(v, i, strict=True)
    ]


def write_direction(model: HookedDecoder, node: Node, prompt: ModelInput | None = None) -> torch.Tensor:
    """The (d_model,) vector a node writes per unit of activation (neurons), or what it wrote on
    ``prompt`` (kinds whose write depends on it: a head at its query token, or one pair)."""
    kind = get_kind(node.kind, model)
    if kind.write is None:
        have = ", ".join(k.name for k in kinds_of(model) if k.write is not None)
        raise InputError(f"output tokens are defined for {have}, not {node.kind}")
    if kind.write_needs_prompt and prompt is None:
        raise InputError(f"a {kind.label}'s write depends on the prompt: give one")
    ids = None
    if prompt is not None:
        ids = prompt_ids(model, prompt)
        node.check(model, len(ids))
    elif node.layer is not None and node.layer >= model.cfg.n_layers:
        raise InputError(f"node {node}: layer out of range 0..{model.cfg.n_layers - 1}")
    return kind.write(model, node, ids).float()


def node_tokens(
    model: HookedDecoder, node: Node, prompt: ModelInput | None = None, k: int = 10
) -> NodeTokens:
    """Output tokens a node promotes and suppresses (its write through the final norm's gain and the
    unembedding) and, for units that read through a norm (neurons, transcoder latents), the input
    tokens whose embeddings drive it most directly."""
    if not 1 <= k <= 100:
        raise InputError(f"k must be in 1..100, got {k}")
    kind = get_kind(node.kind, model)
    with torch.no_grad():
        w = write_direction(model, node, prompt) * model.ln_final.gain().float()
        logits = model.W_U.float() @ w  # (d_vocab,)
        drivers = _drivers(model, node, k) if kind.reader is not None else None
    return NodeTokens(
        promoted=_ranked(model, logits, k, True), suppressed=_ranked(model, logits, k, False), drivers=drivers
    )


def _drivers(model: HookedDecoder, node: Node, k: int) -> list[TokenValue]:
    """A unit's input for each vocabulary token's embedding fed straight into what it reads (the
    norm of a neuron or a transcoder latent; a residual SAE's latent reads it raw), biases aside."""
    assert node.index is not None
    reader = get_kind(node.kind, model).reader
    assert reader is not None
    r = reader(model, node.layer, node.index)
    emb = model.embed_tokens.weight
    scores = torch.empty(emb.shape[0])
    for s in range(0, emb.shape[0], VOCAB_CHUNK):
        scores[s : s + VOCAB_CHUNK] = r.read(emb[s : s + VOCAB_CHUNK].float() * model.cfg.embed_scale)
    return _ranked(model, scores, k, True)
