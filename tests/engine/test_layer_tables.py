"""Neurons and head pairs are scored layer by layer and never stored whole (engine/metrics.py:
LayerTable): what the node table reads from them must equal the dense answer, however batched."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine import metrics
from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff, NodeDirection
from mechscope.engine.interventions import Intervention, Scale
from mechscope.engine.kinds import head, neuron
from mechscope.engine.metrics import CANDIDATES, METRIC_NAMES, SIGNED
from mechscope.engine.nodes import Node
from tests.conftest import tiny_model

PROMPT = "the cat sat on the mat and then the dog sat on the cat"
TARGETS = LogitDiff(targets=[" "], distractors=["a", "b"])


def dense_top(t: torch.Tensor, k: int, largest: bool) -> list[float]:
    return sorted(t.reshape(-1).topk(k, largest=largest).values.tolist())


@pytest.mark.parametrize("family", ["llama", "gemma3"])
@pytest.mark.parametrize("step", [1, 10**9])  # one layer per step, or every layer in one
@pytest.mark.parametrize("window", [1, 10**9])  # pairs: 8 query windows (the last ragged), or one
@pytest.mark.parametrize("table", ["pairs", "neurons"])
def test_extremes_values_and_sums_equal_the_dense_tensors(
    family: str, step: int, window: int, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "STEP_ENTRIES", step)
    monkeypatch.setattr(metrics, "WHOLE_ENTRIES", 0 if step == 1 else 10**9)
    monkeypatch.setattr(metrics, "WINDOW_FROM", window)
    model = tiny_model(family)
    attr = attribute(model, PROMPT, TARGETS)
    t = attr.metrics["attn_head"].pairs if table == "pairs" else attr.metrics["mlp_neuron"]
    assert isinstance(t, head.PairTable if table == "pairs" else neuron.NeuronTable)
    steps = t.steps()
    windows = {(s.start, s.stop) for s in steps}
    assert len(windows) == (8 if table == "pairs" and window == 1 else 1), windows
    assert len(steps) == len(windows) * (2 if step == 1 else 1)  # two layers: one a step, or both
    for k in (1, 5, CANDIDATES + 3):  # the last scores the table again, keeping more
        for metric in METRIC_NAMES:
            for largest in (True, False) if metric in SIGNED else (True,):
                flat = t.top(metric, k, largest)
                assert flat is not None
                got = [v[METRIC_NAMES.index(metric)] for v in t.values(flat)]
                want = dense_top(getattr(t, metric), k, largest)
                torch.testing.assert_close(sorted(got), want, atol=1e-6, rtol=1e-5)
    # Any entry's four values, as the dense tensors hold them.
    flat = torch.randint(0, t.write_norm.numel(), (200,), generator=torch.Generator().manual_seed(0))
    for metric, column in zip(METRIC_NAMES, zip(*t.values(flat), strict=True), strict=True):
        torch.testing.assert_close(
            torch.tensor(column), getattr(t, metric).reshape(-1)[flat], atol=1e-6, rtol=1e-5
        )
    summed = (0, 1, 2) if table == "pairs" else (0, 2)  # what each key receives; each token's MLP
    for metric, sums in t.sums.items():
        torch.testing.assert_close(sums, getattr(t, metric).sum(summed), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_batched_layers_score_like_one_layer_at_a_time(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # One layer and 8 query windows a step, against every layer and every query in one.
    model = tiny_model(family)
    monkeypatch.setattr(metrics, "STEP_ENTRIES", 1)
    monkeypatch.setattr(metrics, "WHOLE_ENTRIES", 0)
    monkeypatch.setattr(metrics, "WINDOW_FROM", 1)
    one = attribute(model, PROMPT, TARGETS)
    monkeypatch.setattr(metrics, "STEP_ENTRIES", 10**9)
    monkeypatch.setattr(metrics, "WINDOW_FROM", 10**9)
    batched = attribute(model, PROMPT, TARGETS)
    for metric in METRIC_NAMES:
        a, b = getattr(one.metrics["attn_head"], metric), getattr(batched.metrics["attn_head"], metric)
        torch.testing.assert_close(a, b)
    # (Ranked by total effect: the activations of pairs tie at 1.0, where either pick is right.)
    by = ("total_effect",)
    assert [r.label for r in one.top_nodes(5, by=by)] == [r.label for r in batched.top_nodes(5, by=by)]


def test_layers_downstream_of_a_traced_node_have_no_pairs() -> None:
    model = tiny_model("llama")
    node = Node(kind="mlp_neuron", layer=0, index=3, token=4)
    attr = attribute(model, PROMPT, NodeDirection(node=node))
    pairs = attr.metrics["attn_head"].pairs
    assert isinstance(pairs, head.PairTable)
    assert float(pairs.total_effect[1:].abs().sum()) == 0.0  # block 1 lies after the traced neuron
    later = Node(kind="attn_head", layer=1, index=0, token=4, key=2)
    row = attr.node_metrics(later)
    assert (row.activation, row.write_norm, row.direct_effect, row.total_effect) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("family", ["llama", "gpt2", "neox", "gemma3"])
def test_rebuilt_patterns_equal_the_recorded_ones(family: str) -> None:
    # Without interventions the forward keeps its fused attention and pairs are rebuilt from
    # q, k, v and z's gradient; any intervention (here one that changes nothing) records the
    # pattern and its gradient instead. Both must give every head and pair metric alike.
    model = tiny_model(family)
    noop = Intervention.on_node(Node(kind="mlp_neuron", layer=0, index=0, token=0), Scale(factor=1.0))
    rebuilt = attribute(model, PROMPT, TARGETS).metrics["attn_head"]
    recorded = attribute(model, PROMPT, TARGETS, interventions=[noop]).metrics["attn_head"]
    assert rebuilt.pairs is not None and recorded.pairs is not None
    for metric in METRIC_NAMES:
        torch.testing.assert_close(getattr(rebuilt, metric), getattr(recorded, metric), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(
            getattr(rebuilt.pairs, metric), getattr(recorded.pairs, metric), atol=1e-5, rtol=1e-4
        )
