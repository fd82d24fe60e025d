"""The prompt explorer's grid: every layer's units at every position, equal to each layer read on
its own, and its 8-bit packing."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.kinds.latent import attach
from mechscope.engine.lens import layer_activations
from mechscope.engine.prompt import prompt_ids
from mechscope.engine.unit_grid import (
    decode_codes,
    dequantize,
    encode_codes,
    grid_size,
    quantize,
    unit_grid,
)
from mechscope.errors import InputError
from tests.conftest import tiny_model
from tests.engine.test_graphs import transcoder

PROMPT = "The cat sat on"


@pytest.mark.parametrize("family", ["llama", "gemma3"])
@pytest.mark.parametrize("kind", ["mlp_neuron", "attn_head"])
def test_grid_equals_each_layer_read_alone(family: str, kind: str) -> None:
    model = tiny_model(family)
    grid = unit_grid(model, PROMPT, kind)
    ids = prompt_ids(model, PROMPT)
    assert grid.ids == ids and grid.layers == list(range(model.cfg.n_layers))
    assert grid.values.shape[:2] == (model.cfg.n_layers, len(ids))
    assert grid_size(model, kind, len(ids)) == grid.values.numel()
    for layer in grid.layers:
        alone = layer_activations(model, kind, layer, [ids])[0]
        torch.testing.assert_close(grid.values[layer], alone)


def test_a_kind_without_layers_is_one_row() -> None:
    model = tiny_model("llama")
    name = attach(model, transcoder(model, 1, "transcoder"), "tc1")
    grid = unit_grid(model, PROMPT, name)
    assert grid.layers == [None] and grid.values.shape == (1, len(grid.ids), 40)
    torch.testing.assert_close(grid.values[0], layer_activations(model, name, None, [grid.ids])[0])


def test_kinds_without_units_and_unknown_kinds_are_refused() -> None:
    model = tiny_model("llama")
    with pytest.raises(InputError, match=r"no units.*mlp_neuron"):
        unit_grid(model, PROMPT, "attn_out")
    with pytest.raises(InputError, match="kind"):
        unit_grid(model, PROMPT, "nope")


def test_packing_round_trip_is_within_half_a_step() -> None:
    model = tiny_model("llama")
    values = unit_grid(model, PROMPT, "mlp_neuron").values
    values[0, 1] = 0.0  # an all-zero row: scale 0, decoded exactly
    scales, codes = quantize(values)
    assert codes.dtype == torch.int8 and scales.shape == values.shape[:2]
    assert int(codes.abs().max()) == 127 and float(scales[0, 1]) == 0.0
    back = dequantize(scales, decode_codes(encode_codes(codes), tuple(codes.shape)))
    err = (back - values).abs()
    assert bool((err <= scales.unsqueeze(-1) / 2 + 1e-7).all())
    assert float(err.max()) > 0  # it is lossy: the bound is what is tested, not equality
    # every (layer, position)'s largest value comes back exactly (it is the scale's 127 steps)
    peak = values.abs().argmax(-1, keepdim=True)
    torch.testing.assert_close(back.gather(-1, peak), values.gather(-1, peak))


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(InputError, match="non-finite"):
        quantize(torch.tensor([[1.0, float("nan")]]))
