"""The explanations database: one row per node and backend, queries, and its place beside the dataset."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mechscope.errors import InputError
from mechscope.explain.store import DATABASE, ExplanationStore, StoredExplanation


def _row(
    unit: int,
    text: str | None,
    backend: str = "baseline",
    when: int = 0,
    sim: float | None = 0.5,
    scorer: str | None = "fake",
    emb: float | None = None,
) -> StoredExplanation:
    scores = {"simulation": {"value": sim, "n": 2, "lo": 0.1, "hi": 0.9, "failure": None}}
    if emb is not None:
        scores["embedding"] = {"value": emb, "n": 9, "lo": 0.1, "hi": 0.9, "failure": None}
    return StoredExplanation(
        kind="mlp_neuron", layer=1, unit=unit, backend=backend, model="-", prompt_version="v",
        explainer="baseline", explanation=text, failure=None if text else "no activating train records",
        scorer=scorer, scorer_model="m" if scorer else None, dataset="fp", train_windows=[1, 3], test_windows=[2, 4],
        scores=scores,
        created=datetime(2026, 1, 1) + timedelta(minutes=when),
    )  # fmt: skip


def test_the_shown_explanation_is_the_best_embedded_then_the_newest(tmp_path: Path) -> None:
    """A small local LLM's newer text does not hide a baseline that retrieves its contexts better;
    an embedding-scored row beats an unscored one; among equals (or none scored) the newest wins."""
    with ExplanationStore(tmp_path) as store:
        store.add(_row(0, "fires on digits", when=0, emb=0.8))
        store.add(_row(0, "a fictional unit", backend="local", when=5, emb=0.6))
        store.add(_row(1, "fires on ' the'", when=0))
        store.add(_row(1, "articles", backend="local", when=5, emb=0.55))
        store.add(_row(2, "fires on ' a'", when=0))
        store.add(_row(2, "indefinite articles", backend="local", when=5))
        store.add(_row(2, None, backend="http://x", when=9))  # a failure is never shown over a text
        want = {0: "fires on digits", 1: "articles", 2: "indefinite articles"}
        for unit, text in want.items():
            row = store.latest("mlp_neuron", 1, unit)
            assert row is not None and row["explanation"] == text
        many = store.latest_many([("mlp_neuron", 1, u) for u in want])
        assert {k[2]: r["explanation"] for k, r in many.items()} == want


def test_rows_queries_and_replacement(tmp_path: Path) -> None:
    with ExplanationStore(tmp_path) as store:
        store.add(_row(0, "fires on 100% of digits", when=0, sim=0.9))
        store.add(_row(1, "fires on ' the'", when=1))
        store.add(_row(1, "fires on ' the', after ' of'", backend="http://x", when=2))
        store.add(_row(2, None, when=3))
        store.add(_row(0, "fires on digits_", when=4, sim=0.7))  # the same key: replaced, not duplicated
        assert store.count() == 4
        assert store.done("baseline", "-", "v", "fake", "m") == {
            ("mlp_neuron", 1, 0),
            ("mlp_neuron", 1, 1),
            ("mlp_neuron", 1, 2),
        }
        # Scored without an LLM: another row, and not done for the LLM-scored job (nor it for this).
        store.add(_row(3, "fires on ' a'", when=5, scorer=None))
        assert store.done("baseline", "-", "v", None, None) == {("mlp_neuron", 1, 3)}
        unscored = store.latest("mlp_neuron", 1, 3)
        assert unscored is not None and unscored["scorer"] is None and unscored["scorer_model"] is None
        assert store.count() == 5
        latest = store.latest("mlp_neuron", 1, 1)
        assert latest is not None and latest["backend"] == "http://x"
        assert latest["scores"]["simulation"]["n"] == 2 and latest["train_windows"] == [1, 3]
        many = store.latest_many([("mlp_neuron", 1, 0), ("mlp_neuron", 1, 2), ("mlp_neuron", 1, 9)])
        assert set(many) == {("mlp_neuron", 1, 0), ("mlp_neuron", 1, 2)}
        assert many[("mlp_neuron", 1, 0)]["explanation"] == "fires on digits_"
        assert many[("mlp_neuron", 1, 2)]["explanation"] is None  # a failure is a row too
        assert [r["unit"] for r in store.search("THE")] == [1, 1]
        assert store.search("100%") == [] and [r["unit"] for r in store.search("digits_")] == [0]
        with pytest.raises(InputError):
            store.search("  ")
        every = store.of_kinds(["mlp_neuron"])
        assert [(r["unit"], r["backend"]) for r in every] == [
            (0, "baseline"), (1, "baseline"), (1, "http://x"), (2, "baseline"), (3, "baseline")
        ]  # fmt: skip
        assert every[0]["scores"]["simulation"]["value"] == 0.7 and store.of_kinds(["attn_head"]) == []
    assert (tmp_path / DATABASE).is_file()


def test_read_only_needs_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no explanations yet"):
        ExplanationStore(tmp_path, read_only=True)


def test_nearest_ranks_each_node_by_cosine(tmp_path: Path) -> None:
    def row(unit: int, vec: list[float] | None, when: int, text: str | None = "x") -> StoredExplanation:
        base = _row(unit, text, when=when)
        return StoredExplanation(**{**base.__dict__, "explanation_vector": vec})

    s = 2**-0.5
    with ExplanationStore(tmp_path) as store:
        store.add(row(0, [1.0, 0.0], 0))
        store.add(row(1, [s, s], 1))
        other = _row(1, "w", backend="http://y", when=3)  # the same node by another backend
        store.add(StoredExplanation(**{**other.__dict__, "explanation_vector": [0.0, 1.0]}))
        store.add(row(2, None, 4))  # explained without an embedder: not searched
        store.add(row(3, [1.0, 0.0], 5, text=None))  # a failed explanation: not searched
        store.add(row(4, [1.0, 0.0, 0.0], 6))  # another embedder's vector: not comparable, not searched
        hits = store.nearest([0.0, 1.0], 10)
        # node 1 once, by its closest explanation; then node 0; vectors never come back
        assert [(h["unit"], h["explanation"]) for h in hits] == [(1, "w"), (0, "x")]
        assert hits[0]["similarity"] == pytest.approx(1.0) and hits[1]["similarity"] == pytest.approx(0.0)
        latest = store.latest("mlp_neuron", 1, 0)
        assert (
            latest is not None and "explanation_vector" not in latest and "explanation_vector" not in hits[0]
        )
        assert [h["unit"] for h in store.nearest([1.0, 0.0], 1)] == [0]
