"""Logit lens and node token views."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.lens import logit_lens, node_tokens
from mechscope.engine.nodes import Node
from mechscope.errors import InputError
from tests.conftest import tiny_model


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_lens_final_row_is_the_model_output(family: str) -> None:
    model = tiny_model(family)
    lens = logit_lens(model, "hello", k=3)
    assert lens.layers == ["L0", "L1", "final"] and len(lens.top[0]) == 6
    probs = model.run("hello")[0].float().softmax(-1)
    top = probs.topk(3, dim=-1)
    for pos in range(6):
        assert [t.id for t in lens.top[-1][pos]] == top.indices[pos].tolist()
        assert lens.top[-1][pos][0].value == pytest.approx(float(top.values[pos, 0]), abs=1e-5)


def test_neuron_tokens_follow_its_write_and_its_input_weights() -> None:
    model = tiny_model("llama")
    node = Node(kind="mlp_neuron", layer=1, index=4, token=0)
    view = node_tokens(model, node, k=5)
    w = model.block(1).mlp.down_proj.weight[:, 4] * model.ln_final.gain()
    expected = (model.W_U @ w).topk(5).indices.tolist()
    assert [t.id for t in view.promoted] == expected
    assert view.promoted[0].value >= view.promoted[-1].value > view.suppressed[0].value
    assert view.drivers is not None and len(view.drivers) == 5
    # The top driver really is the token whose embedding, alone, excites the neuron most.
    best = view.drivers[0].id
    _, cache = model.run_with_cache(torch.tensor([[best]]), names="blocks.1.mlp.pre")
    del cache  # (the direct path excludes attention and layer 0: checked against the norm itself)
    emb = model.embed_tokens.weight
    pre = model.block(1).ln2(emb) @ model.block(1).mlp.gate_proj.weight[4]
    assert int(pre.argmax()) == best


def test_head_tokens_need_a_prompt() -> None:
    model = tiny_model("llama")
    node = Node(kind="attn_head", layer=0, index=1, token=3, key=1)
    assert len(node_tokens(model, node, "hello", k=3).promoted) == 3
    with pytest.raises(InputError, match="give one"):
        node_tokens(model, node)
    with pytest.raises(InputError, match="k must be"):
        logit_lens(model, "hi", k=0)
