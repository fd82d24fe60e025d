"""The recorder's one-pass forward and backward (engine/recorder.py) against the model's own hooks."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.directions import Direction, LogitDiff, ResidualDirection, compile_direction
from mechscope.engine.objective import Objective
from mechscope.engine.recorder import _block_of, record
from mechscope.models.decoder import HookedDecoder
from mechscope.models.hooks import HookPoint
from tests.conftest import tiny_model


def points(model: HookedDecoder) -> list[str]:
    per_layer = ("resid_pre", "resid_mid", "resid_post", "mlp.post", "attn.z", "ln1.scale")
    names = [f"blocks.{i}.{p}" for i in range(model.cfg.n_layers) for p in per_layer]
    return ["embed", *(["pos_embed"] if model.cfg.positional == "learned" else []), *names]


def hooked_gradients(model: HookedDecoder, objective: Objective, names: list[str]) -> dict[str, torch.Tensor]:
    """Row 0's gradients at ``names`` through backward hooks and ``backward()`` on a full forward."""
    grads: dict[str, torch.Tensor] = {}
    read: dict[str, torch.Tensor] = {}

    def keep_grad(g: torch.Tensor, hp: HookPoint) -> None:
        grads[hp.name] = g[0]

    def keep_read(x: torch.Tensor, hp: HookPoint) -> None:
        read[hp.name] = x

    fwd = [*objective.fwd_hooks, *((name, keep_read) for name in objective.read)]
    with torch.enable_grad(), model.hooks(fwd=fwd, bwd=[(name, keep_grad) for name in names]):
        model(objective.rows)
        objective.value(read).backward()
    return grads


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3"])
@pytest.mark.parametrize("where", ["logits", "layer 0"])
def test_recorded_gradients_equal_backward_hooks(family: str, where: str) -> None:
    model = tiny_model(family)
    prompt = [1, *range(5, 15)]
    direction: Direction
    if where == "logits":
        direction = LogitDiff(targets=[[7]], distractors=[[9]])
    else:  # stops the forward after layer 0: later points get no gradient
        direction = ResidualDirection(vector=torch.randn(model.cfg.d_model).tolist(), layer=0)
    objective = compile_direction(model, prompt, direction)
    names = points(model)
    rec = record(model, objective, ["blocks.0.mlp.post"], names)
    expected = hooked_gradients(model, objective, names)
    if objective.stop is not None:  # the recorder's forward ends there; the reference's does not
        expected = {k: v for k, v in expected.items() if _block_of(k) <= _block_of(objective.stop)}
    assert rec.grads.keys() == expected.keys() and len(rec.grads) > 4
    for name, g in expected.items():
        torch.testing.assert_close(rec.grads[name], g, rtol=1e-6, atol=1e-7, msg=name)
    assert rec.acts["blocks.0.mlp.post"].shape == (len(prompt), model.cfg.d_mlp)
    assert model._has_backward_hooks() is False  # nothing left attached
