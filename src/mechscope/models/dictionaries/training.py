"""Training sparse dictionaries: OpenAI's TopK recipe by default, every part switchable off.

The recipe (Gao et al. 2024, "Scaling and evaluating sparse autoencoders", and its code
openai/sparse_autoencoder): inputs normalised to mean norm sqrt(d_in); ``b_dec`` at the
geometric median of a sample; the encoder initialised as the decoder's transpose; decoder rows
kept at unit norm, with the gradient's component parallel to each row removed before every step;
the loss is the normalised MSE (FVU) plus AuxK: the top ``k_aux`` *dead* latents (no activation in
``dead_tokens`` tokens) reconstruct the residual error, weighted 1/32. Adam (eps 6.25e-10), linear
warm-up and a linear decay to 0 over the last part of training.

Transcoders (``kind``) follow the same recipe on (MLP input, MLP output) pairs: the input and
the target each get their own scale, ``b_dec`` starts at the target's geometric median, the
encoder is an independent random matrix (it reads another space than the decoder writes, so
tying it to the decoder's transpose means nothing), and a skip-transcoder's ``W_skip`` starts at
zero and is learnt with the rest.

Every hook point trains from the same model forwards (:mod:`.source`); checkpoints are atomic
and a killed run resumes from the last one with the weights an uninterrupted run reaches.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries import activations as A
from mechscope.models.dictionaries.checkpoint import load_checkpoint, save_checkpoint
from mechscope.models.dictionaries.coder import SparseCoder, init_random
from mechscope.models.dictionaries.config import KINDS, DictionaryConfig
from mechscope.models.dictionaries.points import point_width, reads
from mechscope.models.dictionaries.source import Chunk, Reads, capture, chunks

log = logging.getLogger(__name__)

TRAINABLE = ("topk", "batchtopk", "relu")
PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (AMX or AVX512-BF16 on a CPU),
    where bf16 matmuls run ~3x faster than fp32 (bench/sae.py); elsewhere they are emulated."""
    if torch.device(device).type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return bool(cpu._is_amx_tile_supported() or cpu._is_avx512_bf16_supported())


def matmul_dtype(precision: str, device: torch.device | str = "cpu") -> torch.dtype:
    """The dtype of a training step's matmuls for a ``TrainConfig.precision``."""
    if precision == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    return torch.bfloat16 if precision == "bf16" else torch.float32


