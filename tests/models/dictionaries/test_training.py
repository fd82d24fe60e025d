"""Training on a tiny model's activations: the loss falls, AuxK revives latents killed on purpose
(and without it they stay dead), and a run stopped midway and resumed ends with the weights of an
uninterrupted run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from mechscope.errors import InputError
from mechscope.models.dictionaries.source import capture
from mechscope.models.dictionaries.training import TrainConfig, geometric_median, new_trainee, step, train
from tests.conftest import tiny_model

HOOKS = ("blocks.0.resid_post", "blocks.1.mlp.post")


def _windows(n: int = 96, length: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(3, 100, (n, length), generator=g)
    w[:, 0] = 1  # the start token
    return w


BASE = TrainConfig(
    hooks=HOOKS, n_latents=64, k=4, tokens=1200, batch_tokens=60, window=16, model_batch=8,
    chunk_tokens=300, warmup_steps=3, lr=3e-3, init_tokens=300, dead_tokens=600,
)  # fmt: skip


def test_loss_falls_for_every_hook_and_activation() -> None:
    model = tiny_model("llama")
    for activation in ("topk", "batchtopk", "relu"):
        seen: list[dict[str, dict[str, float]]] = []
        cfg = dataclasses.replace(BASE, activation=activation, l1_coef=1e-3, tokens=6000)
        coders = train(model, _windows(450), cfg, progress=lambda _c, m, _s, seen=seen: seen.append(m))
        for h in HOOKS:
            first, last = seen[0][h]["fvu"], seen[-1][h]["fvu"]
            assert last < 0.8 * first, (activation, h, first, last)
            assert coders[h].training_stats["tokens"] == 6000
        assert {h: c.cfg.d_in for h, c in coders.items()} == {HOOKS[0]: 32, HOOKS[1]: 48}
    assert coders[HOOKS[0]].cfg.activation == "relu"


def test_batchtopk_is_saved_as_jumprelu_with_its_threshold() -> None:
    model = tiny_model("llama")
    coder = train(model, _windows(), dataclasses.replace(BASE, activation="batchtopk", hooks=HOOKS[:1]))[
        HOOKS[0]
    ]
    assert coder.activation == "jumprelu" and float(coder.threshold.min()) > 0
    x = capture(model, _windows(8), HOOKS[:1], None)[0][HOOKS[0]]
    l0 = float((coder.encode(x) > 0).sum(-1).float().mean())
    assert 1 <= l0 <= 4 * BASE.k  # near the trained batch average


def _kill(t: object, idx: torch.Tensor) -> None:
    """Shrink latents' encoder columns: they keep small positive pre-activations but never make
    the top k, so only AuxK can give them a gradient."""
    with torch.no_grad():
        t.coder.W_enc[:, idx] *= 0.02  # type: ignore[attr-defined]
        t.coder.b_enc[idx] = 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("auxk", [True, False])
def test_auxk_revives_killed_latents(auxk: bool) -> None:
    model = tiny_model("llama")
    hook = HOOKS[0]
    x = capture(model, _windows(200), [hook], 10.0)[0][hook]
    cfg = dataclasses.replace(BASE, hooks=(hook,), auxk=auxk, tokens=10**9, dead_tokens=300, warmup_steps=1)
    t = new_trainee(cfg, hook, 32, x[:300], "tiny")
    killed = torch.arange(0, 64, 4)
    _kill(t, killed)
    for i in range(120):
        step(t, cfg, x[(i * 60) % (len(x) - 60) :][:60], cfg.learning_rate())
    with torch.no_grad():
        fired = (t.coder.train().pre_acts(x).topk(cfg.k, dim=-1).indices[..., None] == killed).any((0, 1))
    if auxk:
        assert int(fired.sum()) >= len(killed) // 2, fired
    else:
        assert int(fired.sum()) == 0


def test_resume_after_a_stop_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    model = tiny_model("llama")
    windows = _windows()
    full = train(model, windows, BASE)
    stopped = train(model, windows, BASE, out=tmp_path, stop_after_chunks=2)
    assert stopped[HOOKS[0]].training_stats["tokens"] < BASE.tokens
    resumed = train(model, windows, BASE, out=tmp_path)
    for h in HOOKS:
        for name, p in full[h].state_dict().items():
            assert torch.equal(p, resumed[h].state_dict()[name]), (h, name)
    with pytest.raises(InputError, match="written by a run with another configuration"):
        train(model, windows, dataclasses.replace(BASE, k=5), out=tmp_path)


def test_geometric_median_resists_outliers() -> None:
    x = torch.cat([torch.randn(200, 3) * 0.1, torch.full((20, 3), 100.0)])
    assert float(geometric_median(x).norm()) < 1.0 < float(x.mean(0).norm())


def test_sinks_and_the_start_token_are_left_out() -> None:
    model = tiny_model("llama")
    w = _windows(4)
    h = "blocks.0.resid_post"
    every = capture(model, w, [h], None)[0][h]
    assert len(every) == 4 * 15  # position 0 never counted
    norms = every.norm(dim=-1)
    got, sinks = capture(model, w, [h], 1.1)
    expected = norms <= 1.1 * norms.median()
    assert sinks[h] == int((~expected).sum()) > 0
    torch.testing.assert_close(got[h], every[expected])
    with pytest.raises(InputError, match="cannot be trained"):
        TrainConfig(hooks=HOOKS, n_latents=8, activation="jumprelu")


def test_the_corpus_asked_for_covers_the_tokens_in_whole_chunks(caplog: pytest.LogCaptureFixture) -> None:
    """train-sae and the presets tokenise cfg.corpus_tokens(): training uses whole chunks only, so
    a corpus of tokens x 1.1 (1,100 here: three chunks of 300) used to stop short of the tokens."""
    cfg = dataclasses.replace(BASE, hooks=HOOKS[:1], tokens=1000)
    n = cfg.corpus_tokens(eval_windows=5) // (cfg.window - 1)
    assert n == 4 * cfg.chunk_windows + 5
    windows = _windows(n - 5, length=cfg.window)
    with caplog.at_level("WARNING"):
        train(tiny_model("llama"), windows, cfg)
    assert "ran out" not in caplog.text


@pytest.mark.parametrize("activation", ["topk", "relu"])
def test_bf16_matmuls_train_as_well_as_fp32(activation: str) -> None:
    """bf16 matmuls (fp32 weights, Adam and loss) reach the fp32 run's FVU, and keep the weights
    fp32; the two runs differ (the bf16 path is really taken)."""
    model = tiny_model("llama")
    fvu, weights = {}, {}
    for precision in ("fp32", "bf16"):
        cfg = dataclasses.replace(BASE, hooks=HOOKS[:1], activation=activation, l1_coef=1e-3, tokens=6000,
                                  precision=precision)  # fmt: skip
        seen: list[dict[str, dict[str, float]]] = []
        coder = train(model, _windows(450), cfg, progress=lambda _c, m, _s, seen=seen: seen.append(m))[
            HOOKS[0]
        ]
        assert all(p.dtype == torch.float32 for p in coder.parameters())
        fvu[precision], weights[precision] = seen[-1][HOOKS[0]]["fvu"], coder.W_dec.detach()
    assert abs(fvu["bf16"] - fvu["fp32"]) < 0.05 * max(fvu.values()) + 0.01, fvu
    assert not torch.equal(weights["bf16"], weights["fp32"])


def test_precision_is_checked_and_auto_follows_the_hardware() -> None:
    from mechscope.models.dictionaries.training import matmul_dtype, native_bf16

    with pytest.raises(InputError, match="precision 'fp16' is not one of: auto, fp32, bf16"):
        dataclasses.replace(BASE, precision="fp16")
    assert matmul_dtype("fp32") == torch.float32 and matmul_dtype("bf16") == torch.bfloat16
    assert matmul_dtype("auto") == (torch.bfloat16 if native_bf16() else torch.float32)
