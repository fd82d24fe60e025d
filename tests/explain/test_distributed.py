"""``explain --ray``: rows from Ray workers equal the single-process job's, a re-run resumes, each
worker builds its own backends, and a missing Ray is one line."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mechscope.cli import main
from mechscope.data.store import Dataset
from mechscope.explain.distributed import explain_on_ray
from mechscope.explain.jobs import BackendSpec, JobConfig, run_job, select_nodes
from mechscope.explain.store import ExplanationStore
from mechscope.models.decoder import HookedDecoder
from tests.conftest import need, ray_worker_env, tiny_model
from tests.explain._helpers import collated
from tests.explain.fake_openai import Reply, answer, running

BASELINE = BackendSpec("baseline", "none", embed=False)  # no LLM, no MiniLM: fast and exact


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    need(importlib.util.find_spec("ray") is not None, "ray is not installed (pip install 'mechscope[ray]')")
    import ray

    home = tmp_path_factory.mktemp("ray-home")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", **ray_worker_env(home))
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def llama() -> HookedDecoder:
    return tiny_model("llama")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, llama: HookedDecoder) -> Path:
    return collated(tmp_path_factory.mktemp("ray-explain"), llama, n_docs=30)


def _copy(root: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(root, tmp_path / name))


def _rows(root: Path) -> dict[tuple[str, int, int], tuple[Any, ...]]:
    with ExplanationStore(root, read_only=True) as store:
        got = store._rows(
            "SELECT kind, layer, unit, backend, explanation, train_windows, test_windows, scores FROM explanations",
            [],
        )
    return {(r["kind"], r["layer"], r["unit"]): tuple(r.values())[3:] for r in got}


def test_ray_rows_equal_the_single_process_rows_and_a_rerun_resumes(
    cluster: None, root: Path, llama: HookedDecoder, tmp_path: Path
) -> None:
    cfg = JobConfig(seed=3)
    with Dataset(root) as ds:
        nodes = select_nodes(ds, limit=8, seed=3)
    single, ray_root = _copy(root, tmp_path, "single"), _copy(root, tmp_path, "ray")
    with Dataset(single) as ds, ExplanationStore(single) as store:
        run_job(ds, store, nodes, llama, BASELINE.build(), cfg)
    # The Ray run starts from a store that already holds three of the nodes (a killed earlier run).
    with Dataset(ray_root) as ds, ExplanationStore(ray_root) as store:
        run_job(ds, store, nodes[:3], llama, BASELINE.build(), cfg)
        seen: list[int] = []
        summary = explain_on_ray(
            ds, store, nodes, llama, BASELINE, cfg, workers=2, before=lambda rec: seen.append(len(rec.todo))
        )
    assert seen == [5] and summary.done == 5 and summary.skipped == 3 and summary.failed == 0
    want, got = _rows(single), _rows(ray_root)
    assert set(got) == set(want) == set(nodes)
    for node in nodes:
        assert got[node] == want[node], node
    # Everything is done now: a third run (Ray or not) has nothing left.
    with Dataset(ray_root) as ds, ExplanationStore(ray_root) as store:
        again = explain_on_ray(ds, store, nodes, llama, BASELINE, cfg, workers=2)
    assert again.done == 0 and again.skipped == len(nodes)


def test_each_worker_builds_its_own_endpoint_client(
    cluster: None, root: Path, llama: HookedDecoder, tmp_path: Path
) -> None:
    """The spec travels, not the client: workers reach the endpoint themselves."""
    for server in running():
        server.default = Reply(body=answer("digits and numbers"))
        spec = BackendSpec(server.base_url, "none", llm_model="test-model", embed=False)
        copy = _copy(root, tmp_path, "url")
        with Dataset(copy) as ds, ExplanationStore(copy) as store:
            nodes = select_nodes(ds, kinds=["mlp_neuron"], limit=3, seed=1)
            summary = explain_on_ray(ds, store, nodes, llama, spec, JobConfig(), workers=2)
        assert summary.done == 3 and server.attempts == 3
        rows = _rows(copy)
        assert {r[0] for r in rows.values()} == {server.base_url}
        assert {r[1] for r in rows.values()} == {"digits and numbers"}


def test_without_ray_the_command_says_how_to_install_it(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    copy = _copy(root, tmp_path, "noray")
    # The dataset's model is a random tiny one: the check that would refuse it comes after --ray's.
    monkeypatch.setattr("mechscope.models.loading.load_model", lambda _=None: tiny_model("llama"))
    res = CliRunner().invoke(
        main, ["explain", "--dataset", str(copy), "--ray", "--simulator", "none", "--limit", "2"]
    )
    assert res.exit_code == 1, res.output
    assert res.output.strip() == "Error: --ray needs Ray: pip install 'mechscope[ray]' (or pip install ray)"
