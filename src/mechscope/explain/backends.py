"""Building the LLM backends the CLI names: ``local`` (in process, on a model mechscope loads) or
an OpenAI-compatible endpoint's URL. The implementations live in their own modules, imported
here only when asked for, so that the explain package loads without them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.explain.llm import LLM
    from mechscope.explain.scoring import Embedder


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def make_llm(spec: str, *, model: str | None = None, local_model: str | None = None) -> LLM:
    """``spec`` "local": the ``local_model`` (a .gguf, a checkpoint folder or a name; default
    SmolLM2) run in process; a URL: that OpenAI-compatible endpoint serving ``model``."""
    if spec == "local":
        try:
            from mechscope.explain.llm_local import LocalLLM
        except ImportError as e:
            raise InputError(f"the local LLM backend is not available in this install ({e})") from None
        from mechscope.models.loading import load_model

        return LocalLLM(load_model(local_model))
    if is_url(spec):
        if not model:
            raise InputError(f"--model NAME is needed with an endpoint ({spec}): the model it serves")
        try:
            from mechscope.explain.llm_http import OpenAICompatible
        except ImportError as e:
            raise InputError(f"the HTTP LLM backend is not available in this install ({e})") from None
        return OpenAICompatible(spec, model)
    raise InputError(f"backend {spec!r} is not one of: local, baseline, an http(s):// endpoint URL")


def default_embedder() -> Embedder | None:
    """The sentence embedder of the embedding score, or None when it is not installed."""
    try:
        from mechscope.explain.embedding import embed
    except ImportError:
        return None
    return embed
