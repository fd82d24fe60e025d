"""The debugger engine on the real SmolLM2 and the IOI prompt (slow). Numbers: docs/attribution.md."""

from __future__ import annotations

import pytest
import torch

import mechscope as ms
from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff
from mechscope.engine.patching import patch
from mechscope.engine.verify import ablation_effects, verify
from mechscope.models.decoder import HookedDecoder

pytestmark = pytest.mark.slow

IOI = "When Mary and John went to the store, John gave a drink to"
SWAPPED = "When John and Mary went to the store, Mary gave a drink to"
MARY_VS_JOHN = LogitDiff(targets=[" Mary"], distractors=[" John"])


@pytest.fixture(scope="module")
def model() -> HookedDecoder:
    return ms.load_model()


def test_top_heads_by_direct_effect_carry_the_answer(model: HookedDecoder) -> None:
    attr = attribute(model, IOI, MARY_VS_JOHN)
    assert attr.value > 2
    heads = sorted(
        attr.top_nodes(k=5, kinds=["attn_head"], by=("direct_effect",)), key=lambda r: -r.direct_effect
    )
    assert all(r.node.token == len(attr.token_ids) - 1 for r in heads[:3])  # name movers sit at the end
    ablated = attr.value - float(ablation_effects(attr, [r.node for r in heads[:3]], together=True)[0])
    assert ablated < attr.value / 2


def test_verification_correlates(model: HookedDecoder) -> None:
    v = verify(attribute(model, IOI, MARY_VS_JOHN), top_n=20)
    assert v.pearson is not None and v.pearson > 0.5
    assert v.spearman is not None and v.spearman > 0.3


def test_residual_patching_moves_from_the_names_to_the_end(model: HookedDecoder) -> None:
    res = patch(model, IOI, SWAPPED, MARY_VS_JOHN, site="resid_pre")
    grid = torch.tensor(res.values)
    names = [i for i, t in enumerate(res.columns) if t in (" Mary", " John")]
    last = len(res.columns) - 1
    assert grid[0, names].sum() > 0.8  # early on, the answer lives at the names
    assert grid[-1, last] > 0.8 and grid[-1, names].abs().max() < 0.2  # late, at the final token
    # Attribution patching agrees on where the information is at the first and last layers.
    est = torch.tensor(
        patch(model, IOI, SWAPPED, MARY_VS_JOHN, site="resid_pre", method="attribution").values
    )
    assert est[-1, last] > 0.5
