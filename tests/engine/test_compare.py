"""Two-run comparisons: ablated vs baseline, and prompts of different lengths."""

from __future__ import annotations

import pytest

from mechscope.engine.attribution import attribute
from mechscope.engine.compare import Run, align_positions, compare
from mechscope.engine.directions import LogitDiff, NodeDirection
from mechscope.engine.interventions import Intervention
from mechscope.engine.nodes import Node
from mechscope.engine.verify import ablation_effects
from mechscope.errors import InputError
from tests.conftest import tiny_model

PROMPT = "the cat sat on"  # 15 tokens with BOS
DIRECTION = LogitDiff(targets=[" "], distractors=["a"])


def test_ablated_vs_baseline() -> None:
    model = tiny_model("llama")
    node = Node.parse("L1.attn_head.2@14")
    ablate = Run(prompt=PROMPT, interventions=[Intervention.on_node(node)])
    cmp = compare(model, Run(prompt=PROMPT), ablate, DIRECTION)
    base = attribute(model, PROMPT, DIRECTION)
    assert cmp.left.value == pytest.approx(base.value, abs=1e-6)
    assert cmp.value_diff == pytest.approx(-float(ablation_effects(base, [node])[0]), abs=1e-5)
    assert cmp.alignment == [(i, i) for i in range(15)]
    summary = cmp.summary(k=5)
    assert summary.value_diff == pytest.approx(cmp.value_diff)
    # The ablated head has no activation on the right.
    right = cmp.right.node_metrics(node)
    assert right.activation == 0 and right.total_effect == 0
    pinned = {c.token for c in summary.candidates}
    assert {" ", "a"} <= pinned
    assert all(c.left_logit is not None and c.right_logit is not None for c in summary.candidates)
    assert Run.model_validate_json(ablate.model_dump_json()) == ablate


def test_prompts_of_different_lengths_align_on_the_last_token() -> None:
    model = tiny_model("gpt2")
    ids = model.tokenizer.encode("so the cat sat on")  # type: ignore[union-attr]
    cmp = compare(model, Run(prompt=PROMPT), Run(prompt=ids), DIRECTION)
    assert cmp.alignment[-1] == (14, 17) and cmp.alignment[0] == (0, 3) and len(cmp.alignment) == 15
    assert cmp.right.objective.position == 17
    summary = cmp.summary(k=5)
    for pair in summary.nodes:
        if pair.left is not None and pair.right is not None:
            assert pair.right.node.token == pair.left.node.token + 3
            assert pair.total_effect_diff == pytest.approx(pair.right.total_effect - pair.left.total_effect)
    assert any(p.left is not None and p.right is not None for p in summary.nodes)


def test_left_only_positions_have_no_partner() -> None:
    model = tiny_model("gpt2")
    cmp = compare(model, Run(prompt="so the cat sat on"), Run(prompt=PROMPT), DIRECTION)
    assert cmp.aligned(Node.parse("L0.mlp_neuron.1@2"), "right") is None
    assert cmp.aligned(Node.parse("L0.attn_head.1@10<-1"), "right") is None
    assert cmp.aligned(Node.parse("L0.attn_head.1@10<-5"), "right") == Node.parse("L0.attn_head.1@7<-2")


def test_explicit_alignment_moves_positions_of_the_direction() -> None:
    model = tiny_model("llama")
    direction = LogitDiff(targets=["t"], position=4)
    cmp = compare(model, Run(prompt=PROMPT), Run(prompt=PROMPT), direction, align=[(4, 9), (1, 1)])
    assert cmp.right.objective.position == 9
    traced = NodeDirection(node=Node.parse("L1.mlp_neuron.3@4"))
    cmp = compare(model, Run(prompt=PROMPT), Run(prompt=PROMPT), traced, align=[(4, 6)])
    assert cmp.right.objective.position == 6


@pytest.mark.parametrize(
    ("align", "message"),
    [
        ([(0, 40)], "out of range"),
        ([(1, 1), (1, 2)], "one pair only"),
        ([], "at least one"),
    ],
)
def test_bad_alignments_are_refused(align: list[tuple[int, int]], message: str) -> None:
    with pytest.raises(InputError, match=message):
        align_positions(15, 15, align)


def test_a_direction_position_without_a_partner_is_refused() -> None:
    model = tiny_model("llama")
    with pytest.raises(InputError, match="no aligned position"):
        compare(
            model,
            Run(prompt=PROMPT),
            Run(prompt=PROMPT),
            LogitDiff(targets=["t"], position=3),
            align=[(1, 1)],
        )