@dataclass(frozen=True)
class TrainConfig:
    """How to train one dictionary per hook point (each field is also a CLI option's help)."""

    hooks: tuple[str, ...]
    """Hook points to train on, all from the same model forwards (e.g. blocks.6.resid_post);
    for transcoders a layer's MLP, ``blocks.L.mlp`` (:mod:`.points`)."""
    n_latents: int
    """Latents per dictionary."""
    k: int = 32
    """Active latents per token (TopK; BatchTopK's batch average)."""
    activation: str = "topk"
    """topk (default), batchtopk (saved as jumprelu with the learnt threshold) or relu (+ L1)."""
    kind: str = "sae"
    """sae, transcoder (MLP input -> MLP output) or skip_transcoder (plus a linear skip term)."""
    tokens: int = 1_000_000
    """Training tokens per dictionary (after the start token and sinks are left out)."""
    batch_tokens: int = 4096
    """Tokens per optimiser step."""
    lr: float | None = None
    """Adam learning rate; None: 2e-4 / sqrt(n_latents / 2^14), sparsify's scaling law."""
    warmup_steps: int | None = None
    """Linear learning-rate warm-up from 0, in steps; None: 5% of the steps, at most 1000."""
    decay_fraction: float = 0.2
    """Linear decay to 0 over this last fraction of the tokens (0: constant after warm-up)."""
    auxk: bool = True
    """AuxK loss on dead latents (OpenAI); sparsify ships it off."""
    auxk_coef: float = 1 / 32
    """Weight of the AuxK loss."""
    k_aux: int | None = None
    """Dead latents in the AuxK reconstruction; None: d_in // 2."""
    dead_tokens: int | None = None
    """A latent is dead after this many training tokens without activating; None: OpenAI's 10M,
    or a tenth of ``tokens`` when that is less (so that AuxK acts in short runs too)."""
    l1_coef: float = 0.01
    """ReLU only: weight of the L1 penalty sum_i a_i |W_dec,i| (mean over tokens)."""
    tied_init: bool = True
    """Initialise the encoder as the decoder's transpose (off: an independent random encoder)."""
    unit_norm_decoder: bool = True
    """Keep decoder rows at unit norm and remove the gradient's parallel component."""
    geometric_median_init: bool = True
    """Start b_dec at the geometric median of a sample (off: at zero)."""
    normalize_inputs: bool = True
    """Scale inputs to mean norm sqrt(d_in) by a stored factor (off: scale 1)."""
    sink_factor: float | None = 10.0
    """Leave out tokens whose norm exceeds this many times the batch median (None: keep them)."""
    init_tokens: int = 16384
    """Tokens sampled for the input scale and the geometric median."""
    window: int = 128
    """Tokens per model sequence, the start token included."""
    model_batch: int = 16
    """Sequences per model forward."""
    chunk_tokens: int = 65536
    """Shuffling buffer: tokens per chunk (each chunk is shuffled and drained before the next)."""
    checkpoint_chunks: int = 1
    """Write a checkpoint every this many chunks."""
    decode: str = "sparse"
    """TopK decoding: sparse (embedding_bag over the k active rows; 1.6x faster steps at 576 ->
    4608 on CPU, bench/sae.py) or dense (a scatter and a matmul)."""
    precision: str = "auto"
    """Matmul precision of the training steps: fp32, bf16 (bfloat16 matmuls, fp32 weights, Adam and
    loss), or auto: bf16 where the processor multiplies bf16 natively (AMX or AVX512-BF16 on a CPU;
    CUDA), else fp32. docs/autoencoders.md has the speed and the equal-quality check."""
    seed: int = 0
    """Seed of the initialisation and the shuffles: equal seeds give equal weights."""

    def __post_init__(self) -> None:
        if self.activation not in TRAINABLE:
            raise InputError(
                f"activation {self.activation!r} cannot be trained; allowed: {', '.join(TRAINABLE)}"
            )
        if self.decode not in ("dense", "sparse"):
            raise InputError(f"decode {self.decode!r} is not one of: dense, sparse")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision {self.precision!r} is not one of: {', '.join(PRECISIONS)}")
        for name in ("n_latents", "tokens", "batch_tokens", "window", "model_batch", "chunk_tokens"):
            if getattr(self, name) < (2 if name == "window" else 1):
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.k <= self.n_latents:
            raise InputError(f"k must be in 1..n_latents ({self.n_latents}), got {self.k}")
        if not self.hooks:
            raise InputError("give at least one hook point")
        if self.kind not in KINDS:
            raise InputError(f"kind {self.kind!r} is not one of: {', '.join(KINDS)}")
        self.reads  # noqa: B018 -- a transcoder's hook must name an MLP: fail at construction

    @property
    def reads(self) -> Reads:
        """Each dictionary's hook points: its input, then (transcoders) its target."""
        return {h: reads(h, self.kind) for h in self.hooks}

    @property
    def chunk_windows(self) -> int:
        return max(1, math.ceil(self.chunk_tokens / (self.window - 1)))

    def corpus_tokens(self, eval_windows: int = 0) -> int:
        """Stream tokens to cut into windows: whole chunks (training uses only whole ones) covering
        the tokens asked with 10% spare for the sink tokens left out, plus a held-out set."""
        n_chunks = math.ceil(self.tokens * 1.1 / (self.chunk_windows * (self.window - 1)))
        return (n_chunks * self.chunk_windows + eval_windows) * (self.window - 1)

    @property
    def dead_after(self) -> int:
        return (
            self.dead_tokens if self.dead_tokens is not None else min(10_000_000, max(1, self.tokens // 10))
        )

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else 2e-4 / math.sqrt(self.n_latents / 2**14)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hooks": list(self.hooks)}


@dataclass
class Trainee:
    """One dictionary being trained, with its optimiser and statistics."""

    coder: SparseCoder
    opt: torch.optim.Adam
    since_fired: torch.Tensor  # (n,) int64: tokens since each latent last activated
    step: int = 0
    tokens: int = 0
    threshold_ema: float = 0.0  # BatchTopK: EMA of the smallest kept activation
    last: dict[str, float] = field(default_factory=dict)  # the last step's metrics

    def state(self) -> dict[str, Any]:
        return {
            "coder": self.coder.state_dict(),
            "opt": self.opt.state_dict(),
            "since_fired": self.since_fired,
            "counters": torch.tensor([self.step, self.tokens], dtype=torch.int64),
            "threshold_ema": torch.tensor(self.threshold_ema, dtype=torch.float64),
        }

    def load(self, s: dict[str, Any]) -> None:
        self.coder.load_state_dict(s["coder"])
        self.opt.load_state_dict(s["opt"])
        self.since_fired = s["since_fired"].clone()
        self.step, self.tokens = (int(v) for v in s["counters"])
        self.threshold_ema = float(s["threshold_ema"])


Progress = Callable[[int, dict[str, dict[str, float]], float], None]  # chunk, hook -> metrics, tok/s


# ----- initialisation ---------------------------------------------------------------------------
def geometric_median(x: torch.Tensor, iters: int = 50, eps: float = 1e-6) -> torch.Tensor:
    """The point minimising the summed distances to the rows of ``x`` (Weiszfeld's iterations)."""
    m = x.mean(0)
    for _ in range(iters):
        w = 1 / (x - m).norm(dim=1).clamp_min(eps)
        new = (w[:, None] * x).sum(0) / w.sum()
        if (new - m).norm() <= eps * (1 + m.norm()):
            return new
        m = new
    return m


def new_trainee(
    cfg: TrainConfig, hook: str, d_in: int, sample: torch.Tensor, model_name: str, d_out: int | None = None
) -> Trainee:
    """A freshly initialised dictionary for ``hook`` (``sample``: (tokens, d_in) activations; a
    transcoder's (tokens, d_in + d_out), input and target side by side)."""
    points = reads(hook, cfg.kind)
    sae = cfg.kind == "sae"
    dcfg = DictionaryConfig(
        d_in=d_in, n_latents=cfg.n_latents, hook=points[0], activation=cfg.activation, k=cfg.k,
        kind=cfg.kind, d_out=None if sae else d_out, out_hook=None if sae else points[1],
        apply_b_dec_to_input=sae, model=model_name,
    )  # fmt: skip
    coder = init_random(SparseCoder(dcfg), cfg.seed)
    x = sample[:, :d_in]
    y = x if sae else sample[:, d_in:]
    with torch.no_grad():
        if not cfg.tied_init:
            g = torch.Generator().manual_seed(cfg.seed + 7)
            coder.W_enc.copy_(torch.randn(coder.W_enc.shape, generator=g) / math.sqrt(d_in))
        if cfg.normalize_inputs:
            coder.scale_in.fill_(float(x.norm(dim=-1).mean()) / math.sqrt(d_in))
            coder.scale_out.fill_(float(y.norm(dim=-1).mean()) / math.sqrt(dcfg.width_out))
        if cfg.geometric_median_init:
            coder.b_dec.copy_(geometric_median(y / coder.scale_out))
    coder.train()
    opt = torch.optim.Adam(coder.parameters(), lr=cfg.learning_rate(), eps=6.25e-10)
    return Trainee(coder, opt, torch.zeros(cfg.n_latents, dtype=torch.int64))


# ----- one step ---------------------------------------------------------------------------------
def decode_topk(w_dec: torch.Tensor, vals: torch.Tensor, idx: torch.Tensor, sparse: bool) -> torch.Tensor:
    """(tokens, k) values at (tokens, k) latent indices -> (tokens, d_out) through ``w_dec`` (n,
    d_out), without b_dec, computed in ``vals``'s dtype: a scatter and a dense matmul, or
    ``embedding_bag`` over the k rows (bench/sae.py compares them)."""
    w = w_dec.to(vals.dtype)
    if sparse:
        return F.embedding_bag(idx, w, per_sample_weights=vals, mode="sum")
    return torch.zeros(vals.shape[0], w.shape[0], dtype=vals.dtype).scatter(1, idx, vals) @ w


def step(t: Trainee, cfg: TrainConfig, x: torch.Tensor, lr: float) -> dict[str, float]:
    """One optimiser step on ``x`` (tokens, d_in) raw activations (a transcoder's: (tokens,
    d_in + d_out), input and target side by side); returns the step's metrics."""
    c = t.coder
    d_in = c.cfg.d_in
    # In bf16 the (tokens, latents) tensors stay bf16 from the encoder to the decoder and back
    # through autograd: converting them would cost more than the bf16 matmuls save. Weights,
    # their gradients, Adam and the loss stay fp32.
    dt = matmul_dtype(cfg.precision, x.device)
    xn = x[:, :d_in] / c.scale_in
    target = xn if c.cfg.kind == "sae" else x[:, d_in:] / c.scale_out
    enc_in = xn - c.b_dec if c.cfg.apply_b_dec_to_input else xn
    pre = torch.addmm(c.b_enc.to(dt), enc_in.to(dt), c.W_enc.to(dt))  # (tokens, n) in dt
    if cfg.activation == "topk":
        vals, idx = pre.topk(cfg.k, dim=-1, sorted=False)
        vals = vals.relu()
        recon = decode_topk(c.W_dec, vals, idx, cfg.decode == "sparse").float() + c.b_dec
        fired = torch.zeros(c.cfg.n_latents, dtype=torch.bool)
        fired[idx[vals > 0]] = True
        l0 = float((vals > 0).sum()) / len(x)
    else:
        acts = A.batch_topk(pre, cfg.k) if cfg.activation == "batchtopk" else pre.relu()
        recon = (acts @ c.W_dec.to(dt)).float() + c.b_dec
        fired = A.fired(acts)
        l0 = A.count_active(acts) / len(x)
    if c.W_skip is not None:
        recon = recon + (xn.to(dt) @ c.W_skip.to(dt)).float()
    err = target - recon
    variance = (target - target.mean(0)).pow(2).sum()
    fvu = err.pow(2).sum() / variance
    loss = fvu
    t.since_fired += len(x)
    t.since_fired[fired] = 0
    dead = t.since_fired >= cfg.dead_after
    aux = torch.zeros(())
    if cfg.auxk and cfg.activation != "relu" and bool(dead.any()):
        k_aux = min(cfg.k_aux or c.cfg.width_out // 2, int(dead.sum()))
        masked = pre.masked_fill(~dead, -math.inf)
        a_vals, a_idx = masked.topk(k_aux, dim=-1, sorted=False)
        residual = err.detach()
        aux_recon = decode_topk(c.W_dec, a_vals.relu(), a_idx, cfg.decode == "sparse").float()
        aux = (aux_recon - residual).pow(2).sum() / (residual - residual.mean(0)).pow(2).sum().clamp_min(
            1e-12
        )
        loss = loss + cfg.auxk_coef * aux
    if cfg.activation == "relu":
        # With unit-norm rows the weights |W_dec,i| are 1 and their gradient is parallel to the
        # rows, which the projection below removes: the plain sum is the same loss, one pass cheaper.
        l1 = (  # summed in acts' dtype: bf16 with fp32 accumulation; an fp32 output costs 10x
            acts.sum().float() / len(x)
            if cfg.unit_norm_decoder
            else (acts.float() * c.W_dec.norm(dim=-1)).sum(-1).mean()
        )
        loss = loss + cfg.l1_coef * l1
    t.opt.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
        if cfg.unit_norm_decoder and c.W_dec.grad is not None:
            w = c.W_dec  # rows are unit-norm: drop each gradient row's component along its row
            c.W_dec.grad -= (c.W_dec.grad * w).sum(-1, keepdim=True) * w
        for group in t.opt.param_groups:
            group["lr"] = lr
        t.opt.step()
        if cfg.unit_norm_decoder:
            c.W_dec.div_(c.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        if cfg.activation == "batchtopk":
            kept = acts[acts > 0]
            if kept.numel():  # SAELens: an EMA of the smallest kept activation, rate 0.01
                low = float(kept.min())
                t.threshold_ema = low if t.step == 0 else 0.99 * t.threshold_ema + 0.01 * low
    t.step += 1
    t.tokens += len(x)
    t.last = {"loss": float(loss.detach()), "fvu": float(fvu.detach()), "auxk": float(aux.detach()), "l0": l0,
              "dead": float(dead.float().mean())}  # fmt: skip
    return t.last


def lr_at(cfg: TrainConfig, t: Trainee) -> float:
    """Warm-up over ``warmup_steps``, then constant, then a linear decay to 0 over the last
    ``decay_fraction`` of the tokens (by tokens, so every hook point follows the same curve)."""
    base = cfg.learning_rate()
    steps = (
        cfg.warmup_steps if cfg.warmup_steps is not None else min(1000, cfg.tokens // cfg.batch_tokens // 20)
    )
    warm = min(1.0, (t.step + 1) / steps) if steps else 1.0
    left = 1 - t.tokens / cfg.tokens
    decay = min(1.0, left / cfg.decay_fraction) if cfg.decay_fraction > 0 else 1.0
    return base * warm * max(decay, 0.0)


# ----- the loop ---------------------------------------------------------------------------------
def train(
    model: HookedDecoder,
    windows: torch.Tensor,
    cfg: TrainConfig,
    out: Path | None = None,
    progress: Progress | None = None,
    stop_after_chunks: int | None = None,
) -> dict[str, SparseCoder]:
    """Train one dictionary per hook point of ``cfg`` on ``windows`` (window, pos) token ids.

    With ``out``, checkpoints go to ``out/checkpoint.pt`` (atomically) and a run finding one there
    resumes from it. ``stop_after_chunks`` ends the call after that many chunks, as a kill would
    (tests). Returns the dictionaries (eval mode), finished or not.
    """
    if windows.shape[1] != cfg.window:
        raise InputError(f"windows have {windows.shape[1]} tokens, the config says window={cfg.window}")
    widths = {h: tuple(point_width(model, p) for p in points) for h, points in cfg.reads.items()}
    check_buffer(cfg, sum(sum(w) for w in widths.values()))
    trainees, start = _resume_or_init(model, windows, cfg, widths, out)
    t0, seen = time.perf_counter(), 0
    per_chunk = min(cfg.chunk_windows, windows.shape[0])  # a small corpus is one chunk
    source = chunks(model, windows, cfg.reads, per_chunk, cfg.model_batch, cfg.seed,
                    cfg.sink_factor, start)  # fmt: skip
    for done_chunks, chunk in enumerate(source, 1):
        if _finished(trainees, cfg):  # a resumed run that had finished
            break
        seen += _train_chunk(trainees, cfg, chunk)
        if progress is not None:
            progress(chunk.index, {h: t.last for h, t in trainees.items()}, seen / (time.perf_counter() - t0))
        if out is not None and (done_chunks % cfg.checkpoint_chunks == 0):
            save_checkpoint(out, cfg.to_dict(), chunk.index + 1, {h: t.state() for h, t in trainees.items()})
        if _finished(trainees, cfg) or (stop_after_chunks is not None and done_chunks >= stop_after_chunks):
            break
    short = [h for h, t in trainees.items() if t.tokens < cfg.tokens]
    if short and stop_after_chunks is None:
        log.warning("the corpus ran out before %d tokens for %s", cfg.tokens, ", ".join(short))
    return {h: _finish(t, cfg) for h, t in trainees.items()}


BUFFER_BYTES = 4 * 2**30
"""The most the shuffling buffer may hold (fp32, every dictionary's rows): a chunk is held about
three times while it is gathered, concatenated and shuffled."""


def check_buffer(cfg: TrainConfig, total_width: int) -> None:
    """An InputError, before any model work, when a chunk of every dictionary's rows would exceed
    :data:`BUFFER_BYTES` (30 transcoders of a 576-wide model at 65,536 tokens a chunk is 9 GB)."""
    need = cfg.chunk_tokens * total_width * 4
    if need > BUFFER_BYTES:
        fits = BUFFER_BYTES // (total_width * 4)
        raise InputError(
            f"a chunk of {cfg.chunk_tokens:,} tokens x {total_width:,} values (all dictionaries' "
            f"inputs and targets) is {need / 2**30:.1f} GB, over the {BUFFER_BYTES / 2**30:.0f} GB "
            f"shuffling buffer; use chunk_tokens <= {fits:,} or fewer hook points per run"
        )


def _finished(trainees: dict[str, Trainee], cfg: TrainConfig) -> bool:
    return all(t.tokens >= cfg.tokens for t in trainees.values())


def _train_chunk(trainees: dict[str, Trainee], cfg: TrainConfig, chunk: Chunk) -> int:
    """Drain one chunk into every dictionary; returns the tokens trained on (all hook points)."""
    n = 0
    for h, t in trainees.items():
        x = chunk.acts[h]
        for b in range(0, len(x) - cfg.batch_tokens + 1, cfg.batch_tokens):
            if t.tokens >= cfg.tokens:
                break
            step(t, cfg, x[b : b + cfg.batch_tokens], lr_at(cfg, t))
            n += cfg.batch_tokens
    return n


def _resume_or_init(
    model: HookedDecoder,
    windows: torch.Tensor,
    cfg: TrainConfig,
    widths: dict[str, tuple[int, ...]],
    out: Path | None,
) -> tuple[dict[str, Trainee], int]:
    saved = load_checkpoint(out, cfg.to_dict()) if out is not None else None
    n_init = max(1, math.ceil(cfg.init_tokens / (cfg.window - 1)))
    samples: dict[str, torch.Tensor] = {h: torch.ones(2, sum(w)) for h, w in widths.items()}  # replaced
    if saved is None:  # the init sample: the first windows (training reads them again, shuffled)
        got, _ = capture(model, windows[:n_init], cfg.reads, cfg.sink_factor)
        samples = got
    name = model.cfg.name or "model"
    trainees = {h: new_trainee(cfg, h, w[0], samples[h], name, w[-1]) for h, w in widths.items()}
    if saved is None:
        return trainees, 0
    next_chunk, states = saved
    for h, t in trainees.items():
        t.load(states[h])
    log.info("resuming at chunk %d", next_chunk)
    return trainees, next_chunk


def _finish(t: Trainee, cfg: TrainConfig) -> SparseCoder:
    c = t.coder
    if cfg.activation == "batchtopk":
        with torch.no_grad():
            c.threshold.fill_(t.threshold_ema)  # runs as JumpReLU with this threshold from now on
    c.training_stats = {"steps": float(t.step), "tokens": float(t.tokens), **t.last}
    return c.eval()
