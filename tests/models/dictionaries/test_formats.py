"""Each dictionary format round-trips: the loaded dictionary computes what the saved one did
(scales folded where a format has none), and bad files fail naming the file and the field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mechscope.errors import ModelLoadError
from mechscope.models.dictionaries import DictionaryConfig, SparseCoder, init_random
from mechscope.models.loading.dictionary_formats import (
    load_any,
    read_evaluation,
    save_circuit_tracer,
    save_dictionary,
    save_openai,
    save_saelens,
    save_sparsify,
)

X = torch.randn(50, 16, generator=torch.Generator().manual_seed(3)) * 3


def _coder(activation: str = "topk", kind: str = "sae") -> SparseCoder:
    cfg = DictionaryConfig(
        d_in=16, n_latents=40, hook="blocks.2.resid_post", activation=activation,
        k=5 if activation in ("topk", "batchtopk") else None, kind=kind,
        out_hook="blocks.2.mlp_out" if kind != "sae" else None, apply_b_dec_to_input=kind == "sae",
        d_out=12 if kind != "sae" else None,
    )  # fmt: skip
    c = init_random(SparseCoder(cfg), 1)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in (c.b_enc, c.b_dec, *([c.W_skip] if c.W_skip is not None else [])):
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        c.threshold.copy_(torch.rand(40, generator=g) * 0.3)
        c.scale_in.fill_(2.5)
        c.scale_out.fill_(2.5 if kind == "sae" else 0.7)
    return c.eval()


def _same(a: SparseCoder, b: SparseCoder) -> None:
    assert (a.cfg.hook, a.cfg.activation == "batchtopk" or a.cfg.activation, a.cfg.kind) == (
        b.cfg.hook, a.cfg.activation == "batchtopk" or b.cfg.activation, b.cfg.kind,
    )  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(a.encode(X), b.encode(X), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a.decode(a.encode(X), X), b.decode(b.encode(X), X), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("activation", ["topk", "batchtopk", "jumprelu", "relu"])
def test_native_round_trip_keeps_everything(tmp_path: Path, activation: str) -> None:
    c = _coder(activation)
    c.training_stats = {"fvu": 0.1}
    save_dictionary(c, tmp_path / "d", evaluation={"l0": 5.0})
    back = load_any(tmp_path / "d")
    assert back.cfg == c.cfg and back.training_stats == {"fvu": 0.1}
    assert read_evaluation(tmp_path / "d") == {"l0": 5.0}
    _same(c, back)


@pytest.mark.parametrize(
    ("activation", "kind"),
    [("topk", "sae"), ("jumprelu", "sae"), ("batchtopk", "sae"), ("relu", "sae"), ("relu", "transcoder"),
     ("topk", "skip_transcoder")],
)  # fmt: skip
def test_saelens_round_trip(tmp_path: Path, activation: str, kind: str) -> None:
    c = _coder(activation, kind)
    save_saelens(c, tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    assert (
        cfg["metadata"]["hook_name"] == "blocks.2.hook_resid_post" and cfg["normalize_activations"] == "none"
    )
    t = load_file(str(tmp_path / "s" / "sae_weights.safetensors"))
    assert t["W_enc"].shape == (16, 40) and t["W_dec"].shape == (40, c.cfg.width_out)
    back = load_any(tmp_path / "s", hook=None if kind == "sae" else "blocks.2.resid_post")
    assert float(back.scale_in) == 1  # folded into the weights
    _same(c, back)


@pytest.mark.parametrize("kind", ["sae", "transcoder", "skip_transcoder"])
def test_sparsify_round_trip(tmp_path: Path, kind: str) -> None:
    c = _coder("topk", kind)
    save_sparsify(c, tmp_path / "layers.2")
    t = load_file(str(tmp_path / "layers.2" / "sae.safetensors"))
    assert t["encoder.weight"].shape == (40, 16) and ("W_skip" in t) == (kind == "skip_transcoder")
    back = load_any(tmp_path / "layers.2")  # the folder's name is sparsify's hookpoint
    _same(c, back)


def _mlp_transcoder(activation: str, kind: str) -> SparseCoder:
    c = _coder(activation, kind)
    cfg = dataclasses.replace(c.cfg, hook="blocks.2.ln2.out", out_hook="blocks.2.mlp_out")
    out = SparseCoder(cfg)
    out.load_state_dict(c.state_dict())
    return out.eval()


@pytest.mark.parametrize(("activation", "kind"), [("jumprelu", "skip_transcoder"), ("topk", "transcoder"),
                                                  ("relu", "skip_transcoder"), ("batchtopk", "transcoder")])  # fmt: skip
def test_circuit_tracer_round_trip(tmp_path: Path, activation: str, kind: str) -> None:
    c = _mlp_transcoder(activation, kind)
    path = save_circuit_tracer(c, tmp_path / "ct")
    assert path.name == "layer_2.safetensors"
    t = load_file(str(path))
    assert t["W_enc"].shape == (40, 16) and t["W_dec"].shape == (40, 12) and t["b_dec"].shape == (12,)
    assert ("activation_function.threshold" in t) == (activation in ("jumprelu", "batchtopk"))
    assert ("W_skip" in t) == (kind == "skip_transcoder") and ("k" in t) == (activation == "topk")
    back = load_any(path)
    assert (back.cfg.hook, back.cfg.out_hook, back.cfg.kind) == ("blocks.2.ln2.out", "blocks.2.mlp_out", kind)
    _same(c, back)
    if activation == "jumprelu":  # circuit-tracer's maths on its own layout, written out
        x = X[:, :16]
        pre = torch.nn.functional.linear(x, t["W_enc"], t["b_enc"])
        acts = pre * (pre > t["activation_function.threshold"])
        y = acts @ t["W_dec"] + t["b_dec"] + x @ t["W_skip"].T
        torch.testing.assert_close(c.decode(c.encode(x), x), y, atol=1e-5, rtol=1e-5)


def test_circuit_tracer_refuses_what_it_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="per-layer MLP transcoders only"):
        save_circuit_tracer(_coder("topk"), tmp_path)
    path = save_circuit_tracer(_mlp_transcoder("relu", "transcoder"), tmp_path)
    t = load_file(str(path))
    save_file({**t, "W_dec": t["W_dec"][:, :5].contiguous()}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ModelLoadError, match=r"x.safetensors: the file name gives no layer"):
        load_any(tmp_path / "x.safetensors")
    with pytest.raises(
        ModelLoadError, match=r"tensor 'W_dec' has shape \(40, 5\); the config declares \(40, 12\)"
    ):
        load_any(tmp_path / "x.safetensors", hook="blocks.2.mlp")


def test_sparsify_mlp_transcoder_reads_the_mlp_input(tmp_path: Path) -> None:
    c = _mlp_transcoder("topk", "skip_transcoder")
    save_sparsify(c, tmp_path / "layers.2.mlp")  # sparsify's hookpoint for layer 2's MLP
    back = load_any(tmp_path / "layers.2.mlp")
    assert (back.cfg.hook, back.cfg.out_hook) == ("blocks.2.ln2.out", "blocks.2.mlp_out")
    _same(c, back)


def test_saelens_transcoder_keeps_its_output_hook(tmp_path: Path) -> None:
    c = _mlp_transcoder("relu", "transcoder")
    save_saelens(c, tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    assert cfg["metadata"]["hook_name_out"] == "blocks.2.hook_mlp_out"
    back = load_any(tmp_path / "s")
    assert (back.cfg.hook, back.cfg.out_hook) == ("blocks.2.ln2.out", "blocks.2.mlp_out")
    _same(c, back)


def test_openai_round_trip_reads_weights_only(tmp_path: Path) -> None:
    c = _coder("relu")
    save_openai(c, tmp_path / "ae.pt")
    sd = torch.load(tmp_path / "ae.pt", weights_only=True)
    assert sd["encoder.weight"].shape == (40, 16) and sd["decoder.weight"].shape == (16, 40)
    _same(c, load_any(tmp_path / "ae.pt", hook="blocks.2.resid_post"))
    sd["activation"] = "TopK"
    torch.save(sd, tmp_path / "topk.pt")
    with pytest.raises(ModelLoadError, match="only ReLU is supported"):
        load_any(tmp_path / "topk.pt", hook="blocks.2.resid_post")


def test_bad_files_name_the_file_and_the_field(tmp_path: Path) -> None:
    save_saelens(_coder("topk"), tmp_path / "s")
    w = tmp_path / "s" / "sae_weights.safetensors"
    t = load_file(str(w))
    save_file({**t, "b_enc": torch.zeros(39)}, str(w))
    with pytest.raises(
        ModelLoadError,
        match=r"sae_weights\.safetensors: tensor 'b_enc' has shape \(39,\); the config declares \(40,\)",
    ):
        load_any(tmp_path / "s")
    save_file({k: v for k, v in t.items() if k != "W_dec"}, str(w))
    with pytest.raises(ModelLoadError, match="missing tensor 'W_dec'"):
        load_any(tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    (tmp_path / "s" / "cfg.json").write_text(json.dumps({**cfg, "d_sae": "many"}))
    with pytest.raises(ModelLoadError, match=r"cfg\.json: field 'd_sae' must be a positive integer"):
        load_any(tmp_path / "s")
    (tmp_path / "s" / "cfg.json").write_text(json.dumps({**cfg, "k": 99}))
    save_file(t, str(w))
    with pytest.raises(ModelLoadError, match=r"cfg\.json: k must be in 1\.\.n_latents"):
        load_any(tmp_path / "s")
    (tmp_path / "s" / "cfg.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_any(tmp_path / "s")
    w.write_bytes(b"\x00" * 10)
    (tmp_path / "s" / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="not a readable safetensors file"):
        load_any(tmp_path / "s")
    with pytest.raises(ModelLoadError, match="not a dictionary"):
        load_any(tmp_path)
    (tmp_path / "x.pt").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="not a weights-only torch state dict"):
        load_any(tmp_path / "x.pt", hook="blocks.0.resid_post")


@pytest.mark.parametrize("name", ["saelens_topk", "saelens_jumprelu", "saelens_standard"])
def test_files_written_by_saelens_load_and_compute_what_saelens_computed(name: str) -> None:
    """Fixtures written by SAELens 6.54.12's own ``save_model`` (scripts/make_saelens_fixtures.py),
    with the latents and reconstructions SAELens computed for the stored inputs."""
    folder = Path(__file__).parent / "fixtures" / name
    coder = load_any(folder)
    assert coder.cfg.hook == "blocks.1.resid_post" and coder.cfg.model == "tiny"
    expected = load_file(str(folder / "expected.safetensors"))
    with torch.no_grad():
        acts = coder.encode(expected["x"])
        torch.testing.assert_close(acts, expected["acts"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(coder.decode(acts), expected["recon"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["mechscope", "saelens", "sparsify", "openai"])
def test_convert_sae_writes_each_format_of_a_run_folder(tmp_path: Path, fmt: str) -> None:
    from click.testing import CliRunner

    from mechscope.cli import main

    run = tmp_path / "run"
    activation = "relu" if fmt == "openai" else "topk"  # OpenAI's format holds ReLU SAEs only
    coders = {}
    for layer in (1, 2):
        c = _coder(activation)
        c.cfg = dataclasses.replace(c.cfg, hook=f"blocks.{layer}.resid_post")
        coders[c.cfg.hook] = c
        save_dictionary(c, run / c.cfg.hook)
    r = CliRunner().invoke(main, ["convert-sae", str(run), "--to", fmt, "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    for hook, c in coders.items():
        written = tmp_path / "out" / (f"{hook}.pt" if fmt == "openai" else hook)
        assert f"{hook}: {written}" in r.output
        back = load_any(written)  # the OpenAI file's name gives the hook back
        assert back.cfg.hook == hook
        _same(c, back)


def test_convert_sae_to_circuit_tracer_writes_a_loadable_set(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mechscope.cli import main
    from mechscope.engine.dictionaries import dictionary_folders

    run = tmp_path / "run"
    coders = {}
    for layer in (0, 1):
        c = _mlp_transcoder("jumprelu", "skip_transcoder")
        c.cfg = dataclasses.replace(c.cfg, hook=f"blocks.{layer}.ln2.out", out_hook=f"blocks.{layer}.mlp_out",
                                    model="org/Tiny")  # fmt: skip
        coders[layer] = c
        save_dictionary(c, run / f"blocks.{layer}.mlp")
    out = tmp_path / "ct"
    r = CliRunner().invoke(main, ["convert-sae", str(run), "--to", "circuit-tracer", "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = (out / "config.yaml").read_text()
    try:
        import yaml

        cfg = yaml.safe_load(text)
    except ImportError:  # JSON is YAML: without PyYAML read it as JSON
        cfg = json.loads(text.split("\n", 1)[1])
    assert cfg["model_name"] == "org/Tiny"
    assert (cfg["feature_input_hook"], cfg["feature_output_hook"]) == ("ln2.hook_normalized", "hook_mlp_out")
    assert [(t["layer"], Path(t["filepath"]).name) for t in cfg["transcoders"]] == [
        (0, "layer_0.safetensors"), (1, "layer_1.safetensors"),
    ]  # fmt: skip
    assert "needs a transcoder at every layer" not in r.output
    files = dictionary_folders(str(out))  # --sae takes the folder back
    assert [f.name for f in files] == ["layer_0.safetensors", "layer_1.safetensors"]
    for layer, f in enumerate(files):
        _same(coders[layer], load_any(f))
    r = CliRunner().invoke(main, ["convert-sae", str(run / "blocks.1.mlp"), "--to", "circuit-tracer",
                                  "--out", str(tmp_path / "ct1")])  # fmt: skip
    assert r.exit_code == 0 and "needs a transcoder at every layer 0..1" in r.output


def test_convert_sae_refuses_with_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mechscope.cli import main

    save_dictionary(_coder("topk"), tmp_path / "d")
    r = CliRunner().invoke(
        main, ["convert-sae", str(tmp_path / "d"), "--to", "openai", "--out", str(tmp_path / "o")]
    )
    assert r.exit_code != 0 and "ReLU SAEs only" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["convert-sae", str(tmp_path / "nope"), "--to", "saelens", "--out", "x"])
    assert r.exit_code != 0 and "no such file or folder" in r.output
