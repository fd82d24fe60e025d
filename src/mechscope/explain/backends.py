"""One call from a ``--backend`` string to an :class:`~mechscope.explain.llm.LLM`, for the CLI and
the server: ``"local"`` (a model mechscope loads, default SmolLM2) or the base URL of an
OpenAI-compatible endpoint (``http://localhost:8000/v1``). The baseline explainer needs no LLM
and is not a backend here. The implementations are imported only when asked for, so that the
explain package loads without the HTTP extra."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from mechscope.errors import InputError
from mechscope.explain.llm import LLM, LLMError
from mechscope.explain.llm_cache import LLMCache

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

T = TypeVar("T")
R = TypeVar("R")


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def make_llm(
    backend: str,
    *,
    model: str | None = None,
    local_model: str | None = None,
    decoder: HookedDecoder | None = None,
    cache: str | Path | None = None,
    use_cache: bool = True,
    **http_options: Any,
) -> LLM:
    """The backend named by ``backend``.

    - ``"local"``: ``decoder`` when given (a model already loaded), else ``load_model(local_model)``
      (None: the shipped SmolLM2-135M-Instruct; a name such as ``gemma3-270m``, a GGUF or a folder).
    - a URL: an :class:`~mechscope.explain.llm_http.OpenAICompatible` endpoint serving ``model``
      (required); ``http_options`` go to it (``timeout``, ``max_retries``, ``concurrency``,
      ``api_key_env``, ...).

    Answers are cached in ``cache`` (default ``$MECHSCOPE_HOME/llm-cache/llm-cache.sqlite``)
    unless ``use_cache`` is False.
    """
    store = LLMCache(cache) if use_cache else None
    if backend == "local":
        if http_options or model is not None:
            raise InputError("the local backend takes --local-model, not an endpoint's model or HTTP options")
        from mechscope.explain.llm_local import LocalLLM

        if decoder is None:
            from mechscope.models.loading import load_model

            decoder = load_model(local_model)
        return LocalLLM(decoder, cache=store)
    if is_url(backend):
        if not model:
            raise InputError(f"backend {backend} needs the model's name as the endpoint knows it (--model)")
        from mechscope.explain.llm_http import OpenAICompatible

        return OpenAICompatible(backend, model, cache=store, **http_options)
    raise InputError(
        f"backend must be 'local' or an endpoint's base URL (http://... or https://...), got {backend!r}"
    )


def default_embedder() -> Callable[[list[str]], np.ndarray] | None:
    """The sentence embedder of the embedding score and of search (all-MiniLM-L6-v2, loaded on its
    first call), or None when its package is not installed."""
    from mechscope.explain.embedding import embed
    from mechscope.models.loading.assets import minilm_installed

    return embed if minilm_installed() else None


def map_calls(llm: LLM, fn: Callable[[T], R], items: Iterable[T]) -> list[R | LLMError]:
    """``fn(item)`` for every item, as concurrently as the backend allows (an endpoint: its
    ``concurrency`` threads; the local model: one at a time), in input order. A call that raised
    :class:`LLMError` gives that error in its place, so one failure does not stop a batch."""
    mapper = getattr(llm, "map", None)
    if mapper is not None:
        result: list[R | LLMError] = mapper(fn, items)
        return result
    out: list[R | LLMError] = []
    for item in items:
        try:
            out.append(fn(item))
        except LLMError as e:
            out.append(e)
    return out
