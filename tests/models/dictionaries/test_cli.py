"""``mechscope train-sae`` and ``mechscope eval-sae`` on a tiny model: they train, evaluate,
store the evaluation with the dictionary, resume, and fail on bad input with one line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mechscope.cli import main
from tests.test_cli import _folder_with_tokenizer


def _model(tmp_path: Path) -> str:
    folder = _folder_with_tokenizer(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "bos_token_id": 1, "eos_token_id": 2}))
    return str(folder)


def _corpus(tmp_path: Path) -> str:
    corpus = tmp_path / "c.txt"
    corpus.write_text("abc dab cab ebb Mac Jab bad cede " * 200)
    return str(corpus)


def test_train_then_eval(tmp_path: Path) -> None:
    model, corpus = _model(tmp_path), _corpus(tmp_path)
    out = tmp_path / "run"
    args = ["train-sae", "-m", model, "--hook", "blocks.0.resid_mid,blocks.0.mlp.post", "--latents", "32",
            "--k", "4", "--tokens", "3000", "--corpus", corpus, "--window", "16", "--batch-tokens", "100",
            "--out", str(out)]  # fmt: skip
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "blocks.0.resid_mid: l0 " in r.output and "explained_variance " in r.output
    meta = json.loads((out / "blocks.0.resid_mid" / "dictionary.json").read_text())
    assert meta["config"]["n_latents"] == 32 and meta["eval"]["tokens"] == 64 * 15
    assert meta["training"]["tokens"] == 3000
    again = CliRunner().invoke(main, args)  # a finished run resumes at its end: same dictionaries
    assert again.exit_code == 0, again.output
    r = CliRunner().invoke(
        main, ["eval-sae", str(out / "blocks.0.mlp.post"), "-m", model, "-c", corpus, "--tokens", "600",
               "--window", "16", "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)
    assert ev["hook"] == "blocks.0.mlp.post" and ev["tokens"] == 600 and 0 < ev["l0"] <= 4
    stored = json.loads((out / "blocks.0.mlp.post" / "dictionary.json").read_text())["eval"]
    assert stored["tokens"] == 600  # the new evaluation is stored with the dictionary


def test_train_and_eval_a_skip_transcoder(tmp_path: Path) -> None:
    model, corpus = _model(tmp_path), _corpus(tmp_path)
    out = tmp_path / "run"
    args = ["train-sae", "-m", model, "--hook", "blocks.0.mlp", "--kind", "skip-transcoder", "--latents", "32",
            "--k", "4", "--tokens", "2000", "--corpus", corpus, "--window", "16", "--batch-tokens", "100",
            "--out", str(out), "-q"]  # fmt: skip
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "blocks.0.mlp" / "dictionary.json").read_text())
    assert (meta["config"]["kind"], meta["config"]["hook"], meta["config"]["out_hook"]) == (
        "skip_transcoder", "blocks.0.ln2.out", "blocks.0.mlp_out",
    )  # fmt: skip
    assert meta["eval"]["hook"] == "blocks.0.mlp_out" and meta["eval"]["l0"] > 0
    r = CliRunner().invoke(
        main, ["eval-sae", str(out / "blocks.0.mlp"), "-m", model, "-c", corpus, "--tokens", "300",
               "--window", "16", "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["tokens"] == 300


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    model, corpus = _model(tmp_path), _corpus(tmp_path)
    base = ["train-sae", "-m", model, "--latents", "16", "--k", "4", "--corpus", corpus, "--window", "16"]
    for args, message in [
        ([*base, "--hook", "blocks.9.resid_post"], "no hook point named 'blocks.9.resid_post'"),
        ([*base, "--hook", "blocks.0.attn.q"], "no linear map to the residual stream"),
        ([*base, "--hook", "blocks.0.resid_post", "--k", "99"], "k must be in 1..n_latents (16)"),
        ([*base, "--hook", "blocks.0.resid_post", "--kind", "transcoder"], "e.g. blocks.3.mlp"),
        (
            [*base, "--hook", "blocks.9.mlp", "--kind", "skip-transcoder"],
            "no hook point named 'blocks.9.ln2.out'",
        ),
        ([*base, "--hook", "blocks.0.resid_post", "--activation", "jumprelu"], "cannot be trained"),
        (["eval-sae", str(tmp_path), "-m", model], "not a dictionary"),
    ]:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 1, (args, r.output)
        assert message in r.output and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1, r.output
