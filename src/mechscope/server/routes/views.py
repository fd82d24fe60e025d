"""Token views: a node on a prompt (activations, promoted and suppressed tokens) and the logit lens."""

from __future__ import annotations

from fastapi import APIRouter

from mechscope.engine.kinds import get_kind, kinds_of
from mechscope.engine.lens import LensResult, NodeTokens, logit_lens, node_activations, node_tokens
from mechscope.engine.nodes import Node
from mechscope.server import limits
from mechscope.server.deps import State
from mechscope.server.errors import FieldError
from mechscope.server.schemas import LensRequest, NodeDetail, NodeRequest, NodeTokensRequest

router = APIRouter(tags=["views"])


@router.post("/node")
async def node_detail(req: NodeRequest, state: State) -> NodeDetail:
    """A node's activation at every token of the prompt, and the tokens it promotes, suppresses
    and (neurons) is driven by."""

    lim = state.settings.limits
    limits.prompt_tokens(state.model, req.prompt, "prompt", lim)
    limits.at_most(req.k, lim.max_k, "k", "max_k")

    def work() -> NodeDetail:
        acts = node_activations(state.model, req.prompt, req.node)
        kind = get_kind(req.node.kind, state.model)
        tokens = node_tokens(state.model, req.node, req.prompt, req.k) if kind.write is not None else None
        return NodeDetail(label=str(req.node), activations=acts, tokens=tokens)

    result, _ = await state.worker.run("node:" + req.model_dump_json(), work)
    return result


@router.post("/node/tokens")
async def node_weight_tokens(req: NodeTokensRequest, state: State) -> NodeTokens:
    """A neuron's promoted and suppressed output tokens and its driving input tokens, from the
    weights alone. A head has no such answer: what it writes depends on the values it attends to,
    so its output tokens need a prompt (POST /api/node) or a dataset window (/api/dataset/pattern)."""

    kind = get_kind(req.kind, state.model)
    if kind.write is None or kind.write_needs_prompt:
        have = ", ".join(
            k.name for k in kinds_of(state.model) if k.write is not None and not k.write_needs_prompt
        )
        why = (
            "depend on the prompt, so they need one: POST /api/node"
            if kind.write_needs_prompt
            else "are not defined"
        )
        raise FieldError("kind", f"a {kind.label}'s output tokens {why}; from the weights alone: {have}")
    limits.unit(state.model, req.kind, req.layer, req.index, ("layer", "index"))
    limits.at_most(req.k, state.settings.limits.max_k, "k", "max_k")
    node = Node(kind=req.kind, layer=req.layer, index=req.index, token=0)
    result, _ = await state.worker.run(
        "node-tokens:" + req.model_dump_json(), lambda: node_tokens(state.model, node, None, req.k)
    )
    return result


@router.post("/lens")
async def lens(req: LensRequest, state: State) -> LensResult:
    """Logit lens: every layer's residual stream through the final norm and unembedding, top-k per position."""

    lim = state.settings.limits
    limits.prompt_tokens(state.model, req.prompt, "prompt", lim)
    limits.at_most(req.k, lim.max_k, "k", "max_k")
    result, _ = await state.worker.run(
        "lens:" + req.model_dump_json(), lambda: logit_lens(state.model, req.prompt, req.k)
    )
    return result
