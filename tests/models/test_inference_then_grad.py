"""Tables a forward caches on the model (rotary cos/sin) must serve a later forward that needs
gradients, even when the first ran under ``torch.inference_mode`` (generation, the server)."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff
from tests.conftest import tiny_model


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_attribution_after_an_inference_mode_forward(family: str) -> None:
    model = tiny_model(family)
    with torch.inference_mode():
        model(torch.tensor([[1, 2, 3, 4, 5]]))
        model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=3, stop_tokens=[])
    fresh = attribute(tiny_model(family), "the cat sat on", LogitDiff(targets=[" "], distractors=["a"]))
    after = attribute(model, "the cat sat on", LogitDiff(targets=[" "], distractors=["a"]))
    assert after.value == pytest.approx(fresh.value, abs=1e-6)
