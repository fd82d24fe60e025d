"""The coder spliced into a model: outputs unchanged with the error term, a latent's ablation is
the removal of its decoder contribution, gradients upstream are the clean model's."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.kinds.latent import attach, detach
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries import DictionaryConfig
from mechscope.models.hooks import HookPoint
from tests.conftest import tiny_model
from tests.models.dictionaries._helpers import random_coder

TOKENS = torch.tensor([[1, 5, 7, 2, 9, 11, 4], [1, 8, 8, 3, 6, 10, 12]])
POINTS = [
    "blocks.0.resid_post",
    "blocks.1.mlp.post",
    "blocks.0.attn.z",
    "blocks.1.attn_out",
    "blocks.1.resid_pre",
]


@pytest.mark.parametrize("activation", ["topk", "batchtopk", "jumprelu", "relu"])
@pytest.mark.parametrize("point", POINTS)
def test_splicing_keeps_logits(model: HookedDecoder, point: str, activation: str) -> None:
    clean = model(TOKENS)
    name = attach(model, random_coder(model, point, activation=activation))
    try:
        logits, cache = model.run_with_cache(TOKENS, names=f"{point}.{name}.*")
        torch.testing.assert_close(logits, clean, atol=1e-5, rtol=1e-5)
        acts = cache[f"{point}.{name}.acts"]
        assert acts.shape == (2, 7, 64) and (acts != 0).any()
        if activation == "topk":
            assert int((acts != 0).sum(-1).max()) <= 4
    finally:
        detach(model, name)
    torch.testing.assert_close(model(TOKENS), clean)


def test_ablating_a_latent_removes_its_decoder_contribution() -> None:
    model = tiny_model("llama")
    point, pos = "blocks.0.resid_post", 3
    coder = random_coder(model, point)
    with torch.no_grad():
        acts = coder.encode(model.run_with_cache(TOKENS, names=[point])[1][point])
    latent = int(acts[0, pos].argmax())  # a latent active there
    a = acts[..., latent]
    contribution = a[:, pos, None] * coder.W_dec[latent] * coder.scale_out  # (batch, d_model)

    def by_hand(x: torch.Tensor, _hp: object) -> torch.Tensor:
        x = x.clone()
        x[:, pos] -= contribution
        return x

    with torch.no_grad():
        expected = model.run_with_hooks(TOKENS, fwd=[(point, by_hand)])
        name = attach(model, coder)

        def zero(x: torch.Tensor, _hp: object) -> torch.Tensor:
            x = x.clone()
            x[:, pos, latent] = 0
            return x

        got = model.run_with_hooks(TOKENS, fwd=[(f"{point}.{name}.acts", zero)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, model(TOKENS), atol=1e-4)  # the latent mattered


def test_gradients_upstream_are_the_clean_models() -> None:
    """The error path carries the clean gradient to the input; the gradient at ``acts`` is the
    reconstruction's alone (W_dec g), not cancelled by the error path."""
    model = tiny_model("gpt2")
    point = "blocks.0.resid_post"
    got: dict[str, torch.Tensor] = {}

    def keep(g: torch.Tensor, hp: HookPoint) -> None:
        got[hp.name] = g.clone()

    def run(*names: str) -> None:
        with torch.enable_grad(), model.hooks(bwd=[(n, keep) for n in names]):
            model(TOKENS)[:, -1, 3].sum().backward()

    run("embed")
    clean = got.pop("embed")
    name = attach(model, random_coder(model, point))
    try:
        run("embed", point, f"{point}.{name}.acts")
    finally:
        detach(model, name)
    torch.testing.assert_close(got["embed"], clean, atol=1e-5, rtol=1e-5)
    g_acts = got[f"{point}.{name}.acts"]
    coder = random_coder(model, point)
    expected = got[point] @ (coder.W_dec * coder.scale_out).T  # the gradient at the SAE's output
    torch.testing.assert_close(g_acts, expected, atol=1e-5, rtol=1e-5)


def test_attach_errors_name_the_problem() -> None:
    model = tiny_model("llama")
    coder = random_coder(model, "blocks.0.resid_post")
    with pytest.raises(InputError, match="lower-case identifier"):
        attach(model, coder, "Sae")
    with pytest.raises(InputError, match="a node kind named 'mlp_neuron' exists already"):
        attach(model, coder, "mlp_neuron")
    wrong = random_coder(model, "blocks.0.mlp.post")
    object.__setattr__(wrong.cfg, "hook", "blocks.0.resid_post")
    with pytest.raises(InputError, match="has width 32 in this model, the dictionary d_in=48"):
        attach(model, wrong)
    with pytest.raises(InputError, match="no linear map to the residual stream"):
        random_coder(model, "blocks.0.attn.q")
    with pytest.raises(InputError, match="no dictionary attached as 'x'"):
        detach(model, "x")
    with pytest.raises(InputError, match=r"k must be in 1\.\.n_latents"):
        DictionaryConfig(d_in=8, n_latents=4, hook="blocks.0.resid_post", k=9)


def test_the_start_token_is_not_encoded_even_through_a_kv_cache() -> None:
    """Training never sees position 0, so a spliced dictionary leaves it to its error term: no
    latent fires there (outputs unchanged), also when left padding moves the start token or a KV
    cache feeds one token at a time; a steering edit there still decodes."""
    from mechscope.models.components import KVCache

    model = tiny_model("llama")
    point = "blocks.0.resid_post"
    name = attach(model, random_coder(model, point, activation="relu"))
    acts_point = f"{point}.{name}.acts"
    try:
        clean_logits, cache = model.run_with_cache(TOKENS, names=acts_point)
        acts = cache[acts_point]
        assert acts[:, 0].abs().sum() == 0 and (acts[:, 1:] != 0).any()
        # One token at a time through a KV cache: position 1 onwards fires, position 0 does not.
        kv = KVCache(model.cfg, 2, TOKENS.shape[1], torch.float32, torch.device("cpu"))
        steps: list[torch.Tensor] = []
        with model.hooks([(acts_point, lambda a, _h: steps.append(a.clone()))]):
            for t in range(TOKENS.shape[1]):
                model(TOKENS[:, t : t + 1], cache=kv)
        torch.testing.assert_close(torch.cat(steps, 1), acts, atol=1e-5, rtol=1e-5)
        # Left padding: the start token sits at index 2 but is still position 0.
        padded = torch.cat([torch.zeros(2, 2, dtype=torch.long), TOKENS], 1)
        mask = torch.cat([torch.zeros(2, 2), torch.ones_like(TOKENS)], 1)
        got: list[torch.Tensor] = []
        with model.hooks([(acts_point, lambda a, _h: got.append(a.clone()))]):
            model(padded, attention_mask=mask)
        assert got[0][:, 2].abs().sum() == 0
        # An edit at position 0 still reaches the output.
        with model.hooks([(acts_point, lambda a, _h: a.index_fill(-1, torch.tensor([3]), 5.0))]):
            steered = model(TOKENS)
        assert not torch.allclose(steered[:, 0], clean_logits[:, 0])
    finally:
        detach(model, name)
