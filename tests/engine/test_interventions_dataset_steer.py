"""The dataset-mean op (a unit's mean over a collated dataset) and steering along a direction."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mechscope.data.collate import CollateConfig, collate
from mechscope.data.store import Dataset, Workspace
from mechscope.engine.interventions import (
    Intervention,
    Set,
    dataset_mean_units,
    intervention_hooks,
    resolve_dataset_means,
)
from mechscope.engine.lens import write_direction
from mechscope.engine.nodes import Node
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from tests.conftest import tiny_model
from tests.data._helpers import small_windows

PROMPT = "hello there"  # 12 tokens with BOS


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    tmp = tmp_path_factory.mktemp("ds")
    model = tiny_model("llama")
    windows = small_windows(model, tmp, window=16)
    root = collate(
        model, windows, Workspace(tmp / "dataset"), CollateConfig(window=16, top_k=5, batch=4), "tiny"
    )
    return Dataset(root)


def mean_of(ds: Dataset):  # type: ignore[no-untyped-def]
    return lambda kind, layer, index: ds.stats(kind, layer, index)["mean"]


def activation(model: HookedDecoder, ivs: list[Intervention], point: str) -> torch.Tensor:
    got = {}

    def keep(x: torch.Tensor, _hp: object) -> None:
        got["x"] = x.detach()

    with torch.no_grad(), model.hooks(fwd=[*intervention_hooks(model, ivs, 12), (point, keep)]):
        model.run(PROMPT)
    return got["x"][0]


def test_dataset_mean_sets_each_neuron_to_its_mean_over_the_dataset(dataset: Dataset, tmp_path: Path) -> None:
    model = tiny_model("llama")
    iv = Intervention.model_validate(
        {
            "target": {"kind": "mlp_neuron", "layer": 1, "index": [2, 5], "positions": [3]},
            "op": {"kind": "dataset_mean"},
        }
    )
    (resolved,) = resolve_dataset_means(model, [iv], mean_of(dataset))
    assert isinstance(resolved.op, Set) and resolved.target == iv.target
    # The dataset's mean is the mean of the unit's activation over the corpus' stream tokens.
    windows = small_windows(model, tmp_path, window=16)
    _, cache = model.run_with_cache(windows.tokens, names="blocks.1.mlp.post")
    acts = cache["blocks.1.mlp.post"][:, 1:]  # every window's stream tokens (BOS is not the corpus')
    expected = acts.reshape(-1, acts.shape[-1])[:, [2, 5]].mean(0)
    torch.testing.assert_close(torch.tensor(resolved.op.value), expected, atol=1e-4, rtol=1e-4)
    clean = activation(model, [], "blocks.1.mlp.post")
    edited = activation(model, [resolved], "blocks.1.mlp.post")
    torch.testing.assert_close(edited[3, [2, 5]], expected, atol=1e-4, rtol=1e-4)
    keep = torch.ones_like(clean, dtype=torch.bool)
    keep[3, [2, 5]] = False
    torch.testing.assert_close(edited[keep], clean[keep])  # nothing else moves (at this layer)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            {"kind": "attn_head", "layer": 0, "index": 1},
            "attn_head: its intervention site edits a 8-entry value",
        ),
        ({"kind": "attn_out", "layer": 0}, "not defined for kind attn_out"),
        ({"kind": "embedding"}, "not defined for kind embedding"),
        ({"kind": "attn_head", "layer": 0, "index": 1, "key": 0}, "pair"),
        ({"kind": "residual", "layer": 0}, "not the residual stream"),
    ],
)
def test_dataset_mean_is_refused_where_the_site_is_not_the_collated_scalar(
    target: dict, message: str, dataset: Dataset
) -> None:
    model = tiny_model("llama")
    iv = Intervention.model_validate({"target": target, "op": {"kind": "dataset_mean"}})
    with pytest.raises(InputError, match=rf"interventions\[0\]: .*{message}"):
        resolve_dataset_means(model, [iv], mean_of(dataset))


def test_dataset_mean_needs_a_dataset_and_cannot_run_unresolved() -> None:
    model = tiny_model("llama")
    iv = Intervention.model_validate(
        {"target": {"kind": "mlp_neuron", "layer": 0, "index": 1}, "op": {"kind": "dataset_mean"}}
    )
    assert dataset_mean_units(model, iv.target) == [1]
    with pytest.raises(InputError, match="needs a collated dataset, and none is loaded"):
        resolve_dataset_means(model, [iv], None)
    with pytest.raises(InputError, match="resolve it with resolve_dataset_means"):
        intervention_hooks(model, [iv], 12)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_steering_by_a_node_write_adds_coefficient_times_the_write(family: str) -> None:
    model = tiny_model(family)
    node = Node.parse("L0.mlp_neuron.3@0")
    write = write_direction(model, node)
    steer = Intervention.model_validate(
        {
            "target": {"kind": "residual", "layer": 1, "point": "resid_pre", "positions": [5, -1]},
            "op": {
                "kind": "steer",
                "coefficient": -2.5,
                "direction": {"kind": "node_write", "node": node.model_dump()},
            },
        }
    )
    add = Intervention.model_validate(
        {"target": steer.target.model_dump(), "op": {"kind": "add", "value": (-2.5 * write).tolist()}}
    )
    clean = activation(model, [], "blocks.1.resid_pre")
    steered = activation(model, [steer], "blocks.1.resid_pre")
    torch.testing.assert_close(steered, activation(model, [add], "blocks.1.resid_pre"))
    expected = clean.clone()
    expected[[5, 11]] += -2.5 * write
    torch.testing.assert_close(steered, expected)


def test_steering_by_a_normalized_vector_and_by_a_head_write_on_a_prompt() -> None:
    model = tiny_model("llama")
    d = model.cfg.d_model
    vec = torch.arange(d, dtype=torch.float32)
    steer = {
        "target": {"kind": "mlp_out", "layer": 0},
        "op": {
            "kind": "steer",
            "coefficient": 3.0,
            "normalize": True,
            "direction": {"kind": "vector", "vector": vec.tolist()},
        },
    }
    clean = activation(model, [], "blocks.0.mlp_out")
    torch.testing.assert_close(
        activation(model, [Intervention.model_validate(steer)], "blocks.0.mlp_out"),
        clean + 3.0 * vec / vec.norm(),
    )
    head = Node.parse("L0.attn_head.1@4")
    with pytest.raises(InputError, match="depends on the prompt"):
        activation(
            model,
            [
                Intervention.model_validate(
                    {
                        **steer,
                        "op": {**steer["op"], "direction": {"kind": "node_write", "node": head.model_dump()}},
                    }
                )
            ],
            "embed",
        )
    op = {
        "kind": "steer",
        "coefficient": 1.0,
        "direction": {"kind": "node_write", "node": head.model_dump(), "prompt": "abcdef"},
    }
    steered = activation(model, [Intervention.model_validate({**steer, "op": op})], "blocks.0.mlp_out")
    torch.testing.assert_close(steered, clean + write_direction(model, head, "abcdef"))


@pytest.mark.parametrize(
    ("target", "direction", "message"),
    [
        (
            {"kind": "mlp_neuron", "layer": 0, "index": 1},
            {"kind": "vector", "vector": [1.0] * 32},
            "adds a d_model .32. vector; this target's value has 1",
        ),
        (
            {"kind": "residual", "layer": 0},
            {"kind": "vector", "vector": [1.0, 2.0]},
            "vector has 2 entries; expected d_model = 32",
        ),
        (
            {"kind": "residual", "layer": 0},
            {"kind": "node_write", "node": {"kind": "attn_out", "layer": 0, "token": 1}},
            "direction.node: output tokens are defined for",
        ),
        (
            {"kind": "attn_head", "layer": 0, "index": 1, "key": 0},
            {"kind": "vector", "vector": [1.0] * 32},
            "not defined for a query-key pair",
        ),
    ],
)
def test_steering_errors_name_what_is_wrong(target: dict, direction: dict, message: str) -> None:
    model = tiny_model("llama")
    iv = Intervention.model_validate(
        {"target": target, "op": {"kind": "steer", "coefficient": 1.0, "direction": direction}}
    )
    with pytest.raises(InputError, match=rf"interventions\[0\]: .*{message}"):
        intervention_hooks(model, [iv], 12)
