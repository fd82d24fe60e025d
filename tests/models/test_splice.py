"""Modules spliced in at hook points: they run after the point's hooks, their own hook points are
named by module path, they leave with unsplice, and a spliced module can contribute a node kind."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mechscope.engine.kinds import kinds_of, register_spliced, unregister_spliced
from mechscope.errors import HookError
from mechscope.models.hooks import HookPoint
from tests.conftest import tiny_model
from tests.engine.toy_kind import TOY


class Recon(nn.Module):
    """A low-rank reconstruction with its error added back: the output equals the input, as a
    dictionary spliced in with its error term does, and its parts are hook points."""

    def __init__(self, d: int, rank: int = 3) -> None:
        super().__init__()
        self.enc = nn.Linear(d, rank)
        self.dec = nn.Linear(rank, d)
        self.acts = HookPoint()
        self.recon = HookPoint()
        self.error = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.enc(x))
        error = self.error(x - self.dec(pre))  # of the unedited reconstruction: edits pass through
        recon = self.recon(self.dec(self.acts(pre)))
        return recon + error


def test_splice_keeps_logits_names_its_points_and_unsplices() -> None:
    register_spliced(Recon, lambda _m, _p, _n: TOY)  # the dictionaries describe their latents so
    try:
        _splice_round_trip()
    finally:
        unregister_spliced(Recon)


def _splice_round_trip() -> None:
    model = tiny_model("llama")
    tokens = torch.tensor([[1, 5, 7, 2, 9]])
    clean = model(tokens)
    with model.spliced("blocks.1.resid_mid", Recon(model.cfg.d_model), "sae"):
        names = model.hook_names()
        assert {
            "blocks.1.resid_mid.sae.acts",
            "blocks.1.resid_mid.sae.recon",
            "blocks.1.resid_mid.sae.error",
        } <= set(names)
        logits, cache = model.run_with_cache(tokens, names="blocks.1.resid_mid.sae.*")
        torch.testing.assert_close(logits, clean, atol=1e-5, rtol=1e-5)
        assert cache["blocks.1.resid_mid.sae.acts"].shape == (1, 5, 3)
        assert [p for p, _, _ in model.splices()] == ["blocks.1.resid_mid"]
        assert kinds_of(model)[-1] is TOY  # contributed by the spliced module

        # Editing a latent changes the output; the error term stays what it was.
        def drop(x: torch.Tensor, _hp: object) -> torch.Tensor:
            return torch.zeros_like(x)

        with model.hooks(fwd=[("blocks.1.resid_mid.sae.acts", drop)]):
            assert not torch.allclose(model(tokens), clean)
        with pytest.raises(HookError, match="already has a module spliced in as 'sae'"):
            model.splice("blocks.1.resid_mid", Recon(model.cfg.d_model), "sae")
    assert "blocks.1.resid_mid.sae.acts" not in model.hook_names()
    assert not model.hook_point("blocks.1.resid_mid").live
    torch.testing.assert_close(model(tokens), clean)
    assert kinds_of(model)[-1] is not TOY


def test_splice_errors_name_the_problem() -> None:
    model = tiny_model("llama")
    with pytest.raises(HookError, match=r"no hook point named 'blocks\.9\.resid_mid'"):
        model.splice("blocks.9.resid_mid", nn.Identity(), "x")
    with pytest.raises(HookError, match="must be a Python identifier"):
        model.splice("blocks.0.resid_mid", nn.Identity(), "a.b")
    with pytest.raises(HookError, match=r"nothing is spliced in at 'blocks\.0\.resid_mid' as 'x'"):
        model.unsplice("blocks.0.resid_mid", "x")
