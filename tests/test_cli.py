from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mechscope.cli import main
from tests.models.loading.test_hf import write_folder


def test_info_prints_architecture_sizes_and_hook_count(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "m")
    result = CliRunner().invoke(main, ["info", str(folder)])
    assert result.exit_code == 0, result.output
    assert "architecture" in result.output and "llama" in result.output
    assert "hook points" in result.output and "load seconds" in result.output
    data = json.loads(CliRunner().invoke(main, ["info", str(folder), "--json"]).output)
    assert data["layers"] == 1 and data["hook_points"] > 20 and data["config"]["d_model"] == 16


def test_bad_model_is_one_line_and_nonzero(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["info", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "no such file or folder" in result.output


def test_bad_option_value_is_rejected() -> None:
    result = CliRunner().invoke(main, ["generate", "hi", "--top-p", "2"])
    assert result.exit_code == 2 and "top-p" in result.output


def test_hooks_lists_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["hooks", str(write_folder(tmp_path / "m")), "--aliases"])
    assert result.exit_code == 0
    assert "blocks.0.mlp.post" in result.output and "hook_embed -> embed" in result.output


def _folder_with_tokenizer(path: Path) -> Path:
    from tokenizers import Regex, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.models import WordLevel

    folder = write_folder(path)
    vocab = ["<pad>", "<bos>", "<eos>", "a", "b", "c", "d", "e", " ", "M", "J"]  # the config's 11
    backend = HFTokenizer(WordLevel({c: i for i, c in enumerate(vocab)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.save(str(folder / "tokenizer.json"))
    return folder


def test_attribute_prints_candidates_and_nodes_and_json(tmp_path: Path) -> None:
    folder = str(_folder_with_tokenizer(tmp_path / "m"))
    result = CliRunner().invoke(
        main, ["attribute", "ab cab", "-m", folder, "--target", "a", "--distractor", "b"]
    )
    assert result.exit_code == 0, result.output
    assert "logit diff: 'a' vs 'b'" in result.output and "top nodes" in result.output
    assert "L0.attn_head" in result.output
    args = ["attribute", "ab cab", "-m", folder, "--target", "a", "--ablate", "L0.attn_head.0@5", "--json"]
    out = json.loads(CliRunner().invoke(main, args).output)
    assert out["interventions"][0]["target"] == {
        "kind": "attn_head",
        "layer": 0,
        "index": 0,
        "positions": [5],
        "key": None,
        "renormalize": False,
    }
    assert out["result"]["nodes"] and "baseline_value" in out
    traced = CliRunner().invoke(
        main, ["attribute", "ab cab", "-m", folder, "--trace", "L0.mlp_neuron.3@5", "--verify", "5"]
    )
    assert traced.exit_code == 0, traced.output
    assert "pearson" in traced.output


def test_attribute_bad_input_is_one_line(tmp_path: Path) -> None:
    folder = str(_folder_with_tokenizer(tmp_path / "m"))
    for args, message in [
        ([], "--target"),
        (["--target", "a", "--kinds", "neurons"], "--kinds"),
        (["--target", "a", "--ablate", "L9.mlp_neuron.1@1"], "layer 9 out of range"),
        (["--target", "a", "--trace", "L0.mlp_neuron.1@1"], "not both"),
    ]:
        result = CliRunner().invoke(main, ["attribute", "ab", "-m", folder, *args])
        assert result.exit_code == 1, (args, result.output)
        assert result.output.strip().count("\n") == 0 and message in result.output, (args, result.output)


def test_graph_prints_scores_and_writes_the_neuronpedia_json(tmp_path: Path) -> None:
    from mechscope.models.dictionaries import DictionaryConfig, SparseCoder, init_random
    from mechscope.models.loading.dictionary_formats import save_dictionary

    folder = str(_folder_with_tokenizer(tmp_path / "m"))
    cfg = DictionaryConfig(d_in=16, n_latents=24, hook="blocks.0.ln2.out", out_hook="blocks.0.mlp_out", d_out=16,
                           kind="skip_transcoder", k=4, apply_b_dec_to_input=False)  # fmt: skip
    save_dictionary(init_random(SparseCoder(cfg), 1), tmp_path / "tc" / "blocks.0.mlp")
    out = tmp_path / "g.json"
    args = ["graph", "ab cab", "-m", folder, "--transcoders", str(tmp_path / "tc"), "--json", str(out)]
    result = CliRunner().invoke(
        main, [*args, "--node-threshold", "1", "--edge-threshold", "1", "--check", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "scores: replacement" in result.output and "causal check (3 latents" in result.output
    pruned = CliRunner().invoke(main, args)  # random latents: none survives 0.8, and it says so
    assert pruned.exit_code == 0 and "no latent is left in the pruned graph" in pruned.output
    doc = json.loads(out.read_text())
    assert doc["nodes"] and doc["metadata"]["mechscope"]["scores"]["replacement"] >= 0
    bad = CliRunner().invoke(main, ["graph", "ab", "-m", folder, "--transcoders", str(tmp_path / "none")])
    assert bad.exit_code == 1 and bad.output.strip().count("\n") == 0 and "no such file" in bad.output
