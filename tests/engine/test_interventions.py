"""Interventions: each op on each target, serialisation and errors."""

from __future__ import annotations

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from mechscope.engine.interventions import Intervention, intervention_hooks
from mechscope.engine.nodes import Node
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from tests.conftest import tiny_model

PROMPT = "hello there"  # 12 tokens with BOS


def run(model: HookedDecoder, specs: list[dict], point: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the activation at ``point`` with the interventions applied."""
    ivs = [Intervention.model_validate(s) for s in specs]
    hooks = intervention_hooks(model, ivs, 12)
    got = {}

    def keep(x: torch.Tensor, hp: object) -> None:
        got["x"] = x.detach()

    with torch.no_grad(), model.hooks(fwd=[*hooks, (point, keep)]):
        logits = model.run(PROMPT)
    return logits, got["x"]


def test_zero_neuron_equals_a_raw_hook_and_leaves_other_positions() -> None:
    model = tiny_model("llama")
    base, act0 = run(model, [], "blocks.0.mlp.post")
    spec = {
        "target": {"kind": "mlp_neuron", "layer": 0, "index": [3, 5], "positions": [2, -1]},
        "op": {"kind": "zero"},
    }
    logits, act = run(model, [spec], "blocks.0.mlp.post")
    assert act[0, [2, 11]][:, [3, 5]].abs().sum() == 0
    expected = act0.clone()
    expected[0, 2, [3, 5]] = 0
    expected[0, 11, [3, 5]] = 0
    torch.testing.assert_close(act, expected)
    assert not torch.allclose(logits, base)


@pytest.mark.parametrize(
    ("op", "check"),
    [
        ({"kind": "scale", "factor": 2.0}, lambda new, old: torch.allclose(new, old * 2)),
        ({"kind": "set", "value": 1.5}, lambda new, old: bool((new == 1.5).all())),
        ({"kind": "add", "value": 0.25}, lambda new, old: torch.allclose(new, old + 0.25)),
    ],
)
def test_scalar_ops_on_neurons(op: dict, check: object) -> None:
    model = tiny_model("gpt2")
    _, old = run(model, [], "blocks.1.mlp.post")
    spec = {"target": {"kind": "mlp_neuron", "layer": 1, "index": 7}, "op": op}
    _, new = run(model, [spec], "blocks.1.mlp.post")
    assert check(new[..., 7], old[..., 7])  # type: ignore[operator]
    torch.testing.assert_close(new[..., :7], old[..., :7])


def test_steering_vector_on_the_residual_and_mean_over_a_reference_batch() -> None:
    model = tiny_model("llama")
    vec = [0.1] * model.cfg.d_model
    spec = {
        "target": {"kind": "residual", "layer": 1, "point": "resid_pre", "positions": [-1]},
        "op": {"kind": "add", "value": vec},
    }
    _, old = run(model, [], "blocks.1.resid_pre")
    _, new = run(model, [spec], "blocks.1.resid_pre")
    torch.testing.assert_close(new[0, -1], old[0, -1] + 0.1)
    torch.testing.assert_close(new[0, :-1], old[0, :-1])
    mean = {
        "target": {"kind": "attn_head", "layer": 0, "head": 2},
        "op": {"kind": "mean", "reference": ["abc", "de"]},
    }
    _, z = run(model, [mean], "blocks.0.attn.z")
    _, cache = model.run_with_cache(["abc", "de"], names="blocks.0.attn.z")
    ref = cache["blocks.0.attn.z"]  # left-padded: row 1 has one padding position
    expected = torch.cat([ref[0, :, 2], ref[1, 1:, 2]]).mean(0)
    torch.testing.assert_close(z[0, :, 2], expected.expand(12, -1))


def test_resample_from_a_prompt_aligned_on_the_last_token() -> None:
    model = tiny_model("llama")
    spec = {
        "target": {"kind": "mlp_neuron", "layer": 0, "index": 1, "positions": [-2, -1]},
        "op": {"kind": "resample", "prompt": "xyz"},
    }
    _, act = run(model, [spec], "blocks.0.mlp.post")
    _, other = model.run_with_cache("xyz", names="blocks.0.mlp.post")
    torch.testing.assert_close(act[0, 10:, 1], other["blocks.0.mlp.post"][0, 2:, 1])


def test_query_key_pair_with_renormalisation() -> None:
    model = tiny_model("llama")
    spec = {
        "target": {
            "kind": "attn_head",
            "layer": 1,
            "head": 0,
            "key": 0,
            "positions": [5, 6],
            "renormalize": True,
        },
        "op": {"kind": "zero"},
    }
    _, pattern = run(model, [spec], "blocks.1.attn.pattern")
    assert pattern[0, 0, [5, 6], 0].abs().max() == 0
    torch.testing.assert_close(pattern[0, 0].sum(-1), torch.ones(12))


def test_interventions_work_while_generating() -> None:
    model = tiny_model("llama")
    spec = Intervention.model_validate(
        {"target": {"kind": "mlp_neuron", "layer": 0, "index": 0}, "op": {"kind": "zero"}}
    )
    seen = []

    def check(x: torch.Tensor, hp: object) -> None:
        seen.append(float(x[..., 0].abs().max()))

    hooks = intervention_hooks(model, [spec], 12)
    with model.hooks(fwd=[*hooks, ("blocks.0.mlp.post", check)]):
        model.generate(PROMPT, max_new_tokens=3)
    assert len(seen) == 3 and max(seen) == 0


def test_specs_round_trip_as_json_and_errors_name_the_field() -> None:
    adapter = TypeAdapter(list[Intervention])
    specs = adapter.validate_json(
        '[{"target": {"kind": "attn_head", "layer": 1, "head": 2, "positions": [3]}, "op": {"kind": "scale", "factor": 0.5}}]'
    )
    assert adapter.validate_json(adapter.dump_json(specs)) == specs
    with pytest.raises(ValidationError):  # not a kind name at all
        Intervention.model_validate(
            {"target": {"kind": "Neuron!", "layer": 0, "index": 1}, "op": {"kind": "zero"}}
        )
    model = tiny_model("llama")
    bad = [
        (
            {"kind": "neuron", "layer": 0, "index": 1},
            {"kind": "zero"},
            "unknown node kind 'neuron'; allowed: mlp",
        ),
        ({"kind": "mlp_neuron", "layer": 0}, {"kind": "zero"}, "index is required for kind mlp_neuron"),
        ({"kind": "embedding", "layer": 0}, {"kind": "zero"}, "layer is not allowed for kind embedding"),
        (
            {"kind": "mlp_neuron", "layer": 0, "index": 1, "key": 0},
            {"kind": "zero"},
            "has no .query, key. pairs",
        ),
        ({"kind": "mlp_neuron", "layer": 9, "index": 0}, {"kind": "zero"}, "layer 9 out of range"),
        ({"kind": "mlp_neuron", "layer": 0, "index": 999}, {"kind": "zero"}, "index 999 out of range"),
        ({"kind": "attn_head", "layer": 0, "head": 0, "positions": [40]}, {"kind": "zero"}, "positions: 40"),
        ({"kind": "residual", "layer": 0}, {"kind": "add", "value": [1.0, 2.0]}, "expected 1 or 32"),
        (
            {"kind": "attn_head", "layer": 0, "head": 0, "key": 3},
            {"kind": "mean", "reference": ["a"]},
            "not defined",
        ),
    ]
    for i, (target, op, message) in enumerate(bad):
        with pytest.raises(InputError, match=rf"interventions\[0\]: .*{message}"):
            intervention_hooks(model, [Intervention.model_validate({"target": target, "op": op})], 12)
        del i
    assert Node.parse("L1.attn_head.2@5<-3") == Node(kind="attn_head", layer=1, index=2, token=5, key=3)


@pytest.mark.parametrize(
    ("node", "point", "index"),
    [
        ("L1.mlp_neuron.7@4", "blocks.1.mlp.post", (0, 4, 7)),
        ("L0.attn_head.2@5", "blocks.0.attn.z", (0, 5, 2)),
        ("L1.attn_head.3@6<-2", "blocks.1.attn.pattern", (0, 3, 6, 2)),
        ("L0.attn_out@3", "blocks.0.attn_out", (0, 3)),
        ("L1.mlp_out@9", "blocks.1.mlp_out", (0, 9)),
        ("embedding@1", "embed", (0, 1)),
    ],
)
def test_on_node_zeroes_exactly_that_node(node: str, point: str, index: tuple[int, ...]) -> None:
    model = tiny_model("llama")
    iv = Intervention.on_node(Node.parse(node))
    assert Intervention.model_validate_json(iv.model_dump_json()) == iv  # travels as JSON
    _, clean = run(model, [], point)
    _, edited = run(model, [iv.model_dump()], point)
    assert edited[index].abs().sum() == 0
    expected = clean.clone()
    expected[index] = 0
    torch.testing.assert_close(edited, expected)
