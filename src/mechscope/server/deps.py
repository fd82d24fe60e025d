"""What every route depends on: the loaded model, its worker and the settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from mechscope.server.datasets import DatasetSource
from mechscope.server.settings import Settings
from mechscope.server.worker import ModelWorker, RequestJobs

if TYPE_CHECKING:
    from mechscope.explain.llm import LLM
    from mechscope.models.decoder import HookedDecoder


def served_llm(model: HookedDecoder) -> LLM:
    """The served model as the local LLM backend (scoring an explanation on a node page)."""
    from mechscope.errors import InputError

    try:
        from mechscope.explain.llm_local import LocalLLM  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        raise InputError(f"the local LLM backend is not available in this install ({e})") from None
    llm: LLM = LocalLLM(model)
    return llm


@dataclass
class ServerState:
    model: HookedDecoder
    worker: ModelWorker | RequestJobs  # the app holds the ModelWorker; a route sees its RequestJobs
    settings: Settings
    datasets: DatasetSource
    llm: Callable[[HookedDecoder], LLM] = served_llm  # what simulates explanations; tests swap it
    warm_up: asyncio.Future[Any] | None = None  # the start's warm-up pass (Settings.warm_up)


def _state(request: Request) -> ServerState:
    """The app's state, with the worker seen through this request: its jobs count against its
    client's fair share and stop when it disconnects."""
    state: ServerState = request.app.state.mechscope
    worker = state.worker.worker if isinstance(state.worker, RequestJobs) else state.worker
    client = request.client.host if request.client else ""
    return replace(state, worker=RequestJobs(worker, client, request.is_disconnected))


State = Annotated[ServerState, Depends(_state)]
