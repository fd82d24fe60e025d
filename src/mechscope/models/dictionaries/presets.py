"""Named training presets: ``mechscope train-sae --preset demo`` and ``mechscope demo --sae demo``.

The demo preset trains SAEs on three residual-stream points of SmolLM2 from one model forward,
sized to finish within 15 minutes on 2 CPU cores (9.5 min measured with fp32 matmuls, 3.5-3.7 with
bf16; docs/autoencoders.md has the measurements that set ``tokens``). It lives in one cache folder
per model, so a second start reuses it and an interrupted run resumes from its checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries.eval import Evaluation
from mechscope.models.dictionaries.training import Progress, TrainConfig, matmul_dtype
from mechscope.models.dictionaries.workflow import hook_folder, train_to_folder
from mechscope.models.loading.assets import mechscope_home
from mechscope.models.loading.dictionary_formats import NATIVE_CONFIG


@dataclass(frozen=True)
class Preset:
    name: str
    train: TrainConfig
    tok_s: float
    """Corpus tokens/s measured on 2 CPU cores with fp32 matmuls, end to end (the model forward
    included; each token trains every dictionary), for the time estimate printed before training."""
    fixed_seconds: float
    """Measured time outside the training steps: tokenising, the initial sample, the evaluations."""
    bf16_tok_s: float | None = None
    """As ``tok_s`` where the CPU multiplies bf16 natively (``precision="auto"`` then picks bf16)."""
    eval_windows: int = 64
    """Held-out windows each dictionary is evaluated on (train-sae's 64 take 4.4 min per dictionary
    on 2 cores: five full-model forwards each)."""

    def estimate_seconds(self, bf16: bool = False) -> float:
        rate = self.bf16_tok_s if bf16 and self.bf16_tok_s else self.tok_s
        return self.train.tokens / rate + self.fixed_seconds


# Measured on 2026-12-03 with the 2 cores to itself, fp32 matmuls (docs/autoencoders.md, "The demo
# preset"): the whole run took 9 min 27 s: training 3 hook points from one forward to layer 9 at
# ~2,500 dictionary-tokens/s (~833 corpus tok/s), and ~90 s of tokenising, the initial sample and
# the three 16-window evaluations. With bf16 matmuls (the default where the CPU has them), measured
# on 2026-12-04 on the same 2 cores: 3 min 27 s in all, training at ~7,900 dictionary-tokens/s
# (~2,650 corpus tok/s), the rest ~55 s; fixed_seconds keeps the fp32 run's 90 s (an upper bound).
DEMO = Preset(
    name="demo",
    train=TrainConfig(
        hooks=("blocks.3.resid_post", "blocks.6.resid_post", "blocks.9.resid_post"),
        n_latents=4608,
        k=32,
        tokens=400_000,
        batch_tokens=2048,
        lr=1e-3,  # a short run: faster than sparsify's lr law (3.8e-4 at this width) gets there
    ),
    tok_s=833.0,
    fixed_seconds=90.0,
    bf16_tok_s=2650.0,
    eval_windows=16,
)
# The attribution graphs' replacement model needs a transcoder at every layer's MLP: SmolLM2's 30
# skip-transcoders from one forward. Measured on 2026-12-04 on 2 cores, bf16: ~9,800
# dictionary-tokens/s = ~330 corpus tok/s (each token trains all 30). A chunk of 16,384 tokens
# keeps the shuffling buffer at 2.3 GB (30 x (576 + 576) values a token).
TRANSCODERS = Preset(
    name="transcoders",
    train=TrainConfig(
        hooks=tuple(f"blocks.{layer}.mlp" for layer in range(30)),
        kind="skip_transcoder",
        n_latents=2048,
        k=16,
        tokens=250_000,
        batch_tokens=2048,
        chunk_tokens=16384,
        lr=1e-3,
    ),
    tok_s=110.0,
    fixed_seconds=180.0,
    bf16_tok_s=330.0,
    eval_windows=8,
)
PRESETS = {p.name: p for p in (DEMO, TRANSCODERS)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"preset {name!r} is not one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_folder(model: HookedDecoder, preset: Preset) -> Path:
    """Where a preset's dictionaries live: $MECHSCOPE_HOME/dictionaries/<model>/<preset>."""
    return mechscope_home() / "dictionaries" / (model.cfg.name or "model") / f"preset-{preset.name}"


def is_trained(folder: Path, preset: Preset) -> bool:
    """Whether every dictionary of the preset is saved in ``folder`` (written after training)."""
    return all((hook_folder(folder, h) / NATIVE_CONFIG).is_file() for h in preset.train.hooks)


def train_preset(
    model: HookedDecoder,
    preset: Preset,
    out: Path,
    corpus: str | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Evaluation]:
    """Train (or resume) the preset's dictionaries into ``out``, saying first how long it should take."""
    from mechscope.data.corpora import make_windows, open_corpus

    cfg = preset.train
    for points in cfg.reads.values():
        for p in points:  # a model without these points fails now, naming the allowed ones
            model.hook_point(p)
    if model.tokenizer is None:
        raise InputError("this model has no tokenizer; training needs one to cut the corpus into windows")
    minutes = preset.estimate_seconds(bf16=matmul_dtype(cfg.precision) == torch.bfloat16) / 60
    say(
        f"training the {preset.name} dictionaries ({', '.join(cfg.hooks)}; {cfg.n_latents} latents, "
        f"k={cfg.k}, {cfg.tokens:,} tokens) into {out}: about {minutes:.0f} min on 2 CPU cores, "
        "once (an interrupted run resumes)"
    )
    t0 = time.perf_counter()
    text = open_corpus(corpus)
    windows = make_windows(text, model.tokenizer, cfg.window, cfg.corpus_tokens(preset.eval_windows))
    results = train_to_folder(model, windows.tokens, cfg, out, preset.eval_windows, progress)
    say(f"trained the {preset.name} dictionaries in {time.perf_counter() - t0:.0f} s")
    return results
