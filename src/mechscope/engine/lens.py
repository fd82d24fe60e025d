"""Token views: the logit lens, the tokens a node promotes, suppresses and is driven by, and a
head's query-by-key pairs on one sequence.

Everything goes through the model's own sub-steps (``final_norm``, ``unembed``, the layer norms),
so soft-capping, norm offsets and embedding scales are the model's, not a copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from pydantic import BaseModel, Field

from mechscope.engine.attribution import prompt_ids
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
    pattern row shown for heads)."""
    ids = prompt_ids(model, prompt)
    node.check(model.cfg, len(ids))
    b = f"blocks.{node.layer}"
    point = {
        "mlp_neuron": f"{b}.mlp.post",
        "attn_head": f"{b}.attn.z",
        "attn_out": f"{b}.attn_out",
        "mlp_out": f"{b}.mlp_out",
        "embedding": "embed",
    }[node.kind]
    names = [point] + ([f"{b}.attn.pattern"] if node.kind == "attn_head" else [])
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]), names=names)
    x = cache[point][0].float()
    pattern = None
    if node.kind == "mlp_neuron":
        values = x[:, node.index]
    elif node.kind == "attn_head":
        values = x[:, node.index].norm(dim=-1)
        pattern = [float(v) for v in cache[f"{b}.attn.pattern"][0, node.index, node.token, : node.token + 1]]
    else:
        values = x.norm(dim=-1)
    return NodeActivations(
        node=node, tokens=[_tok(model, i) for i in ids], values=[float(v) for v in values], pattern=pattern
    )


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
    ``prompt`` (heads: the head's output at its query token, or of one query-key pair)."""
    cfg = model.cfg
    if node.kind == "mlp_neuron":
        assert node.layer is not None and node.index is not None
        block = model.block(node.layer)
        w = block.mlp.down_proj.weight[:, node.index].float()
        return w * block.ln2_post.gain().float() if cfg.sandwich_norms else w
    if node.kind != "attn_head":
        raise InputError(f"output tokens are defined for MLP neurons and attention heads, not {node.kind}")
    if prompt is None:
        raise InputError("a head's write depends on the prompt: give one")
    assert node.layer is not None and node.index is not None
    ids = prompt_ids(model, prompt)
    node.check(cfg, len(ids))
    b = f"blocks.{node.layer}.attn"
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]), names=[f"{b}.v", f"{b}.pattern"])
    h = node.index
    v = cache[f"{b}.v"][0, :, h // (cfg.n_heads // cfg.n_kv_heads)].float()  # (kv_pos, d_head)
    p = cache[f"{b}.pattern"][0, h, node.token].float()  # (kv_pos,)
    z = p[node.key] * v[node.key] if node.key is not None else p @ v
    w_o = model.block(node.layer).attn.o_proj.weight.float().view(cfg.d_model, cfg.n_heads, cfg.d_head)[:, h]
    w = w_o @ z
    return w * model.block(node.layer).ln1_post.gain().float() if cfg.sandwich_norms else w


def node_tokens(
    model: HookedDecoder, node: Node, prompt: ModelInput | None = None, k: int = 10
) -> NodeTokens:
    """Output tokens a node promotes and suppresses (its write through the final norm's gain and the
    unembedding) and, for neurons, the input tokens whose embeddings drive it most directly."""
    if not 1 <= k <= 100:
        raise InputError(f"k must be in 1..100, got {k}")
    if node.layer is not None and node.layer >= model.cfg.n_layers:
        raise InputError(f"node {node}: layer out of range 0..{model.cfg.n_layers - 1}")
    with torch.no_grad():
        w = write_direction(model, node, prompt) * model.ln_final.gain().float()
        logits = model.W_U.float() @ w  # (d_vocab,)
        drivers = _drivers(model, node, k) if node.kind == "mlp_neuron" else None
    return NodeTokens(
        promoted=_ranked(model, logits, k, True), suppressed=_ranked(model, logits, k, False), drivers=drivers
    )


def _drivers(model: HookedDecoder, node: Node, k: int) -> list[TokenValue]:
    """A neuron's pre-activation for each vocabulary token's embedding fed straight into its norm."""
    assert node.layer is not None and node.index is not None
    block = model.block(node.layer)
    mlp = block.mlp
    row = (mlp.gate_proj if mlp.gated else mlp.up_proj).weight[node.index].float()
    emb = model.embed_tokens.weight
    scores = torch.empty(emb.shape[0])
    for s in range(0, emb.shape[0], VOCAB_CHUNK):
        x = emb[s : s + VOCAB_CHUNK].float() * model.cfg.embed_scale
        scores[s : s + VOCAB_CHUNK] = block.ln2(x).float() @ row
    return _ranked(model, scores, k, True)


class HeadPairs(NamedTuple):
    """One head on one sequence, every (query, key) pair: ``pattern`` the attention probabilities,
    ``write`` each pair's write norm ``p[q, k] · |W_O,h v_k|`` (what collation ranks a query's
    strongest key by), ``z_norm`` the head's activation ``|z|`` at each query."""

    pattern: torch.Tensor  # (pos, kv_pos), each row sums to 1 over keys <= query
    write: torch.Tensor  # (pos, kv_pos)
    z_norm: torch.Tensor  # (pos,)


def head_pairs(model: HookedDecoder, ids: list[int], layer: int, head: int) -> HeadPairs:
    """Head ``head`` of block ``layer`` on the token ids ``ids`` (one forward)."""
    from mechscope.engine.metrics import layer_weights

    cfg = model.cfg
    if not (0 <= layer < cfg.n_layers and 0 <= head < cfg.n_heads):
        raise InputError(
            f"head L{layer}.{head} does not exist: layers 0..{cfg.n_layers - 1}, heads 0..{cfg.n_heads - 1}"
        )
    b = f"blocks.{layer}.attn"
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]), names=[f"{b}.pattern", f"{b}.v", f"{b}.z"])
        p = cache[f"{b}.pattern"][0, head].float()  # (pos, kv_pos)
        v = cache[f"{b}.v"][0].float().repeat_interleave(cfg.n_heads // cfg.n_kv_heads, dim=1)
        v_write = layer_weights(model)[layer].write_norm(v)[:, head]  # (kv_pos,): |W_O,h v_k|
        z_norm = cache[f"{b}.z"][0, :, head].float().norm(dim=-1)  # (pos,)
    return HeadPairs(pattern=p, write=p * v_write[None, :], z_norm=z_norm)
