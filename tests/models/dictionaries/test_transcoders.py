"""Transcoders and skip-transcoders: trained on (MLP input, MLP output) pairs from one forward,
attached at the MLP's output with the error term kept, evaluated against the MLP output, and
resumed after a stop like SAEs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff
from mechscope.engine.kinds import get_kind
from mechscope.engine.kinds.latent import attach, detach, residual_rows
from mechscope.engine.lens import node_tokens
from mechscope.engine.nodes import Node
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries import DictionaryConfig, SparseCoder, init_random
from mechscope.models.dictionaries.eval import evaluate
from mechscope.models.dictionaries.points import mlp_points
from mechscope.models.dictionaries.source import capture
from mechscope.models.dictionaries.training import TrainConfig, new_trainee, train
from mechscope.models.hooks import HookPoint
from tests.conftest import tiny_model
from tests.models.dictionaries._helpers import random_coder
from tests.models.dictionaries.test_training import BASE, _windows

MLP = "blocks.1.mlp"
IN, OUT = "blocks.1.ln2.out", "blocks.1.mlp_out"
TC = dataclasses.replace(BASE, hooks=(MLP,), kind="transcoder")


def random_transcoder(
    model: HookedDecoder, kind: str = "skip_transcoder", activation: str = "topk"
) -> SparseCoder:
    d = model.cfg.d_model
    cfg = DictionaryConfig(d_in=d, n_latents=48, hook=IN, out_hook=OUT, d_out=d, kind=kind,
                           activation=activation, k=6, apply_b_dec_to_input=False)  # fmt: skip
    c = init_random(SparseCoder(cfg), 3)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        c.b_enc.copy_(torch.randn(48, generator=g) * 0.1)
        c.b_dec.copy_(torch.randn(d, generator=g) * 0.1)
        c.threshold.copy_(torch.rand(48, generator=g) * 0.1)
        if c.W_skip is not None:
            c.W_skip.copy_(torch.randn(d, d, generator=g) * 0.05)
        c.scale_in.fill_(1.3)
        c.scale_out.fill_(0.6)
    return c.eval()


def by_hand(c: SparseCoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The transcoder's latents and output, written out from the parameters (TopK through a ReLU)."""
    c = c.requires_grad_(False)
    xn = x.float() / c.scale_in
    pre = xn @ c.W_enc + c.b_enc
    vals, idx = pre.topk(c.cfg.k or 1, dim=-1)
    a = torch.zeros_like(pre).scatter(-1, idx, vals.relu())
    skip = xn @ c.W_skip if c.W_skip is not None else 0
    return a, (a @ c.W_dec + c.b_dec + skip) * c.scale_out


def test_the_mlp_spelling_names_its_input_and_output() -> None:
    assert mlp_points("blocks.3.mlp") == ("blocks.3.ln2.out", "blocks.3.mlp_out")
    for bad in ("blocks.3.mlp_out", "blocks.x.mlp", "blocks.3.resid_post"):
        with pytest.raises(InputError, match=r"e\.g\. blocks\.3\.mlp"):
            TrainConfig(hooks=(bad,), n_latents=8, k=2, kind="transcoder")


def test_one_forward_captures_aligned_input_and_target() -> None:
    model = tiny_model("gemma3")  # sandwich norms: mlp_out is after the post-norm
    w = _windows(6)
    rows, sinks = capture(model, w, {MLP: (IN, OUT)}, 1.0)
    _, cache = model.run_with_cache(w, names=[IN, OUT])
    x, y = cache[IN][:, 1:].reshape(-1, 32), cache[OUT][:, 1:].reshape(-1, 32)
    keep = torch.ones(len(x), dtype=torch.bool)
    for v in (x, y):  # a token is a sink if it is one at either point
        keep &= v.norm(dim=-1) <= v.norm(dim=-1).median()
    assert sinks[MLP] == int((~keep).sum()) > len(x) // 2  # more than either point's half alone
    torch.testing.assert_close(rows[MLP], torch.cat([x[keep], y[keep]], -1))


