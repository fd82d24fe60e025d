"""Tracing upstream: a node's own activation as the direction of interest.

The backward pass enters the residual stream where the node reads it: an MLP neuron reads
``resid_mid`` of its layer (``resid_pre`` with parallel residual) through ``ln2``; an attention
head reads ``resid_pre`` through ``ln1``. With ``freeze_norm_scale`` the norms between that point and
the node are frozen too, so that the direct effects of upstream nodes are linear where the traced
quantity is (a pre-activation, a score through one side, a value projection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mechscope.engine.directions import NodeDirection, Objective, detach_hook
from mechscope.engine.nodes import Node
from mechscope.errors import InputError
from mechscope.models.hooks import HookFn

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder


def node_objective(model: HookedDecoder, prompt: list[int], d: NodeDirection, freeze: bool) -> Objective:
    cfg = model.cfg
    node = d.node.check(cfg, len(prompt))
    rows = torch.tensor([prompt], dtype=torch.long, device=model.device)
    assert node.layer is not None or node.kind == "embedding"
    if node.kind == "embedding":
        raise InputError("an embedding has nothing upstream to trace")
    layer = node.layer or 0
    b = f"blocks.{layer}"
    mlp_start = f"{b}.resid_pre" if cfg.parallel_residual else f"{b}.resid_mid"
    t = node.token
    common = dict(rows=rows, prompt_len=len(prompt), position=t, description=f"trace from {node}")

    if node.kind in ("attn_out", "mlp_out"):
        if d.through is not None:
            raise InputError(f"'through' is not used when tracing a layer output ({node})")
        name = f"{b}.{node.kind}"

        def norm_value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
            return acts[name][..., 0, t, :].norm(dim=-1)

        start = f"{b}.resid_pre" if node.kind == "attn_out" else mlp_start
        return Objective(start=start, value=norm_value, read=(name,), stop=name, linear=False, **common)  # type: ignore[arg-type]

    if node.kind == "mlp_neuron":
        through = d.through or "pre"
        if through not in ("pre", "post"):
            raise InputError(f"an MLP neuron is traced through 'pre' or 'post', not {through!r}")
        name = f"{b}.mlp.{through}"
        n = node.index

        def neuron_value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
            return acts[name][..., 0, t, n]

        hooks: list[tuple[str, HookFn]] = [(f"{b}.ln2.scale", detach_hook)] if freeze else []
        return Objective(
            start=mlp_start,
            value=neuron_value,
            read=(name,),
            stop=name,
            fwd_hooks=hooks,
            linear=freeze and through == "pre",
            **common,  # type: ignore[arg-type]
        )
    return _head_objective(model, node, d, freeze, common)


def _head_objective(
    model: HookedDecoder, node: Node, d: NodeDirection, freeze: bool, common: dict[str, object]
) -> Objective:
    cfg = model.cfg
    layer = node.layer or 0
    b = f"blocks.{layer}"
    h, q, k = node.index, node.token, node.key
    assert h is not None
    through = d.through or ("query_key" if k is not None else "value")
    hooks: list[tuple[str, HookFn]] = []
    if freeze:
        hooks.append((f"{b}.ln1.scale", detach_hook))
        if cfg.qk_norm:
            hooks += [(f"{b}.attn.q_norm.scale", detach_hook), (f"{b}.attn.k_norm.scale", detach_hook)]
    start = f"{b}.resid_pre"

    if through in ("query", "key", "query_key"):
        if k is None:
            raise InputError(
                f"tracing {node} through {through!r} needs a key position (a query-key pair, e.g. '{node}<-0')"
            )
        if through == "query":
            hooks.append((f"{b}.attn.k", detach_hook))
        elif through == "key":
            hooks.append((f"{b}.attn.q", detach_hook))
        name = f"{b}.attn.scores"

        def score_value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
            return acts[name][..., 0, h, q, k]

        return Objective(
            start=start,
            value=score_value,
            read=(name,),
            stop=name,
            fwd_hooks=hooks,
            linear=freeze and through != "query_key" and not cfg.attn_softcap,
            **common,  # type: ignore[arg-type]
        )
    if through != "value":
        raise InputError(
            f"an attention head is traced through query, key, query_key or value, not {through!r}"
        )

    w_o = model.block(layer).attn.o_proj.weight.view(cfg.d_model, cfg.n_heads, cfg.d_head)[
        :, h
    ]  # (d_model, d_head)
    u = _downstream_direction(model, node, d.downstream)
    hooks.append((f"{b}.attn.pattern", detach_hook))  # only the values carry gradient
    kv = h // (cfg.n_heads // cfg.n_kv_heads)
    names = (f"{b}.attn.v", f"{b}.attn.pattern")

    def value_value(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        v, p = (
            acts[names[0]][..., 0, :, kv, :],
            acts[names[1]][..., 0, h, q, :],
        )  # (..., kv_pos, d_head), (..., kv_pos)
        z = p[..., k, None] * v[..., k, :] if k is not None else (p[..., :, None] * v).sum(-2)
        write = z @ w_o.T  # (..., d_model)
        direction = (
            u
            if u is not None
            else write.detach() / write.detach().norm(dim=-1, keepdim=True).clamp_min(1e-12)
        )
        return (write * direction).sum(-1)

    return Objective(
        start=start,
        value=value_value,
        read=names,
        stop=names[1],
        fwd_hooks=hooks,
        linear=freeze and u is not None,
        **common,  # type: ignore[arg-type]
    )


def _downstream_direction(model: HookedDecoder, node: Node, downstream: Node | None) -> torch.Tensor | None:
    """The input direction of a later MLP neuron, through its norm's gain; None for no downstream node."""
    if downstream is None:
        return None
    assert node.layer is not None
    if downstream.kind != "mlp_neuron" or downstream.layer is None or downstream.index is None:
        raise InputError(f"value tracing projects on a downstream MLP neuron; got {downstream}")
    if not node.layer <= downstream.layer < model.cfg.n_layers:
        raise InputError(
            f"downstream node {downstream} must be in layer {node.layer}..{model.cfg.n_layers - 1}"
        )
    if not 0 <= downstream.index < model.cfg.d_mlp:
        raise InputError(f"downstream node {downstream}: index out of range 0..{model.cfg.d_mlp - 1}")
    block = model.block(downstream.layer)
    proj = block.mlp.gate_proj if block.mlp.gated else block.mlp.up_proj
    return (proj.weight[downstream.index] * block.ln2.gain()).detach()
