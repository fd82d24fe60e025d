"""Model facts and tokenisation."""

from __future__ import annotations

from fastapi import APIRouter

from mechscope.engine.nodes import NODE_KINDS
from mechscope.server.deps import State
from mechscope.server.schemas import ModelInfo, TokenInfo, TokenizeRequest, TokenizeResponse

router = APIRouter(tags=["model"])


@router.get("/model")
def model_info(state: State) -> ModelInfo:
    """The served model's architecture and sizes, and the server's request limits."""
    cfg = state.model.cfg
    return ModelInfo(
        name=cfg.name,
        architecture=cfg.architecture,
        weights=cfg.note or "as stored",
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        n_kv_heads=cfg.n_kv_heads,
        d_model=cfg.d_model,
        d_mlp=cfg.d_mlp,
        d_vocab=cfg.d_vocab,
        n_ctx=cfg.n_ctx,
        node_kinds=list(NODE_KINDS),
        limits=state.settings.limits,
    )


@router.post("/tokenize")
def tokenize(req: TokenizeRequest, state: State) -> TokenizeResponse:
    """Token ids and their strings, as the model sees ``text`` (the live preview of the editors)."""
    from mechscope.errors import InputError

    tok = state.model.tokenizer
    if tok is None:
        raise InputError("this model has no tokenizer")
    ids = tok.encode(req.text, add_bos=req.add_bos)
    return TokenizeResponse(tokens=[TokenInfo(id=i, token=tok.token_str(i)) for i in ids])
