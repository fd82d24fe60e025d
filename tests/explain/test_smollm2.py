"""The honesty test on real models, for a synthetic digit neuron: the real sentence embedder
(MiniLM) scores the right explanation clearly above a wrong one; SmolLM2-135M as simulator and
judge gives a value or an absent score with its reason, never a made-up number (it is too weak to
keep to the simulator's format: docs/explanations.md)."""

from __future__ import annotations

import pytest

from mechscope.data.store import Dataset
from mechscope.explain.jobs import Backends, explain_node
from tests.explain._helpers import DIGIT_NODE, collated, digit_model

pytestmark = pytest.mark.slow


def test_smollm2_scores_the_right_explanation_above_a_wrong_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from mechscope.explain.backends import default_embedder
    from mechscope.explain.llm_local import LocalLLM
    from mechscope.explain.records import load_records
    from mechscope.explain.scoring import score_all
    from mechscope.explain.simulator import Simulator
    from mechscope.models.loading import load_model

    embed = default_embedder()
    if embed is None:
        pytest.skip("the MiniLM package is not installed (scripts/install.sh installs it)")
    llm = LocalLLM(load_model())
    subject = digit_model()
    root = collated(tmp_path_factory.mktemp("smollm2"), subject)
    with Dataset(root) as ds:
        recs = load_records(ds, *DIGIT_NODE, model=subject)
        right = score_all("numbers: digits such as 1, 7 or 1984", recs, Simulator(llm), llm, embed)
        wrong = score_all("the word 'the' and other articles", recs, Simulator(llm), llm, embed)
        r, w = right["embedding"], wrong["embedding"]
        assert r.value is not None and w.value is not None and r.value > w.value + 0.1, (r, w)
        for scores in (right, wrong):
            for name in ("simulation", "detection", "fuzzing"):
                s = scores[name]
                assert s.value is not None or (s.failure and s.n == 0), (name, s)
        # SmolLM2's own explanation, embedding-scored only (its simulations fail, as above)
        row = explain_node(ds, DIGIT_NODE, subject, Backends(explainer=llm, embed=embed))
        assert row.explanation is not None or row.failure is not None
