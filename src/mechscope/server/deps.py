"""What every route depends on: the loaded model, its worker and the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from mechscope.server.datasets import DatasetSource
from mechscope.server.settings import Settings
from mechscope.server.worker import ModelWorker

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder


@dataclass
class ServerState:
    model: HookedDecoder
    worker: ModelWorker
    settings: Settings
    datasets: DatasetSource


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.mechscope
    return state


State = Annotated[ServerState, Depends(_state)]
