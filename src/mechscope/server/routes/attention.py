"""Attention patterns of a layer's heads, and the head detectors over every head."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

from mechscope.data.corpora import special_tokens
from mechscope.engine.attention import attention_patterns, detect_heads, pattern_kind, repeated_tokens
from mechscope.errors import InputError
from mechscope.server import limits
from mechscope.server.attention_schemas import AttentionRequest, AttentionView, Detection, DetectRequest
from mechscope.server.deps import State
from mechscope.server.errors import FieldError
from mechscope.server.routes.datasets import status

if TYPE_CHECKING:
    from mechscope.data.store import Dataset
    from mechscope.models.decoder import HookedDecoder
    from mechscope.server.settings import Limits

router = APIRouter(tags=["attention"])


def _start(model: HookedDecoder) -> int | None:
    """The token a random sequence starts with: the one every collated window starts with."""
    if model.tokenizer is None:
        return None
    try:
        return special_tokens(model.tokenizer)[0]
    except InputError:
        return model.tokenizer.bos_id


def _dataset(state: State) -> Dataset:
    ds = state.datasets.dataset()
    if ds is None:
        raise FieldError("source", f"no collated dataset yet ({status(state).status}); see GET /api/dataset")
    return ds


def _row_length(n: int, field: str, lim: Limits) -> None:
    if n > lim.max_prompt_tokens:
        raise FieldError(
            field, f"{field} gives {n} tokens; the limit is {lim.max_prompt_tokens} (max_prompt_tokens)"
        )


def _layer_head(model: HookedDecoder, layer: int, head: int | None) -> None:
    cfg, kind = model.cfg, pattern_kind(model)
    name = cfg.name or "the model"
    if layer >= cfg.n_layers:
        raise FieldError("layer", f"layer {layer} does not exist: {name} has layers 0..{cfg.n_layers - 1}")
    size = kind.size(cfg)
    if head is not None and head >= size:
        raise FieldError("head", f"head {head} does not exist: {name} has heads 0..{size - 1} per layer")


@router.post("/attention")
async def attention(req: AttentionRequest, state: State) -> AttentionView:
    """The attention pattern (query x key, causal) of one head, or of every head of the layer, on
    a prompt, a repeated random-token sequence or a dataset window, read from the model's pattern hook."""
    model, lim = state.model, state.settings.limits
    _layer_head(model, req.layer, req.head)
    if req.prompt is not None:
        limits.prompt_tokens(model, req.prompt, "prompt", lim)
        ids = model.to_tokens(req.prompt)[0][0].tolist()
    elif req.repeated is not None:
        _row_length(2 * req.repeated.length + 1, "repeated.length", lim)
        ids = repeated_tokens(model, req.repeated.length, 1, req.repeated.seed, _start(model))[0]
    else:
        assert req.window_id is not None
        ds = _dataset(state)
        window = ds.windows([req.window_id]).get(req.window_id)
        if window is None:
            n = int(ds.meta().get("n_windows", 0))
            raise FieldError(
                "window_id", f"window_id {req.window_id} is not in the dataset (windows 0..{n - 1})"
            )
        ids = window["token_ids"]
        _row_length(len(ids), "window_id", lim)

    def work() -> AttentionView:
        heads = None if req.head is None else [req.head]
        p = attention_patterns(model, [ids], req.layer, heads)
        if req.prompt is not None:
            text = req.prompt
        else:  # without the start token: the pages that open the text add their own
            tok = model.tokenizer
            text = tok.decode(ids, skip_special=True) if tok is not None else " ".join(map(str, ids))
        return AttentionView(**p.model_dump(), text=text)

    result, _ = await state.worker.run("attention:" + req.model_dump_json(), work)
    return result


@router.post("/heads/detect")
async def heads_detect(req: DetectRequest, state: State) -> Detection:
    """Every head's previous-token, duplicate-token, induction and attention-sink score (layers x
    heads, each in [0, 1]) on repeated random-token sequences, a prompt or dataset windows, from
    one batched forward."""
    model, lim = state.model, state.settings.limits
    window_id: int | None = None
    if req.source == "repeated":
        _row_length(2 * req.length + 1, "length", lim)
        limits.at_most(req.n * (2 * req.length + 1), lim.max_request_tokens, "n", "max_request_tokens")
        rows = repeated_tokens(model, req.length, req.n, req.seed, _start(model))
    elif req.source == "prompt":
        assert req.prompt is not None
        limits.prompt_tokens(model, req.prompt, "prompt", lim)
        rows = [model.to_tokens(req.prompt)[0][0].tolist()]
        if len(rows[0]) < 2:
            raise FieldError("prompt", "prompt has 1 token; head detection needs at least 2")
    else:
        ds = _dataset(state)
        per = int(ds.meta().get("window", 0))
        _row_length(per, "source", lim)
        limits.at_most(req.n * per, lim.max_request_tokens, "n", "max_request_tokens")
        found = ds.query("SELECT window_id, token_ids FROM windows ORDER BY window_id LIMIT ?", [req.n])
        if not found:
            raise FieldError("source", "the collated dataset has no windows yet")
        rows = [list(r["token_ids"]) for r in found]
        window_id = int(found[0]["window_id"])

    def work() -> Detection:
        d = detect_heads(model, rows, check=state.worker.check_stop)
        tokens = (
            model.tokenizer.token_strs(rows[0]) if model.tokenizer is not None else [str(i) for i in rows[0]]
        )
        return Detection(**d.model_dump(), tokens=tokens, window_id=window_id)

    key = f"heads-detect:{window_id}:" + req.model_dump_json()
    if req.source == "dataset":  # a preview's windows must not outlive the preview
        st = status(state)
        key = f"{st.status}:{st.preview_tokens}:" + key
    result, _ = await state.worker.run(key, work)
    return result
