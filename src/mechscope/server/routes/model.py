"""Model facts and tokenisation."""

from __future__ import annotations

from fastapi import APIRouter

from mechscope.engine.interventions import takes_dataset_mean
from mechscope.engine.kinds import Kind, kinds_of
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.server.deps import State
from mechscope.server.schemas import (
    KindInfo,
    ModelInfo,
    ThroughChoice,
    TokenInfo,
    TokenizeRequest,
    TokenizeResponse,
)

router = APIRouter(tags=["model"])


@router.get("/model")
def model_info(state: State) -> ModelInfo:
    """The served model's architecture and sizes, and the server's request limits."""
    cfg, tok = state.model.cfg, state.model.tokenizer
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
        adds_bos=tok is not None and tok.add_bos and tok.bos_id is not None,
        kinds=[kind_info(k, state.model) for k in kinds_of(state.model)],
        limits=state.settings.limits,
    )


def kind_info(kind: Kind, model: HookedDecoder) -> KindInfo:
    """The registry's description of ``kind`` for the web app."""
    cfg = model.cfg

    def choices(pairs: tuple[tuple[str | None, str], ...]) -> list[ThroughChoice]:
        return [ThroughChoice(through=t, label=label) for t, label in pairs]

    return KindInfo(
        name=kind.name,
        label=kind.label,
        value_label=kind.value_label,
        group=kind.group,
        group_label=kind.group_label or kind.group,
        pair_group=kind.pair_group,
        pair_group_label=(kind.pair_group_label or kind.pair_group) if kind.pair_group else None,
        layered=kind.layered,
        unit=kind.unit,
        size=kind.size(cfg) if kind.unit is not None else None,
        pairs=kind.pairs,
        through=choices(kind.trace.through) if kind.trace else [],
        pair_through=choices(kind.trace.pair_through) if kind.trace else [],
        weight_tokens=kind.write is not None and not kind.write_needs_prompt,
        prompt_tokens=kind.write is not None,
        collated=kind.collation is not None,
        dataset_mean=takes_dataset_mean(model, kind.name),
        pattern=kind.pair_view is not None,
        default=kind.default,
    )


@router.post("/tokenize")
def tokenize(req: TokenizeRequest, state: State) -> TokenizeResponse:
    """Token ids and their strings, as the model sees ``text`` (the live preview of the editors)."""

    tok = state.model.tokenizer
    if tok is None:
        raise InputError("this model has no tokenizer")
    ids = tok.encode(req.text, add_bos=req.add_bos)
    return TokenizeResponse(tokens=[TokenInfo(id=i, token=tok.token_str(i)) for i in ids])
