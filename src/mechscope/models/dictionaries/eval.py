"""Evaluating a dictionary on a model, each metric named for exactly what it computes.

Conventions (docs/autoencoders.md): ``x`` below is the dictionary's *target*, the activation it
reconstructs (an SAE's input; a transcoder's MLP output, predicted from the MLP input), and the
dictionary is spliced, ablated and measured at the target's point. Windows start with the start token; position 0 keeps its
clean activation in every run (the dictionary never saw it in training), every later position
(*stream token*) is reconstructed, zero-ablated or mean-ablated. Reconstruction statistics are over
stream tokens; cross-entropies over every next-token prediction of the windows.

- ``l0``: mean number of latents > 0 per stream token.
- ``explained_variance``: 1 - sum |x - x_hat|^2 / sum |x - mean(x)|^2, the numerator and the
  denominator each summed over the whole evaluation set, ``mean(x)`` its mean (SAELens PR #665).
- ``explained_variance_legacy_around_zero``: 1 - sum |x - x_hat|^2 / sum |x|^2, the figure earlier
  tools reported (SAELens issue #659); beside the correct one only for comparison.
- ``loss_added_nats``: the LM's cross-entropy with the dictionary's reconstruction in place of the
  activation, minus the clean cross-entropy.
- ``kl_to_clean``: mean over predictions of KL(clean next-token distribution || spliced one), nats.
- ``ce_recovered_vs_zero`` / ``ce_recovered_vs_mean``: (CE_ablated - CE_spliced) / (CE_ablated -
  CE_clean) with the target activation zeroed, or replaced by its mean over the evaluation set
  (for a transcoder: the MLP's output zero- or mean-ablated).
- ``dead_latents``: latents never > 0 on the evaluation tokens; ``dense_latents``: > 0 on more than
  10% of them; ``log10_density_histogram``: counts of log10(fraction of tokens > 0) per bin, dead
  latents apart.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries.coder import SparseCoder
from mechscope.models.dictionaries.splicing import check_fits, spliced_coder
from mechscope.models.hooks import HookPoint
from mechscope.models.running import next_token_nll

DENSE = 0.1
HIST_EDGES = [float(e) / 2 for e in range(-16, 1)]  # log10 density bins, -8 .. 0 by 0.5
_SPLICE = "_eval"


@dataclass
class Evaluation:
    """Every metric of the module docstring, with the token counts behind them."""

    hook: str
    tokens: int  # stream tokens in the reconstruction statistics
    predictions: int  # next-token predictions in the cross-entropies
    l0: float
    explained_variance: float
    explained_variance_legacy_around_zero: float
    fvu: float  # 1 - explained_variance
    mse: float  # mean over stream tokens of |x - x_hat|^2
    ce_clean: float
    ce_with_dictionary: float
    loss_added_nats: float
    kl_to_clean: float
    ce_zero_ablation: float
    ce_mean_ablation: float
    ce_recovered_vs_zero: float
    ce_recovered_vs_mean: float
    dead_latents: int
    dead_fraction: float
    dense_latents: int
    log10_density_histogram: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ce(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy and the log-probs (batch, pos - 1, vocab)."""
    nll, logp = next_token_nll(logits, tokens)
    return nll.sum(), logp


def _replace_stream(fn: Any) -> Any:
    """A forward hook that replaces positions >= 1 by ``fn(x)`` and leaves position 0 clean."""

    def hook(x: torch.Tensor, _hp: HookPoint) -> torch.Tensor:
        out = x.clone()
        out[:, 1:] = fn(x[:, 1:])
        return out

    return hook


