"""Token views: the logit lens (of the residual stream, or of each layer's attention or MLP
write), a node's activation over a prompt, and the tokens a node promotes, suppresses and is
driven by.

Everything goes through the model's own sub-steps (``final_norm``, ``unembed``, the layer norms),
so soft-capping, norm offsets and embedding scales are the model's, not a copy.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import BaseModel, Field

from mechscope.engine.kinds import get_kind, kinds_of
from mechscope.engine.nodes import Node
from mechscope.engine.prompt import prompt_ids
from mechscope.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

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

    def _repr_html_(self) -> str:
        """Jupyter's view of the lens (:mod:`mechscope.notebook`, imported only when shown)."""
        from mechscope.notebook.lens import lens_html

        return lens_html(self)


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
    grid = lens_grid(model, prompt, "resid", k)
    return LensResult(tokens=grid.tokens, layers=grid.layers, top=grid.top)


LensStream = Literal["resid", "attn", "mlp"]
LENS_STREAMS: tuple[LensStream, ...] = ("resid", "attn", "mlp")
LENS_ROWS = 64  # (layer, position) rows unembedded at a time: 64 x 49k logits is 12 MB


class LensTarget(BaseModel):
    """One token's probability and rank (0 = the top token) in every cell of a lens grid."""

    id: int
    token: str
    probs: list[list[float]] = Field(description="(layer, pos)")
    ranks: list[list[int]] = Field(description="(layer, pos); 0 = the most likely token")


class LensGrid(BaseModel):
    """``top[layer][pos]``: the top tokens read out of one stream at each layer and position.

    ``resid``: the residual stream entering each block (the last row, ``final``: the stream the
    model unembeds), through the final norm and the unembedding: what the model would predict if
    it stopped there. ``attn``/``mlp``: each layer's attention or MLP write alone, through the final
    norm with its scale frozen at the value it has on the prompt's final residual, then the
    unembedding: the write's direct logits, the part of the output logits it adds. Their softmax is
    the distribution those logits alone would give: the tokens a write pushes up, relative to each
    other (a write that moves every logit by the same amount has a flat row)."""

    stream: LensStream
    tokens: list[str]
    layers: list[str]
    top: list[list[list[TokenValue]]] = Field(description="(layer, pos, k) probabilities")
    target: LensTarget | None = None


def _stream_points(model: HookedDecoder, stream: LensStream) -> tuple[list[str], list[str]]:
    """The hook points of a stream's rows, and the rows' labels."""
    n = model.cfg.n_layers
    layers = [f"L{i}" for i in range(n)]
    if stream == "resid":
        points = [f"blocks.{i}.resid_pre" for i in range(n)] + [f"blocks.{n - 1}.resid_post"]
        return points, [*layers, "final"]
    return [f"blocks.{i}.{stream}_out" for i in range(n)], layers


def _frozen_final_norm(model: HookedDecoder, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``model.final_norm`` of writes ``x`` (..., pos, d) with its scale fixed to ``scale`` (pos, 1),
    less its bias: a linear map, so each write's share of the final residual maps to its share of
    the normalised one."""

    def frozen(s: torch.Tensor, _hook: object) -> torch.Tensor:
        return scale.to(s.dtype).expand_as(s)

    with model.hooks(fwd=[("ln_final.scale", frozen)]):
        return model.final_norm(x) - model.final_norm(torch.zeros_like(x[..., :1, :, :]))


def _token_id(model: HookedDecoder, target: int | str) -> int:
    if isinstance(target, int):
        if not 0 <= target < model.cfg.d_vocab:
            raise InputError(f"target: token id {target} out of range 0..{model.cfg.d_vocab - 1}")
        return target
    if model.tokenizer is None:
        raise InputError("target: a token given as text needs the model's tokenizer; give its id")
    try:
        return model.tokenizer.single_token(target)
    except InputError as e:
        raise InputError(f"target: {e}") from None


def lens_grid(
    model: HookedDecoder,
    prompt: ModelInput,
    stream: LensStream = "resid",
    k: int = 5,
    target: int | str | None = None,
    check: Callable[[], None] | None = None,
) -> LensGrid:
    """The lens of one ``stream`` (see :class:`LensGrid`): the top ``k`` tokens of every (layer,
    position) and, with ``target``, that token's probability and rank in each. ``check`` is called
    between chunks of rows and may raise to stop the work."""
    if not 1 <= k <= 100:
        raise InputError(f"k must be in 1..100, got {k}")
    if stream not in LENS_STREAMS:
        raise InputError(f"stream must be one of {list(LENS_STREAMS)}, got {stream!r}")
    tid = None if target is None else _token_id(model, target)
    ids = prompt_ids(model, prompt)
    names, layers = _stream_points(model, stream)
    with torch.inference_mode():
        _, cache = model.run_with_cache(
            torch.tensor([ids]), names=names if stream == "resid" else [*names, "ln_final.scale"]
        )
        x = torch.stack([cache[name][0] for name in names])  # (layer, pos, d_model)
        if stream == "resid":
            normed = model.final_norm(x)
        else:
            normed = _frozen_final_norm(model, x, cache["ln_final.scale"][0].float())
        rows = normed.reshape(-1, normed.shape[-1])
        top_p, top_i, t_p, t_rank = [], [], [], []
        for s in range(0, rows.shape[0], LENS_ROWS):
            if check is not None:
                check()
            logits = model.unembed(rows[s : s + LENS_ROWS]).float()  # (rows, d_vocab)
            # Probabilities of the top tokens only: exp(logit - logsumexp), no full softmax.
            lse = logits.logsumexp(-1, keepdim=True)
            v, i = logits.topk(k, dim=-1)
            top_p.append((v - lse).exp())
            top_i.append(i)
            if tid is not None:
                t = logits[:, tid : tid + 1]
                t_p.append((t - lse).exp()[:, 0])
                t_rank.append((logits > t).sum(-1))
    n_rows, n_pos = len(names), len(ids)
    p, i = torch.cat(top_p).view(n_rows, n_pos, k), torch.cat(top_i).view(n_rows, n_pos, k)
    strs = {int(t): _tok(model, int(t)) for t in i.unique()}
    top = [
        [
            [TokenValue(id=int(t), token=strs[int(t)], value=float(v)) for v, t in zip(pv, pi, strict=True)]
            for pv, pi in zip(p_row, i_row, strict=True)
        ]
        for p_row, i_row in zip(p.tolist(), i.tolist(), strict=True)
    ]
    lens_target = None
    if tid is not None:
        lens_target = LensTarget(
            id=tid,
            token=_tok(model, tid),
            probs=torch.cat(t_p).view(n_rows, n_pos).tolist(),
            ranks=torch.cat(t_rank).view(n_rows, n_pos).tolist(),
        )
    return LensGrid(
        stream=stream, tokens=[_tok(model, t) for t in ids], layers=layers, top=top, target=lens_target
    )


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
