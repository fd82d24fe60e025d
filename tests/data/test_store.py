"""The dataset's read API, its workspace rules and the `mechscope collate` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mechscope.cli import main
from mechscope.data.collate import CollateConfig, collate
from mechscope.data.store import Dataset, Workspace
from mechscope.errors import InputError
from tests.conftest import tiny_model
from tests.data._helpers import small_windows

CFG = CollateConfig(window=16, top_k=4, random_samples=3, batch=8)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    tmp = tmp_path_factory.mktemp("store")
    model = tiny_model("llama")
    root = collate(model, small_windows(model, tmp), Workspace(tmp / "ws"), CFG, "c", "credit line")
    return Dataset(root)


def test_progress_meta_and_attribution(ds: Dataset, tmp_path: Path) -> None:
    p = ds.progress()
    assert p["status"] == "done" and p["windows_done"] == p["windows_total"] > 0 and p["fraction"] == 1.0
    assert p["tokens_total"] == p["windows_total"] * 15
    assert ds.attribution == "credit line" and ds.meta()["top_k"] == 4
    assert Dataset(tmp_path).progress()["status"] == "missing"
    with pytest.raises(InputError, match="no finished dataset"):
        Dataset(tmp_path).top_examples("mlp_neuron", 0, 0)


def test_resuming_drops_files_the_manifest_does_not_name(tmp_path: Path) -> None:
    # What a kill between a file's rename and the manifest's update leaves behind.
    ws = Workspace(tmp_path / "ws")
    assert not ws.begin({"model": "m"})
    ws.save_state({"done": np.asarray(8)}, 8)
    m = json.loads((ws.root / "manifest.json").read_text())
    m["preview"] = "preview/preview-000000008.duckdb"
    (ws.root / "manifest.json").write_text(json.dumps(m))
    (ws.root / "preview").mkdir()
    named = ["state/state-000000008.npz", "preview/preview-000000008.duckdb"]
    strays = ["state/state-000000016.npz", "preview/preview-000000016.duckdb", "state/.x.tmp"]
    for rel in [*named[1:], *strays]:
        (ws.root / rel).write_bytes(b"")
    assert not Workspace(ws.root).begin({"model": "m"})
    assert all((ws.root / rel).exists() for rel in named)
    assert not any((ws.root / rel).exists() for rel in strays)


def test_bad_node_addresses(ds: Dataset) -> None:
    with pytest.raises(InputError, match="not collated in this dataset; collated: attn_head, mlp_neuron"):
        ds.top_examples("neuron", 0, 0)
    with pytest.raises(InputError, match=r"layers 0\.\.1, index 0\.\.47"):
        ds.stats("mlp_neuron", 0, 48)
    with pytest.raises(InputError, match=r"index 0\.\.3"):
        ds.samples("attn_head", 1, 4)


def test_nodes_for_token_and_search(ds: Dataset) -> None:
    ex = ds.top_examples("mlp_neuron", 1, 5, 1)[0]
    by_id = ds.nodes_for_token(ex["token_id"], n=1000)
    assert any(r["kind"] == "mlp_neuron" and r["layer"] == 1 and r["unit"] == 5 for r in by_id)
    token = ex["tokens"][ex["position"]]
    assert ds.nodes_for_token(f" {token.upper()} ", n=1000) == by_id  # text: case and spaces ignored
    counts = [r["n_examples"] for r in by_id]
    assert counts == sorted(counts, reverse=True)
    assert ds.nodes_for_token("no such token", 5) == []
    hits = ds.search("LAZY DOG", 3)
    assert hits and all("lazy dog" in h["text"].lower() for h in hits)
    assert all(len(h["nodes"]) <= 5 for h in hits) and any(h["nodes"] for h in hits)
    with pytest.raises(InputError, match="empty"):
        ds.search("  ")


def test_workspace_refuses_another_collation(tmp_path: Path) -> None:
    model = tiny_model("llama")
    windows = small_windows(model, tmp_path)
    ws = Workspace(tmp_path / "ws")
    collate(model, windows, ws, CFG)
    with pytest.raises(InputError, match=r"holds another collation .*top_k"):
        collate(model, windows, ws, CollateConfig(window=16, top_k=5, random_samples=3, batch=8))
    assert collate(model, windows, ws, CFG) == ws.root  # done: returns at once


def test_cli_collates_a_model_folder(tmp_path: Path) -> None:
    from tests.test_cli import _folder_with_tokenizer

    folder = _folder_with_tokenizer(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "bos_token_id": 1, "eos_token_id": 2}))
    corpus = tmp_path / "c.txt"
    corpus.write_text("abc dab cab ebb Mac Jab " * 40)
    out = tmp_path / "ds"
    args = [
        "collate",
        "-m",
        str(folder),
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        "--window",
        "8",
        "--top-k",
        "3",
        "--batch",
        "4",
        "-q",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"dataset: {out}" in result.output and "windows of 8 tokens" in result.output
    with Dataset(out) as ds:
        assert len(ds.top_examples("mlp_neuron", 0, 0, 10)) == 3
    again = CliRunner().invoke(main, args)  # already done: same summary, no work
    assert again.exit_code == 0 and f"dataset: {out}" in again.output


def test_examples_name_the_document_of_their_peak(ds: Dataset) -> None:
    docs = {r["doc"]: r for r in ds.query("SELECT doc, stream_start, n_tokens FROM documents")}
    for unit in range(0, 48, 5):
        for e in ds.top_examples("mlp_neuron", 0, unit, 4) + ds.samples("mlp_neuron", 0, unit, "quantile"):
            d = docs[e["peak_doc"]]
            stream_pos = e["window_id"] * 15 + e["position"] - 1
            assert (
                d["stream_start"] <= stream_pos <= d["stream_start"] + d["n_tokens"]
            )  # its separator included
            assert e["peak_doc"] >= e["doc"] and e["title"] == f"doc {e['peak_doc']}"


def test_previews_fill_in_while_running_and_give_way_to_the_dataset(tmp_path: Path) -> None:
    from mechscope.data.collate import begin, checkpoint, collate_range
    from tests.data._helpers import brute_force, top_k_reference

    model = tiny_model("llama")
    windows = small_windows(model, tmp_path, n_docs=40)
    cfg = CollateConfig(window=16, top_k=4, random_samples=3, batch=4, shard=8)
    ws = Workspace(tmp_path / "ws")
    state = begin(model, windows, ws, cfg)
    assert state is not None
    reader = Dataset(ws.root)
    assert reader.progress()["preview_tokens"] is None
    with pytest.raises(InputError, match="no finished dataset yet"):
        reader.top_examples("mlp_neuron", 0, 0)
    # Three shards (8 windows each) as if the run were killed there: previews after shards 1 and 2.
    collate_range(
        model,
        windows,
        cfg,
        stop=24,
        state=state,
        checkpoint=lambda s: checkpoint(s, model, windows, ws, cfg, True, "c", "credit"),
    )
    assert [p.name for p in (ws.root / "preview").iterdir()] == ["preview-000000016.duckdb"]
    p = reader.progress()
    assert p["status"] == "running" and p["preview_tokens"] == 16 * 15 and p["tokens_done"] == 24 * 15
    assert reader.is_preview and reader.meta()["preview"] is True and reader.attribution == "credit"
    win, peak, _ = top_k_reference(brute_force(model, windows)["mlp_neuron"][:16], cfg.top_k)
    for unit in range(3):
        got = reader.top_examples("mlp_neuron", 1, unit, n=cfg.top_k)
        assert [g["window_id"] for g in got] == win[1, unit].tolist()  # the first 16 windows' top-k
        assert [g["activation"] for g in got] == pytest.approx(peak[1, unit].tolist(), rel=1e-5)
    # Resumed to the end: the same reader now reads the finished dataset; previews are gone.
    collate(model, windows, ws, cfg, preview=True)
    assert not list((ws.root / "preview").iterdir())
    assert reader.progress()["preview_tokens"] is None and not reader.is_preview
    assert "preview" not in reader.meta()
    with Dataset(ws.root) as fresh:
        assert reader.top_examples("mlp_neuron", 1, 0, 4) == fresh.top_examples("mlp_neuron", 1, 0, 4)