@pytest.mark.parametrize("kind", ["transcoder", "skip_transcoder"])
def test_training_predicts_the_mlp_output(kind: str) -> None:
    model = tiny_model("llama")
    seen: list[dict[str, dict[str, float]]] = []
    cfg = dataclasses.replace(TC, kind=kind, tokens=4000)
    c = train(model, _windows(300), cfg, progress=lambda _c, m, _s: seen.append(m))[MLP]
    assert (c.cfg.kind, c.cfg.hook, c.cfg.out_hook, c.cfg.apply_b_dec_to_input) == (kind, IN, OUT, False)
    assert seen[-1][MLP]["fvu"] < 0.8 * seen[0][MLP]["fvu"]
    assert (c.W_skip is not None) == (kind == "skip_transcoder")
    if c.W_skip is not None:
        assert float(c.W_skip.detach().abs().max()) > 0  # learnt from its zero start
    ev = evaluate(model, c, _windows(20, seed=5))
    assert ev.hook == OUT and 0 < ev.explained_variance < 1 and ev.l0 == pytest.approx(4)


def test_skip_transcoder_starts_with_a_zero_skip_term_and_its_own_scales() -> None:
    g = torch.Generator().manual_seed(0)
    sample = torch.cat([torch.randn(200, 32, generator=g) * 3, torch.randn(200, 32, generator=g) + 5], -1)
    t = new_trainee(dataclasses.replace(TC, kind="skip_transcoder"), MLP, 32, sample, "tiny", 32)
    c = t.coder
    assert c.W_skip is not None and float(c.W_skip.detach().abs().max()) == 0
    assert float(c.scale_in) == pytest.approx(float(sample[:, :32].norm(dim=-1).mean()) / 32**0.5)
    assert float(c.scale_out) == pytest.approx(float(sample[:, 32:].norm(dim=-1).mean()) / 32**0.5)
    assert (
        float((c.b_dec * c.scale_out - 5).detach().abs().max()) < 0.5
    )  # the target's median, not the input's


def test_resume_after_a_stop_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    model = tiny_model("llama")
    cfg = dataclasses.replace(TC, kind="skip_transcoder", hooks=(MLP, "blocks.0.mlp"))
    windows = _windows()
    full = train(model, windows, cfg)
    stopped = train(model, windows, cfg, out=tmp_path, stop_after_chunks=2)
    assert stopped[MLP].training_stats["tokens"] < cfg.tokens
    resumed = train(model, windows, cfg, out=tmp_path)
    for h in cfg.hooks:
        for name, p in full[h].state_dict().items():
            assert torch.equal(p, resumed[h].state_dict()[name]), (h, name)


def test_splicing_keeps_the_logits_and_ablating_a_latent_removes_its_write(model: HookedDecoder) -> None:
    coder = random_transcoder(model)
    w = _windows(3)
    clean, cache = model.run_with_cache(w, names=[IN, OUT])
    name = attach(model, coder)
    assert name == "skip_transcoder_l1_mlp_out"
    torch.testing.assert_close(model(w), clean, atol=1e-5, rtol=0)
    a, _ = by_hand(coder, cache[IN])  # the latents, from an independent evaluation
    a[:, 0] = 0  # the start token is left to the error term (never trained on)
    acts_point = f"{OUT}.{name}.acts"
    _, spliced = model.run_with_cache(w, names=[acts_point])
    torch.testing.assert_close(spliced[acts_point], a, atol=1e-5, rtol=1e-5)
    i = int(a[0, 2].argmax())  # a latent active at token 2

    def zero(x: torch.Tensor, _hp: HookPoint) -> torch.Tensor:
        x = x.clone()
        x[..., i] = 0
        return x

    ablated = model.run_with_hooks(w, fwd=[(acts_point, zero)])
    detach(model, name)
    row = coder.decoder_rows()[i]

    def remove(y: torch.Tensor, _hp: HookPoint) -> torch.Tensor:
        return y - a[..., i : i + 1] * row

    by_hand_ablated = model.run_with_hooks(w, fwd=[(OUT, remove)])
    torch.testing.assert_close(ablated, by_hand_ablated, atol=1e-5, rtol=1e-5)
    assert float((ablated - clean).abs().max()) > 1e-4  # the latent mattered
    assert not model.splices()  # detach removed the input tap too


def test_latents_are_a_kind_writing_into_the_residual_stream_as_they_are() -> None:
    model = tiny_model("llama")
    coder = random_transcoder(model, kind="transcoder")
    name = attach(model, coder, "tc")
    kind = get_kind("tc", model)
    assert kind.group == "latents" and "transcoder" in kind.label
    torch.testing.assert_close(residual_rows(coder, model, OUT), coder.decoder_rows())  # mlp_out: identity
    attr = attribute(model, "ab cab abc", LogitDiff(targets=["a"], distractors=["b"]))
    m = attr.metrics[name]
    assert float(m.total_effect.abs().sum()) > 0 and float(m.direct_effect.abs().sum()) > 0
    torch.testing.assert_close(m.write_norm, m.activation.abs() * coder.decoder_rows().norm(dim=-1))


