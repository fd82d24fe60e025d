"""The lens grid: the residual stream and each layer's attention and MLP writes, read out."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.lens import lens_grid, logit_lens
from mechscope.errors import InputError
from tests.conftest import tiny_model

PROMPT = "hello there"


def direct_logits(model, write: torch.Tensor, final: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """A write's direct logits computed by hand: the final norm's maths with its scale taken from the
    final residual, no bias, the unembedding and the model's soft cap."""
    cfg = model.cfg
    if cfg.norm == "layernorm":
        write, final = write - write.mean(-1, keepdim=True), final - final.mean(-1, keepdim=True)
    scale = (final.pow(2).mean(-1, keepdim=True) + cfg.norm_eps).sqrt()
    gain = model.ln_final.weight + cfg.norm_weight_offset
    logits = (write / scale * gain) @ model.W_U.T
    if cfg.final_softcap:
        logits = torch.tanh(logits / cfg.final_softcap) * cfg.final_softcap
    return logits


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3"])
@pytest.mark.parametrize("stream", ["attn", "mlp"])
def test_write_lens_equals_an_independent_computation(family: str, stream: str) -> None:
    model = tiny_model(family)
    n = model.cfg.n_layers
    names = [f"blocks.{i}.{stream}_out" for i in range(n)] + [f"blocks.{n - 1}.resid_post"]
    _, cache = model.run_with_cache(PROMPT, names=names)
    final = cache[names[-1]][0]
    grid = lens_grid(model, PROMPT, stream, k=4, target="e")  # type: ignore[arg-type]
    assert grid.layers == [f"L{i}" for i in range(n)] and len(grid.tokens) == 12
    e = model.tokenizer.single_token("e")  # type: ignore[union-attr]
    for layer in range(n):
        probs = direct_logits(model, cache[names[layer]][0], final).softmax(-1)  # (pos, vocab)
        top = probs.topk(4, dim=-1)
        for pos in range(12):
            cell = grid.top[layer][pos]
            assert [t.id for t in cell] == top.indices[pos].tolist()
            torch.testing.assert_close(
                torch.tensor([t.value for t in cell]), top.values[pos], atol=1e-5, rtol=1e-4
            )
        assert grid.target is not None and grid.target.id == e
        torch.testing.assert_close(torch.tensor(grid.target.probs[layer]), probs[:, e], atol=1e-5, rtol=1e-4)
        assert grid.target.ranks[layer] == (probs > probs[:, e : e + 1]).sum(-1).tolist()


def test_resid_lens_matches_the_logit_lens_and_the_model_output() -> None:
    model = tiny_model("gemma3")
    grid = lens_grid(model, PROMPT, "resid", k=3, target=5)
    assert grid.layers == ["L0", "L1", "final"]
    assert grid.top == logit_lens(model, PROMPT, k=3).top
    probs = model.run(PROMPT)[0].float().softmax(-1)
    assert [c[0].id for c in grid.top[-1]] == probs.argmax(-1).tolist()
    assert grid.target is not None
    torch.testing.assert_close(torch.tensor(grid.target.probs[-1]), probs[:, 5], atol=1e-5, rtol=1e-4)
    assert grid.target.ranks[-1] == (probs > probs[:, 5:6]).sum(-1).tolist()


def test_lens_grid_errors() -> None:
    model = tiny_model("llama")
    with pytest.raises(InputError, match="stream must be one of"):
        lens_grid(model, PROMPT, "resid_post")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="target: 'ab' is 2 tokens"):
        lens_grid(model, PROMPT, target="ab")
    with pytest.raises(InputError, match="target: token id 999 out of range"):
        lens_grid(model, PROMPT, target=999)
    with pytest.raises(InputError, match="k must be"):
        lens_grid(model, PROMPT, k=101)