def evaluate(model: HookedDecoder, coder: SparseCoder, windows: torch.Tensor, batch: int = 16) -> Evaluation:
    """Evaluate ``coder`` (an SAE or a transcoder) on ``windows`` (window, pos) token ids."""
    hook, n, d_out = coder.site, coder.cfg.n_latents, coder.cfg.width_out
    coder = coder.eval()
    check_fits(model, coder)
    mean = _stream_mean(model, hook, windows, batch)
    s = {k: 0.0 for k in ("sq_err", "sq", "ce_clean", "ce_sae", "ce_zero", "ce_mean", "kl", "l0")}
    s_x = torch.zeros(d_out, dtype=torch.float64)
    fired = torch.zeros(n, dtype=torch.float64)
    tokens = predictions = 0
    acts_point, err_point = f"{hook}.{_SPLICE}.acts", f"{hook}.{_SPLICE}.error"
    got: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hp: HookPoint) -> None:
        got[hp.name] = x

    for b in range(0, windows.shape[0], batch):
        w = windows[b : b + batch].to(model.device)
        with torch.no_grad():
            logits = model(w)
            ce, logp_clean = _ce(logits, w)
            s["ce_clean"] += float(ce)
            for key, fn in (("ce_zero", torch.zeros_like), ("ce_mean", lambda x: mean.to(x).expand_as(x))):
                s[key] += float(_ce(model.run_with_hooks(w, fwd=[(hook, _replace_stream(fn))]), w)[0])
            got.clear()
            with spliced_coder(model, coder, _SPLICE):
                fwd = [(hook, keep), (coder.cfg.hook, keep), (acts_point, keep),
                       (err_point, _replace_stream(torch.zeros_like))]  # fmt: skip
                spliced = model.run_with_hooks(w, fwd=fwd)
            ce, logp = _ce(spliced, w)
            s["ce_sae"] += float(ce)
            s["kl"] += float((logp_clean.exp() * (logp_clean - logp)).sum())
            x = got[hook][:, 1:].reshape(-1, d_out).double()
            x_in = got[coder.cfg.hook][:, 1:].reshape(-1, coder.cfg.d_in).to(coder.W_dec.dtype)
            a = got[acts_point][:, 1:].reshape(-1, n)
            x_hat = coder.decode(a.to(coder.W_dec.dtype), x_in).double()
            s["sq_err"] += float((x - x_hat).pow(2).sum())
            s["sq"] += float(x.pow(2).sum())
            s_x += x.sum(0)
            s["l0"] += float((a > 0).sum())
            fired += (a > 0).sum(0).double()
            tokens += x.shape[0]
            predictions += w.shape[0] * (w.shape[1] - 1)
    total_var = s["sq"] - float(s_x.pow(2).sum()) / tokens  # sum |x - mean|^2
    density = fired / tokens
    ce_clean, ce_sae = s["ce_clean"] / predictions, s["ce_sae"] / predictions
    ce_zero, ce_mean = s["ce_zero"] / predictions, s["ce_mean"] / predictions
    ev = 1 - s["sq_err"] / total_var
    return Evaluation(
        hook=hook,
        tokens=tokens,
        predictions=predictions,
        l0=s["l0"] / tokens,
        explained_variance=ev,
        explained_variance_legacy_around_zero=1 - s["sq_err"] / s["sq"],
        fvu=1 - ev,
        mse=s["sq_err"] / tokens,
        ce_clean=ce_clean,
        ce_with_dictionary=ce_sae,
        loss_added_nats=ce_sae - ce_clean,
        kl_to_clean=s["kl"] / predictions,
        ce_zero_ablation=ce_zero,
        ce_mean_ablation=ce_mean,
        ce_recovered_vs_zero=_recovered(ce_zero, ce_sae, ce_clean),
        ce_recovered_vs_mean=_recovered(ce_mean, ce_sae, ce_clean),
        dead_latents=int((fired == 0).sum()),
        dead_fraction=float((fired == 0).double().mean()),
        dense_latents=int((density > DENSE).sum()),
        log10_density_histogram=density_histogram(density),
    )


def _recovered(ablated: float, spliced: float, clean: float) -> float:
    gap = ablated - clean
    return (ablated - spliced) / gap if gap != 0 else math.nan


def density_histogram(density: torch.Tensor) -> dict[str, list[float]]:
    """Counts of log10(density) in the bins of :data:`HIST_EDGES`; dead latents counted apart."""
    alive = density[density > 0].log10().clamp(HIST_EDGES[0], HIST_EDGES[-1] - 1e-9)
    counts = torch.histogram(alive.float(), bins=torch.tensor(HIST_EDGES)).hist if alive.numel() else None
    return {
        "edges": HIST_EDGES,
        "counts": counts.tolist() if counts is not None else [0.0] * (len(HIST_EDGES) - 1),
        "dead": [float((density == 0).sum())],
    }


class _Stop(Exception):
    pass


def _stream_mean(model: HookedDecoder, hook: str, windows: torch.Tensor, batch: int) -> torch.Tensor:
    """The hook point's mean activation over the stream tokens (the mean-ablation value)."""
    total: torch.Tensor | None = None
    count = 0

    def keep(x: torch.Tensor, _hp: HookPoint) -> None:
        nonlocal total, count
        part = x[:, 1:].double().sum((0, 1))
        total = part if total is None else total + part
        count += x.shape[0] * (x.shape[1] - 1)
        raise _Stop

    for b in range(0, windows.shape[0], batch):
        with torch.no_grad(), model.hooks(fwd=[(hook, keep)]), contextlib.suppress(_Stop):
            model(windows[b : b + batch].to(model.device))
    assert total is not None
    return (total / count).float()
