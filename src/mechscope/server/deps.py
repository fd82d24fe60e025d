"""What every route depends on: the loaded model, its worker and the settings."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from mechscope.server.datasets import DatasetSource
from mechscope.server.settings import Settings
from mechscope.server.worker import ModelWorker, RequestJobs

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder


@dataclass
class ServerState:
    model: HookedDecoder
    worker: ModelWorker | RequestJobs  # the app holds the ModelWorker; a route sees its RequestJobs
    settings: Settings
    datasets: DatasetSource


def _state(request: Request) -> ServerState:
    """The app's state, with the worker seen through this request: its jobs count against its
    client's fair share and stop when it disconnects."""
    state: ServerState = request.app.state.mechscope
    worker = state.worker.worker if isinstance(state.worker, RequestJobs) else state.worker
    client = request.client.host if request.client else ""
    return replace(state, worker=RequestJobs(worker, client, request.is_disconnected))


State = Annotated[ServerState, Depends(_state)]
