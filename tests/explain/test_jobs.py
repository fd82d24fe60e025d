"""The whole pipeline on a collated dataset: baseline and LLM explainers, the honesty test, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mechscope.data.store import Dataset
from mechscope.explain.explainer import clean_explanation, explain_baseline
from mechscope.explain.jobs import Backends, explain_node, run_job, select_nodes
from mechscope.explain.records import load_records
from mechscope.explain.store import ExplanationStore
from mechscope.models.decoder import HookedDecoder
from tests.explain._helpers import DIGIT_NODE
from tests.explain.fake_llm import RuleFake

ROOT = Path(__file__).resolve().parents[2]


def test_clean_explanation() -> None:
    assert clean_explanation("The main thing this neuron does is find digits.\nMore") == "digits"
    assert clean_explanation("This unit fires on 'the' after of") == "'the' after of"
    assert clean_explanation("  \n  ") is None
    assert clean_explanation('"closing brackets"') == "closing brackets"


def test_baseline_names_the_peak_tokens_and_promoted_ones(digit_ds: Dataset, digit: HookedDecoder) -> None:
    recs = load_records(digit_ds, *DIGIT_NODE, model=digit)
    e = explain_baseline(recs, ["x", "y"])
    assert e.text is not None and e.text.startswith("fires on '") and "promotes 'x', 'y'" in e.text
    peak_tokens = {r.tokens[r.peak] for r in recs.train}
    assert peak_tokens <= set("0123456789") and any(f"'{t}'" in e.text for t in peak_tokens)
    head = explain_baseline(load_records(digit_ds, "attn_head", 1, 2, model=digit))
    assert head.text is not None and head.text.startswith("attends from")


def _score(row: object, name: str) -> float:
    value = row.scores[name]["value"]  # type: ignore[attr-defined]
    assert value is not None, row.scores[name]  # type: ignore[attr-defined]
    return float(value)


def test_honesty_right_explanation_scores_clearly_above_a_wrong_one(
    digit_ds: Dataset, digit: HookedDecoder
) -> None:
    """The digit neuron through records, explainer, simulator, judges and store, with a
    rule-following fake LLM: the explanation "digits" must beat "vowels" on every score, and by
    more than the intervals' overlap."""
    rows = {}
    for expl in ("digits", "vowels"):
        fake = RuleFake(explanation=expl)
        rows[expl] = explain_node(digit_ds, DIGIT_NODE, digit, Backends(explainer=fake, scorer=fake))
        assert rows[expl].explanation == expl  # the answer's preamble and second line are cleaned off
    right, wrong = rows["digits"], rows["vowels"]
    for name in ("simulation", "detection", "fuzzing"):
        assert _score(right, name) > _score(wrong, name) + 0.3, name
        assert right.scores[name]["lo"] > wrong.scores[name]["hi"], name
        assert right.scores[name]["n"] >= 10
    assert _score(right, "simulation") > 0.9 and _score(right, "detection") == 1.0


def test_job_stores_one_row_per_node_and_skips_done_ones(
    tmp_path: Path, digit_root: Path, digit: HookedDecoder
) -> None:
    with Dataset(digit_root) as ds, ExplanationStore(tmp_path) as store:
        nodes = select_nodes(ds, ["mlp_neuron"], [0], limit=5, seed=1)
        assert len(nodes) == 5 and nodes == sorted(nodes)
        first = run_job(ds, store, nodes[:3], digit, Backends(), workers=2)
        assert (first.done, first.skipped) == (3, 0)
        second = run_job(ds, store, nodes, digit, Backends(), workers=1)
        assert (second.done, second.skipped) == (2, 3)
        assert store.count() == 5
        row = store.latest(*nodes[0])
        assert (
            row is not None and row["backend"] == "baseline" and row["scores"]["simulation"]["value"] is None
        )