def test_evaluation_matches_a_hand_computation() -> None:
    model = tiny_model("neox")  # parallel residual: the MLP still reads ln2
    coder = random_transcoder(model)
    w = _windows(8, seed=2)
    e = evaluate(model, coder, w, batch=3)
    _, cache = model.run_with_cache(w, names=[IN, OUT])
    a, y_hat = by_hand(coder, cache[IN])
    y = cache[OUT]
    err = (y - y_hat)[:, 1:].reshape(-1, 32).double()
    yy = y[:, 1:].reshape(-1, 32).double()
    assert e.explained_variance == pytest.approx(
        1 - float(err.pow(2).sum() / (yy - yy.mean(0)).pow(2).sum()), rel=1e-5
    )
    assert e.l0 == pytest.approx(float((a[:, 1:] > 0).sum(-1).double().mean()))

    def ce(fn: object) -> float:
        def hook(v: torch.Tensor, _hp: HookPoint) -> torch.Tensor:
            v = v.clone()
            v[:, 1:] = fn(v)[:, 1:]  # type: ignore[operator]
            return v

        logits = model.run_with_hooks(w, fwd=[(OUT, hook)])
        return float(
            torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1)
            )
        )

    assert e.ce_with_dictionary == pytest.approx(ce(lambda _v: y_hat), rel=1e-5)
    assert e.ce_zero_ablation == pytest.approx(ce(torch.zeros_like), rel=1e-5)
    mean = yy.mean(0).float()
    assert e.ce_mean_ablation == pytest.approx(ce(lambda v: mean.expand_as(v)), rel=1e-5)


def test_a_transcoder_must_fit_the_model() -> None:
    model = tiny_model("llama")
    d = model.cfg.d_model
    bad = SparseCoder(DictionaryConfig(d_in=d + 1, n_latents=8, hook=IN, out_hook=OUT, d_out=d, k=2,
                                       kind="transcoder", apply_b_dec_to_input=False))  # fmt: skip
    with pytest.raises(InputError, match="has width 32 in this model, the dictionary d_in=33"):
        attach(model, bad)
    assert not model.splices()


def test_latents_reading_the_residual_stream_have_driving_tokens() -> None:
    model = tiny_model("gpt2")
    coder = random_transcoder(model)
    name = attach(model, coder)
    i = 5
    got = node_tokens(model, Node(kind=name, index=i, token=0), k=3)
    assert got.drivers is not None and len(got.drivers) == 3
    with torch.no_grad():  # each token's embedding through ln2, read by the encoder column
        emb = model.embed_tokens.weight.float() * model.cfg.embed_scale
        scores = model.block(1).ln2(emb) @ (coder.W_enc[:, i] / coder.scale_in)
    assert [d.value for d in got.drivers] == pytest.approx(scores.topk(3).values.tolist(), rel=1e-5)
    # A residual SAE reads the stream raw: its drivers are the embeddings read by its encoder column.
    sae_coder = random_coder(model, "blocks.0.resid_post")
    sae = attach(model, sae_coder, "sae0")
    got = node_tokens(model, Node(kind=sae, index=2, token=0), k=3)
    with torch.no_grad():
        scores = emb @ (sae_coder.W_enc[:, 2] / sae_coder.scale_in)
    assert got.drivers is not None
    assert [d.value for d in got.drivers] == pytest.approx(scores.topk(3).values.tolist(), rel=1e-5)
    # One reading neuron activations does not read the residual stream linearly: no drivers.
    post = attach(model, random_coder(model, "blocks.0.mlp.post", n=40), "sae_post")
    assert node_tokens(model, Node(kind=post, index=0, token=0), k=3).drivers is None


def test_the_gradient_reaching_the_model_is_the_clean_one() -> None:
    model = tiny_model("llama")
    w = _windows(2)

    def grad_at_embed() -> torch.Tensor:
        delta = torch.zeros(2, w.shape[1], model.cfg.d_model, requires_grad=True)

        def add(x: torch.Tensor, _hp: HookPoint) -> torch.Tensor:
            return x + delta

        logits = model.run_with_hooks(w, fwd=[("blocks.0.resid_pre", add)])
        (g,) = torch.autograd.grad(logits[:, :, 3].sum(), delta)
        return g

    clean = grad_at_embed()
    name = attach(model, random_transcoder(model))
    torch.testing.assert_close(grad_at_embed(), clean, atol=1e-5, rtol=1e-4)
    detach(model, name)
