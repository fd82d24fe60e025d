"""``serve --sae``: a dictionary saved to disk, attached before the app is built, is a node kind of
the API: listed by /api/model, scored by /api/debug, ablated and verified through the generic
endpoints; bad folders and dictionaries of another model are refused with a one-line error."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from fastapi.testclient import TestClient

from mechscope.cli import main
from mechscope.engine.dictionaries import attach_all, split_refs
from mechscope.errors import InputError, ModelLoadError
from mechscope.models.dictionaries import DictionaryConfig, SparseCoder
from mechscope.models.loading.dictionary_formats import save_dictionary, save_saelens
from mechscope.server.app import create_app
from tests.conftest import tiny_model
from tests.data._helpers import dump_tables
from tests.models.dictionaries._helpers import random_coder

PROMPT = "the cat sat on"
DEBUG = {"prompt": PROMPT, "targets": [" "], "distractors": ["a"], "k": 5}
POINT = "blocks.1.resid_pre"


def _saved(tmp_path: Path, name: str = "run") -> Path:
    coder = random_coder(tiny_model("llama"), POINT, n=64, k=4)
    # train-sae's layout: <run>/<hook>/dictionary.json + weights.safetensors
    return save_dictionary(coder, tmp_path / name / POINT).parent


def test_an_attached_dictionary_is_listed_scored_ablated_and_verified(tmp_path: Path) -> None:
    run = _saved(tmp_path)
    model = tiny_model("llama")
    assert attach_all(model, split_refs([str(run)])) == ["sae_l1_resid_pre"]
    with TestClient(create_app(model), raise_server_exceptions=False, base_url="http://localhost") as c:
        kinds = {k["name"]: k for k in c.get("/api/model").json()["kinds"]}
        latent = kinds["sae_l1_resid_pre"]
        assert latent["size"] == 64 and latent["unit"] == "latent" and not latent["layered"]

        r = c.post("/api/debug", json=DEBUG)
        assert r.status_code == 200, r.text
        rows = [n for n in r.json()["left"]["nodes"] if n["node"]["kind"] == "sae_l1_resid_pre"]
        assert rows, "the node table has no latent rows"
        top = max(rows, key=lambda n: abs(n["total_effect"]))["node"]

        ablate = {
            "target": {"kind": top["kind"], "index": top["index"], "positions": [top["token"]]},
            "op": {"kind": "zero"},
        }
        body = c.post("/api/debug", json={**DEBUG, "interventions": [ablate]}).json()
        assert body["value_diff"] is not None and abs(body["value_diff"]) > 1e-6
        steer = {**ablate, "op": {"kind": "add", "value": 3.0}}
        steered = c.post("/api/debug", json={**DEBUG, "interventions": [steer]}).json()
        assert abs(steered["value_diff"]) > 1e-6 and steered["value_diff"] != body["value_diff"]

        v = c.post("/api/verify", json={**DEBUG, "kinds": ["sae_l1_resid_pre"], "top_n": 5})
        assert v.status_code == 200, v.text
        assert {n["node"]["kind"] for n in v.json()["nodes"]} == {"sae_l1_resid_pre"}


def test_saelens_folders_and_comma_lists_attach_under_free_names(tmp_path: Path) -> None:
    model = tiny_model("llama")
    coder = random_coder(model, POINT, n=32, k=4, seed=3)
    save_saelens(coder, tmp_path / "lens")
    one = _saved(tmp_path) / POINT
    names = attach_all(model, split_refs([f"{one},{tmp_path / 'lens'}"]))
    assert names == ["sae_l1_resid_pre", "sae_l1_resid_pre_2"]


def test_bad_folders_and_other_models_are_refused_naming_the_problem(tmp_path: Path) -> None:
    model = tiny_model("llama")
    with pytest.raises(InputError, match="no such file or folder"):
        attach_all(model, [str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a dictionary"):
        attach_all(model, [str(tmp_path / "empty")])
    broken = _saved(tmp_path, "broken") / POINT
    (broken / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match=re.escape(str(broken))):
        attach_all(model, [str(broken)])

    wide = SparseCoder(DictionaryConfig(d_in=48, n_latents=8, hook=POINT, k=2))
    save_dictionary(wide, tmp_path / "wide")
    with pytest.raises(InputError, match=r"wide.*width 32 .*d_in=48"):
        attach_all(model, [str(tmp_path / "wide")])

    named = dataclasses.replace(model.cfg, name="SmolLM2-135M-Instruct.Q4_1")
    model.cfg = named
    other = SparseCoder(DictionaryConfig(d_in=32, n_latents=8, hook=POINT, k=2, model="gpt2"))
    save_dictionary(other, tmp_path / "other")
    with pytest.raises(InputError, match=r"trained for model 'gpt2'.*SmolLM2-135M-Instruct.Q4_1"):
        attach_all(model, [str(tmp_path / "other")])
    same = SparseCoder(
        DictionaryConfig(d_in=32, n_latents=8, hook=POINT, k=2, model="HuggingFaceTB/SmolLM2-135M-Instruct")
    )
    save_dictionary(same, tmp_path / "same")
    assert attach_all(model, [str(tmp_path / "same")]) == ["sae_l1_resid_pre"]


def test_serve_refuses_a_bad_dictionary_in_one_line_before_loading_the_model(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["serve", "--sae", str(tmp_path / "nope"), "--model", "/nonexistent.gguf"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [f"Error: --sae {tmp_path / 'nope'}: no such file or folder"]


def test_collate_sae_collates_the_latents_for_the_node_pages(tmp_path: Path) -> None:
    import json

    from mechscope.data.store import Dataset
    from mechscope.models.loading import load_model
    from tests.test_cli import _folder_with_tokenizer

    folder = _folder_with_tokenizer(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "bos_token_id": 1, "eos_token_id": 2}))
    save_dictionary(random_coder(load_model(str(folder)), "blocks.0.resid_post", n=16, k=2), tmp_path / "d")
    corpus = tmp_path / "c.txt"
    corpus.write_text("abc dab cab ebb Mac Jab " * 40)
    out = tmp_path / "ds"
    args = ["collate", "-m", str(folder), "--corpus", str(corpus), "--out", str(out), "--window", "8",
            "--top-k", "3", "--batch", "4", "-q", "--sae", str(tmp_path / "d")]  # fmt: skip
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    with Dataset(out) as ds:
        rows = ds.query("SELECT count(*) AS n FROM nodes WHERE kind = 'sae_l0_resid_post'")
        assert rows[0]["n"] == 16
    if importlib.util.find_spec("ray") is None:
        return
    # On Ray the dictionaries travel inside the model: the workers collate the same latents.
    ray_args = [str(tmp_path / "ray") if a == str(out) else a for a in args]
    r = CliRunner().invoke(main, [*ray_args, "--ray", "local", "--workers", "2"])
    assert r.exit_code == 0, r.output
    want, got = dump_tables(out), dump_tables(tmp_path / "ray")
    assert got.keys() == want.keys() and all(got[t] == want[t] for t in want)


def test_a_saved_skip_transcoder_attaches_and_its_latents_are_scored_and_ablated(tmp_path: Path) -> None:
    from tests.models.dictionaries.test_transcoders import random_transcoder

    model = tiny_model("llama")
    coder = random_transcoder(model)
    run = save_dictionary(coder, tmp_path / "run" / "blocks.1.mlp").parent
    tokens = torch.tensor([[1, 2, 3, 4]])
    clean = model(tokens)
    assert attach_all(model, split_refs([str(run)])) == ["skip_transcoder_l1_mlp_out"]
    # The error term is kept: attaching does not change the model's outputs.
    assert torch.allclose(model(tokens), clean, atol=1e-5)
    with TestClient(create_app(model), raise_server_exceptions=False, base_url="http://localhost") as c:
        assert "skip_transcoder_l1_mlp_out" in {k["name"] for k in c.get("/api/model").json()["kinds"]}
        r = c.post("/api/debug", json=DEBUG)
        assert r.status_code == 200, r.text
        rows = [n for n in r.json()["left"]["nodes"] if n["node"]["kind"] == "skip_transcoder_l1_mlp_out"]
        assert rows, "the node table has no transcoder latent rows"
        top = max(rows, key=lambda n: abs(n["total_effect"]))["node"]
        ablate = {"target": {"kind": top["kind"], "index": top["index"], "positions": [top["token"]]},
                  "op": {"kind": "zero"}}  # fmt: skip
        body = c.post("/api/debug", json={**DEBUG, "interventions": [ablate]}).json()
        assert body["value_diff"] is not None and abs(body["value_diff"]) > 1e-6
        # Traced: its activation becomes the direction of interest, scored upstream.
        node = {"kind": top["kind"], "index": top["index"], "token": top["token"]}
        traced = c.post("/api/debug", json={"prompt": PROMPT, "trace": {"node": node}})
        assert traced.status_code == 200, traced.text
        assert (
            f"skip_transcoder_l1_mlp_out.{top['index']}@{top['token']}" in traced.json()["left"]["direction"]
        )
