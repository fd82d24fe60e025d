"""The honesty test on a real model: SmolLM2 (through the local backend) simulates and judges a
synthetic digit neuron; the right explanation must beat a wrong one. Runs once the local backend
(mechscope.explain.llm_local) is in the tree."""

from __future__ import annotations

import importlib.util

import pytest

from mechscope.data.store import Dataset
from mechscope.explain.jobs import Backends, explain_node
from tests.explain._helpers import DIGIT_NODE, collated, digit_model

pytestmark = pytest.mark.slow


def test_smollm2_scores_the_right_explanation_above_a_wrong_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if importlib.util.find_spec("mechscope.explain.llm_local") is None:
        pytest.skip("mechscope.explain.llm_local (the local LLM backend) is not in this tree yet")
    from mechscope.explain.llm_local import LocalLLM

    from mechscope.explain.records import load_records
    from mechscope.explain.scoring import score_all
    from mechscope.explain.simulator import Simulator
    from mechscope.models.loading import load_model

    llm = LocalLLM(load_model())
    subject = digit_model()
    root = collated(tmp_path_factory.mktemp("smollm2"), subject)
    with Dataset(root) as ds:
        recs = load_records(ds, *DIGIT_NODE, model=subject)
        right = score_all("numbers: digits such as 1, 7 or 1984", recs, Simulator(llm), llm, None)
        wrong = score_all("the word 'the' and other articles", recs, Simulator(llm), llm, None)
        assert right["simulation"].value is not None and wrong["simulation"].value is not None
        assert right["simulation"].value > wrong["simulation"].value + 0.1
        row = explain_node(ds, DIGIT_NODE, subject, Backends(explainer=llm, scorer=llm))
        assert row.explanation is not None or row.failure is not None