SCRIPT = """
import sys
from pathlib import Path
from mechscope.data.store import Dataset
from mechscope.explain.jobs import Backends, run_job, select_nodes
from mechscope.explain.store import ExplanationStore
from tests.explain._helpers import digit_model
from tests.explain.fake_llm import RuleFake

root, delay = Path(sys.argv[1]), float(sys.argv[2])
fake = RuleFake(delay=delay)
with Dataset(root) as ds, ExplanationStore(root) as store:
    nodes = select_nodes(ds, ["mlp_neuron"], [0, 1], limit=8, seed=0)
    s = run_job(ds, store, nodes, digit_model(), Backends(explainer=fake, scorer=fake),
                on_node=lambda r: print("DONE", r.kind, r.layer, r.unit, flush=True))
    print("SUMMARY", s.done, s.skipped, flush=True)
"""


def test_kill_9_midway_then_rerun_loses_nothing_and_repeats_nothing(tmp_path: Path, digit_root: Path) -> None:
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(digit_root, root, ignore=shutil.ignore_patterns("explanations.duckdb*"))
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(root), "0.002"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    before: list[str] = []
    deadline = time.monotonic() + 120
    try:
        assert proc.stdout is not None
        while len(before) < 3 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the job ended before it could be killed"
            before.append(line.split(" ", 1)[1].strip())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert len(before) == 3
    rerun = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), "0"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    redone = [ln.split(" ", 1)[1] for ln in rerun.stdout.splitlines() if ln.startswith("DONE")]
    summary = rerun.stdout.splitlines()[-1].split()
    assert not set(before) & set(redone), "a node stored before the kill was explained again"
    assert int(summary[1]) == len(redone) and int(summary[2]) >= 3 and int(summary[1]) + int(summary[2]) == 8
    with ExplanationStore(root, read_only=True) as store:
        assert store.count() == 8
        for key in before:
            kind, layer, unit = key.split()
            row = store.latest(kind, int(layer), int(unit))
            assert row is not None and row["explanation"] == "digits"


@pytest.mark.parametrize("mode", ["generate", "json"])
def test_pipeline_without_prompt_logprobs(digit_ds: Dataset, digit: HookedDecoder, mode: str) -> None:
    fake = RuleFake(mode=mode)
    row = explain_node(digit_ds, DIGIT_NODE, digit, Backends(explainer=fake, scorer=fake))
    assert row.scores["simulation"]["method"] == ("generation" if mode == "generate" else "json")
    assert _score(row, "simulation") > 0.9


def test_head_explainer_shows_query_and_key_pairs(digit_ds: Dataset, digit: HookedDecoder) -> None:
    from mechscope.explain import prompts

    fake = RuleFake(explanation="attends to the previous space from letters")
    row = explain_node(digit_ds, ("attn_head", 1, 2), digit, Backends(explainer=fake))
    assert row.explanation == "attends to the previous space from letters"
    final = fake.prompts[0][-1].content
    assert fake.prompts[0][0].content == prompts.EXPLAIN_HEAD_SYSTEM
    assert final.count("[[") == len(row.train_windows) and "**" in final


def test_a_job_finds_the_simulation_method_once(
    tmp_path: Path, digit_root: Path, digit: HookedDecoder
) -> None:
    """An endpoint without logprobs: the first node tries prompt logprobs and generation, the
    others go straight to JSON (no wasted generation call per node)."""
    fake = RuleFake(mode="json")
    with Dataset(digit_root) as ds, ExplanationStore(tmp_path) as store:
        nodes = select_nodes(ds, ["mlp_neuron"], [0], limit=3, seed=0)
        run_job(ds, store, nodes, digit, Backends(explainer=fake, scorer=fake), workers=1)
        assert fake.calls["prompt"] == 1 and fake.calls["generate"] == 1 and fake.calls["json"] > 3
        row = store.latest(*nodes[-1])
        assert row is not None and row["scores"]["simulation"]["method"] == "json"
