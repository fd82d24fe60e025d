"""One debugger pass on a short prompt when the server starts, so that the first request does not
pay for one-off work: MKL's packed weights for short prompts' matmuls where they are used
(:mod:`mechscope.models.packed_weights`; not where :mod:`mechscope.models.few_rows` splits them),
the weight views' caches and torch's first calls.

On SmolLM2 (2 cores) the first Debugger request on the IOI prompt took 0.65 s in a fresh process
and 0.17 s after this pass (0.74 s, run on the model thread before any request; a request that
comes earlier waits for it, as it would have paid the same).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

TOKENS = 16  # a short prompt: its matmuls split over threads or run on packed weights

log = logging.getLogger(__name__)


def warm_up(model: HookedDecoder) -> None:
    """A debugger pass (attribution and node table) on ``TOKENS`` arbitrary token ids. Never
    raises: a failure is logged, and the first request pays for what was not done."""
    ids = [i % model.cfg.d_vocab for i in range(1, TOKENS + 1)]
    try:
        attribute(model, ids, LogitDiff(targets=[[ids[-1]]], distractors=[[ids[-2]]])).summary(k=10)
    except Exception:  # a warm-up must not take the server down
        log.warning("the warm-up pass failed; the first request will pay for it", exc_info=True)
