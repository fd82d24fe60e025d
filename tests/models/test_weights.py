"""LayerStack's down and head readouts keep the products of the last few residual directions
through every down and output matrix: a kept answer must equal the products computed afresh,
and a direction that merely resembles a kept one must not be answered from it."""

from __future__ import annotations

import torch

from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff
from mechscope.models.decoder import HookedDecoder
from mechscope.models.weights import layer_stack
from tests.conftest import tiny_model


def products(model: HookedDecoder, g: torch.Tensor, layers: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``g @ W_down`` and ``g @ W_O`` per head, from the modules' own weights (llama: no post-norms)."""
    down = torch.stack([g @ model.block(i).mlp.down_proj.weight for i in layers])
    heads = torch.stack([torch.einsum("rd,dhe->rhe", g, model.block(i).attn.w_o_heads()) for i in layers])
    return down, heads


def check(model: HookedDecoder, g: torch.Tensor, layers: list[int]) -> None:
    stack = layer_stack(model)
    down, heads = products(model, g, layers)
    torch.testing.assert_close(stack.down_readout(g, layers), down, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stack.head_readout(g, layers), heads, rtol=1e-5, atol=1e-6)


def test_a_kept_direction_answers_its_multiples() -> None:
    model = tiny_model("llama")
    stack = layer_stack(model)
    v = torch.randn(1, model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    check(model, v, [0, 1])
    assert len(stack._readouts) == 1
    for scale in (3.7, -0.25):  # the same direction, another prompt's scalar (either sign)
        check(model, v * scale, [1])
    assert len(stack._readouts) == 2  # -v is a direction of its own; 3.7 v reused v's products


def test_a_nearby_direction_is_computed_afresh() -> None:
    model = tiny_model("llama")
    stack = layer_stack(model)
    v = torch.randn(1, model.cfg.d_model, generator=torch.Generator().manual_seed(1))
    check(model, v, [0, 1])
    near = v.clone()
    near[0, 5] *= 1 + 1e-4  # one component off by 1e-4: products differ by more than rounding
    check(model, near, [0, 1])
    assert len(stack._readouts) == 2


def test_several_rows_and_zero_rows_are_computed_directly() -> None:
    model = tiny_model("llama")
    g = torch.randn(3, model.cfg.d_model, generator=torch.Generator().manual_seed(2))
    check(model, g, [1, 0])
    check(model, torch.zeros(1, model.cfg.d_model), [0, 1])
    assert layer_stack(model)._readouts == []


def test_an_edited_weight_drops_the_kept_products() -> None:
    model = tiny_model("llama")
    v = torch.randn(1, model.cfg.d_model, generator=torch.Generator().manual_seed(3))
    check(model, v, [0, 1])
    with torch.no_grad():
        model.block(1).mlp.down_proj.weight.mul_(2.0)
        model.block(0).attn.o_proj.weight.add_(0.5)
    check(model, 2 * v, [0, 1])


def test_attributions_of_one_logit_difference_share_the_products() -> None:
    model = tiny_model("llama")
    direction = LogitDiff(targets=[" "], distractors=["a"])
    first = attribute(model, "the cat sat on the mat", direction)
    stack = layer_stack(model)
    assert len(stack._readouts) == 1
    second = attribute(model, "a dog ran to the cat", direction)  # another prompt, same direction
    assert len(stack._readouts) == 1
    stack._readouts.clear()
    fresh = attribute(model, "a dog ran to the cat", direction)
    for kind in ("mlp_neuron", "attn_head"):
        torch.testing.assert_close(
            second.metrics[kind].direct_effect, fresh.metrics[kind].direct_effect, rtol=1e-5, atol=1e-6
        )
    assert first.value != second.value
