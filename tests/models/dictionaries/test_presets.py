"""Training presets: ``--sae demo`` trains the preset once into its cache folder (saying how long
it should take first), then finds it there; ``train-sae --preset`` refuses unknown presets."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mechscope.cli import main
from mechscope.engine.dictionaries import attach_all, demo_refs
from mechscope.models.dictionaries import presets
from tests.conftest import tiny_model

TINY = presets.Preset(
    name="demo",
    train=dataclasses.replace(
        presets.DEMO.train,
        hooks=("blocks.0.resid_post", "blocks.1.resid_post"),
        n_latents=32,
        k=4,
        tokens=1200,
        batch_tokens=100,
        window=16,
        chunk_tokens=600,
    ),
    tok_s=100.0,
    fixed_seconds=60.0,
    eval_windows=4,
)


def test_demo_dictionaries_are_trained_once_then_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MECHSCOPE_HOME", str(tmp_path))
    monkeypatch.setattr(presets, "DEMO", TINY)
    monkeypatch.setitem(presets.PRESETS, "demo", TINY)
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat; a dog ate my hat. " * 200)
    monkeypatch.setattr(presets, "train_preset", _with_corpus(presets.train_preset, str(corpus)))
    model = tiny_model("llama")
    said: list[str] = []
    refs = demo_refs(model, ["demo"], said.append)
    folder = tmp_path / "dictionaries" / "model" / "preset-demo"
    assert refs == [str(folder)] and presets.is_trained(folder, TINY)
    assert "about 1 min" in said[0] and said[-1].startswith("trained the demo dictionaries in")
    assert (folder / "checkpoint.pt").is_file()  # resumable
    said.clear()
    assert demo_refs(model, ["demo", "other"], said.append) == [str(folder), "other"] and said == []
    assert attach_all(model, refs) == ["sae_l0_resid_post", "sae_l1_resid_post"]


def test_the_transcoders_preset_gives_a_replacement_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--sae transcoders`` trains a transcoder at every MLP once, and a graph builds on them."""
    from mechscope.engine.graphs import build_graph

    tiny = dataclasses.replace(TINY, name="transcoders", train=dataclasses.replace(
        presets.TRANSCODERS.train, hooks=("blocks.0.mlp", "blocks.1.mlp"), n_latents=32, k=4, tokens=1200,
        batch_tokens=100, window=16, chunk_tokens=600))  # fmt: skip
    monkeypatch.setenv("MECHSCOPE_HOME", str(tmp_path))
    monkeypatch.setitem(presets.PRESETS, "transcoders", tiny)
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat; a dog ate my hat. " * 200)
    monkeypatch.setattr(presets, "train_preset", _with_corpus(presets.train_preset, str(corpus)))
    model = tiny_model("llama")
    refs = demo_refs(model, ["transcoders"], lambda _m: None)
    assert refs == [str(tmp_path / "dictionaries" / "model" / "preset-transcoders")]
    assert attach_all(model, refs) == ["skip_transcoder_l0_mlp_out", "skip_transcoder_l1_mlp_out"]
    g = build_graph(model, model.to_tokens("the cat sat")[0][0].tolist())
    assert g.n_features > 0 and g.scores is not None


def _with_corpus(fn: Callable[..., Any], corpus: str) -> Callable[..., Any]:
    return lambda *a, **kw: fn(*a, **{**kw, "corpus": corpus})


def test_train_sae_refuses_an_unknown_preset_and_needs_hooks_without_one() -> None:
    r = CliRunner().invoke(main, ["train-sae", "--preset", "huge"])
    assert r.exit_code == 1 and r.output.strip() == "Error: preset 'huge' is not one of: demo, transcoders"
    r = CliRunner().invoke(main, ["train-sae", "--latents", "8"])
    assert r.exit_code == 2 and "--hook and --latents are required (or --preset)" in r.output


def test_the_estimate_uses_the_rate_of_the_precision_it_will_train_in() -> None:
    demo = presets.DEMO
    fp32, bf16 = demo.estimate_seconds(), demo.estimate_seconds(bf16=True)
    assert fp32 == pytest.approx(demo.train.tokens / demo.tok_s + demo.fixed_seconds)
    assert demo.bf16_tok_s is not None and bf16 < fp32 / 2  # measured 3.5 vs 9.5 min on 2 cores
    assert dataclasses.replace(demo, bf16_tok_s=None).estimate_seconds(bf16=True) == fp32
