"""Maps of a dataset's prompts and units: the matrix they are built from, determinism, storage,
skipping an up-to-date map, and the `mechscope maps` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from mechscope.cli import main
from mechscope.data.collate import CollateConfig, collate
from mechscope.data.maps import MapParams, activation_matrix, compute_maps, fingerprint, load_map, map_path
from mechscope.data.store import Dataset, Workspace
from mechscope.errors import InputError
from tests.conftest import tiny_model
from tests.data._helpers import small_windows

CFG = CollateConfig(window=16, top_k=4, random_samples=3, batch=8)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("maps")
    model = tiny_model("llama")
    return collate(model, small_windows(model, tmp, n_docs=60), Workspace(tmp / "ws"), CFG, "c", "")


def _rows(kind: str, layer: int, unit: int, window: int, act: float) -> dict[str, object]:
    return {"kind": kind, "layer": layer, "unit": unit, "window_id": window, "activation": act,
            "rank": 0, "position": 1, "token_id": 5}  # fmt: skip


def hand_dataset(folder: Path) -> Dataset:
    """Three windows and three units, with the rows below (window x unit, over each unit's max):
    the neuron L0.0 (max 2) is 2.0 and 1.0 (top examples) and 1.5 (a sample) in window 1."""
    nodes = [("mlp_neuron", 0, 0, 2.0), ("mlp_neuron", 0, 1, 4.0), ("attn_head", 1, 0, 1.0)]
    examples = [_rows("mlp_neuron", 0, 0, 0, 2.0), _rows("mlp_neuron", 0, 0, 1, 1.0),
                _rows("mlp_neuron", 0, 1, 2, 4.0), _rows("attn_head", 1, 0, 2, 1.0)]  # fmt: skip
    samples = [{**r, "sample": "random"} for r in (
        _rows("mlp_neuron", 0, 0, 1, 1.5), _rows("mlp_neuron", 0, 1, 0, -1.0), _rows("attn_head", 1, 0, 0, 0.5)
    )]  # fmt: skip
    tables = {
        "nodes": pa.table(
            {
                "kind": [n[0] for n in nodes],
                "layer": pa.array([n[1] for n in nodes], pa.int16()),
                "unit": pa.array([n[2] for n in nodes], pa.int32()),
                "max_activation": pa.array([n[3] for n in nodes], pa.float32()),
            }
        ),
        "examples": pa.Table.from_pylist(examples),
        "samples": pa.Table.from_pylist(samples),
        "windows": pa.table(
            {
                "window_id": [0, 1, 2],
                "doc": [0, 0, 1],
                "tokens": [["<s>", "a"]] * 3,
                "text": ["a one", "a two", "b three"],
            }
        ),
        "documents": pa.table({"doc": [0, 1], "title": ["A", "B"]}),
        "meta": pa.table({"key": ["window"], "value": [json.dumps(2)]}),
    }
    ws = Workspace(folder)
    ws.begin({"model": "hand", "n_windows": 3, "window": 2})
    ws.write_dataset(tables)
    return Dataset(folder)


def test_the_matrix_is_each_units_max_over_its_rows_over_its_max(tmp_path: Path) -> None:
    with hand_dataset(tmp_path / "hand") as ds:
        m = activation_matrix(ds)
    # Columns in (kind, layer, unit) order: the head, then the two neurons.
    assert list(zip(m.kind, m.layer, m.unit, strict=True)) == [
        ("attn_head", 1, 0),
        ("mlp_neuron", 0, 0),
        ("mlp_neuron", 0, 1),
    ]
    want = np.array([[0.5, 1.0, 0.0], [0.0, 0.75, 0.0], [1.0, 0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(m.values.toarray(), want)
    assert m.values.nnz == 5  # the negative sample is no entry


def test_maps_are_finite_deterministic_stored_and_reloaded(root: Path) -> None:
    with Dataset(root) as ds:
        a = compute_maps(ds, n_jobs=1)
        n_windows = int(ds.query("SELECT count(*) AS n FROM windows")[0]["n"])
        n_units = sum(layers * size for layers, size in ds.units().values())
        assert len(a["prompts"]) == n_windows > 8 and len(a["units"]) == n_units
        for m in a.values():
            assert np.isfinite(m.x).all() and np.isfinite(m.y).all() and np.ptp(m.x) > 0
            assert m.info["method"].startswith("t-SNE") and m.info["seed"] == 0
            assert m.info["fingerprint"] == fingerprint(ds) and m.info["seconds"] >= 0
        assert a["units"].info["rows"] == n_units and a["units"].info["cols"] == n_windows
        np.testing.assert_array_equal(a["prompts"].ids["window_id"], np.arange(n_windows))
        again = compute_maps(ds, force=True, n_jobs=1)  # the same seed: the same coordinates
        other = compute_maps(ds, params=MapParams(seed=1), n_jobs=1)
    for w in ("prompts", "units"):
        np.testing.assert_allclose(again[w].x, a[w].x, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(again[w].y, a[w].y, rtol=1e-5, atol=1e-4)
        loaded = load_map(root, w)  # type: ignore[arg-type]
        assert loaded is not None and loaded.info == other[w].info
        np.testing.assert_allclose(loaded.x, other[w].x, rtol=1e-6, atol=1e-5)  # stored as float32
        assert not np.allclose(other[w].x, a[w].x)  # another seed, another layout
    units = load_map(root, "units")
    assert units is not None and set(units.ids) == {"kind", "layer", "unit"}
    assert set(units.ids["kind"]) == {"mlp_neuron", "attn_head"}


def test_an_up_to_date_map_is_not_recomputed_until_the_dataset_changes(root: Path, tmp_path: Path) -> None:
    with Dataset(root) as ds:
        first = compute_maps(ds, ("prompts",), n_jobs=1)["prompts"]
        stamp = map_path(root, "prompts").stat().st_mtime_ns
        assert compute_maps(ds, ("prompts",), n_jobs=1)["prompts"].info["created"] == first.info["created"]
        assert map_path(root, "prompts").stat().st_mtime_ns == stamp  # not even rewritten
    # Another dataset's map copied here (its fingerprint differs): recomputed.
    with hand_dataset(tmp_path / "hand") as hand:
        stale = map_path(hand.root, "prompts")
        stale.parent.mkdir(parents=True)
        stale.write_bytes(map_path(root, "prompts").read_bytes())
        m = compute_maps(hand, ("prompts",), n_jobs=1)["prompts"]
        assert len(m) == 3 and m.info["fingerprint"] == fingerprint(hand) != first.info["fingerprint"]
        assert m.info["method"].startswith("truncated SVD")  # 3 points: too few for t-SNE


def test_bad_input_is_refused(root: Path, tmp_path: Path) -> None:
    with Dataset(root) as ds:
        with pytest.raises(InputError, match=r"perplexity 0\.5 is out of range"):
            compute_maps(ds, params=MapParams(perplexity=0.5))
        with pytest.raises(InputError, match="unknown map 'words'; maps: prompts, units"):
            compute_maps(ds, ("words",))  # type: ignore[arg-type]
    ws = Workspace(tmp_path / "running")
    ws.begin({"model": "m", "n_windows": 3, "window": 2})
    with pytest.raises(InputError, match="not finished collating"), Dataset(ws.root) as ds:
        compute_maps(ds)


def test_cli(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    import mechscope.data.maps as maps

    class Frozen(dt.datetime):  # every map made "in the same second"
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:
            return cls(2026, 1, 1, tzinfo=tz)

    monkeypatch.setattr(maps, "datetime", Frozen)
    with Dataset(root) as ds:  # a stored map with other options: the command must not call it kept
        compute_maps(ds, ("prompts",), MapParams(seed=4), n_jobs=1)
    runner = CliRunner()
    r = runner.invoke(main, ["maps", str(root), "--what", "prompts", "--seed", "3", "--jobs", "1"])
    assert r.exit_code == 0, r.output
    assert "prompts:" in r.output and "seed 3" in r.output and "computed in" in r.output
    r = runner.invoke(main, ["maps", str(root), "--what", "prompts", "--seed", "3", "--jobs", "1"])
    assert r.exit_code == 0 and "up to date, kept" in r.output
    r = runner.invoke(main, ["maps", str(tmp_path)])
    assert r.exit_code == 1 and "not a collated dataset folder" in r.output
    r = runner.invoke(main, ["maps", str(root), "--perplexity", "0"])
    assert r.exit_code == 2 and "--perplexity" in r.output


def test_the_exact_svd_from_the_gram_matrix_is_a_truncated_svd() -> None:
    import scipy.sparse as sp
    from sklearn.decomposition import TruncatedSVD

    from mechscope.data.maps import _svd_by_gram

    x = sp.random(120, 900, density=0.03, random_state=1, format="csr")
    for m in (x, x.T.tocsr()):  # the Gram matrix of either side
        want = TruncatedSVD(8, algorithm="arpack").fit_transform(m)
        np.testing.assert_allclose(np.abs(_svd_by_gram(m, 8)), np.abs(want), atol=1e-8)
