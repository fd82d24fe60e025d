"""Collation split across workers: merged in window order, the result is the single pass's, bit
for bit; on Ray (two local workers) the database is identical, also when resuming a single-process
run that was cut short."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mechscope.cli import main
from mechscope.data.collate import CollateConfig, CollationState, begin, collate, collate_range
from mechscope.data.distributed import RayCollator, collate_on_ray, runs
from mechscope.data.store import Workspace
from mechscope.errors import InputError
from tests.conftest import need, tiny_model
from tests.data._helpers import dump_tables, small_windows, sorted_state_arrays

CFG = CollateConfig(window=16, top_k=4, random_samples=3, batch=4, shard=8)


def test_runs_are_whole_shards_that_cover_the_rest() -> None:
    assert runs(0, 100, 8, 2) == [(0, 16), (16, 32), (32, 48), (48, 64), (64, 80), (80, 96), (96, 100)]
    assert runs(40, 41, 8, 4) == [(40, 41)]
    assert runs(16, 16, 8, 2) == []
    for done, n, shard, workers in [(0, 1000, 8, 3), (24, 999, 8, 16), (0, 7, 8, 2)]:
        cut = runs(done, n, shard, workers)
        assert cut[0][0] == done and cut[-1][1] == n
        assert all(a % shard == 0 and b == c for (a, b), (c, _) in itertools.pairwise(cut))


def test_workers_merged_in_order_equal_one_pass_bit_for_bit(tmp_path: Path) -> None:
    model = tiny_model("llama")
    windows = small_windows(model, tmp_path, n_docs=40)
    whole = collate_range(model, windows, CFG)
    merged = CollationState(model, CFG)
    worker = RayCollator(model, windows, CFG, threads=1)  # the Ray actor's body, in process
    for start, stop in runs(0, windows.n, CFG.shard_windows, 2):
        part = worker.run(start, stop)
        merged.merge_(part)
    assert merged.done == whole.done == windows.n
    a, b = sorted_state_arrays(whole), sorted_state_arrays(merged)
    assert a.keys() == b.keys()
    for name in a:  # moments included: torch.equal, not allclose
        assert torch.equal(a[name], b[name]), name


def test_a_worker_result_pickles_without_its_scratch(tmp_path: Path) -> None:
    import pickle

    model = tiny_model("llama")
    windows = small_windows(model, tmp_path)
    part = RayCollator(model, windows, CFG, threads=1).run(0, 8)
    back = pickle.loads(pickle.dumps(part))
    assert back.kinds["mlp_neuron"].scratch.abs().sum() == 0
    assert len(back.kinds["mlp_neuron"].closed or []) == 1  # one shard of 8 windows, kept apart
    state = CollationState(model, CFG)
    state.kinds["mlp_neuron"].update(0, torch.rand(2, 16, model.cfg.d_mlp), 0)
    with pytest.raises(RuntimeError, match="fold"):
        pickle.dumps(state)


def _need_ray() -> None:
    need(importlib.util.find_spec("ray") is not None, "ray is not installed (pip install 'mechscope[ray]')")


def test_ray_two_local_workers_give_the_identical_database(tmp_path: Path) -> None:
    _need_ray()
    import ray

    model = tiny_model("llama")
    windows = small_windows(model, tmp_path, n_docs=40)
    clean = collate(model, windows, Workspace(tmp_path / "clean"), CFG, corpus_name="c")
    # A single-process run cut short after two shards, then resumed on Ray: nothing lost or doubled.
    cut = Workspace(tmp_path / "cut")
    state = begin(model, windows, cut, CFG)
    assert state is not None
    collate_range(
        model, windows, CFG, stop=16, state=state, checkpoint=lambda s: cut.save_state(s.arrays(), s.done)
    )
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        fresh = collate_on_ray(model, windows, Workspace(tmp_path / "ray"), CFG, corpus_name="c", workers=2)
        resumed = collate_on_ray(model, windows, cut, CFG, corpus_name="c", workers=2)
    finally:
        ray.shutdown()
    want = dump_tables(clean)
    for root in (fresh, resumed):
        got = dump_tables(root)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name] == want[name], (root.name, name)


def test_cli_ray_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = CliRunner().invoke(main, ["collate", "--corpus", str(tmp_path / "c.txt"), "--workers", "2"])
    assert r.exit_code == 2 and "--workers goes with --ray" in r.output
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    from mechscope.ray_cluster import ray_module

    with pytest.raises(InputError, match=r"pip install 'mechscope\[ray\]'"):
        ray_module()
