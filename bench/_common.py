"""Shared helpers for the benchmarks: the model under test, its competitors and a fair timer.

Every comparison is made in one process, on one set of weights and one set of token ids,
with the implementations interleaved round by round so that a noisy neighbour on the
machine slows all of them alike (see ``bench_interleaved``).
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mechscope.models.config import ModelConfig
from mechscope.models.decoder import HookedDecoder
from mechscope.models.memory import keep_freed_memory_by_default


# ----- the model under test -------------------------------------------------------------------
def smollm2_config() -> ModelConfig:
    """SmolLM2-135M's shape, for random-weight runs when the embedded model cannot be loaded."""
    return ModelConfig(
        architecture="llama",
        d_model=576,
        n_layers=30,
        n_heads=9,
        n_kv_heads=3,
        d_head=64,
        d_mlp=1536,
        d_vocab=49152,
        n_ctx=8192,
        norm="rmsnorm",
        norm_eps=1e-5,
        act="silu",
        gated_mlp=True,
        rope_theta=100000.0,
        tie_embeddings=True,
        name="SmolLM2-135M shape (random weights)",
    )


# Issue 18: attribute() + summary() take at most this many times a bare forward+backward.
DEBUGGER_OVER_BARE = 1.15


def random_model(cfg: ModelConfig, seed: int = 0) -> HookedDecoder:
    """A decoder of shape ``cfg`` with N(0, 0.02) matrices and unit norm weights."""
    from mechscope.models.loading import build_model

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in HookedDecoder(cfg).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    weights = {
        k: torch.ones(s) if len(s) == 1 else torch.randn(s, generator=gen) * 0.02 for k, s in shapes.items()
    }
    return build_model(cfg, weights, tokenizer=None)


def load_model_under_test(random_weights: bool) -> tuple[HookedDecoder, str]:
    """The embedded SmolLM2 (or a random model of its shape) and a line saying which it is."""
    if not random_weights:
        import mechscope as ms

        model = ms.load_model()
        return model, f"{model.cfg.name or 'embedded default'} ({model.cfg.note or 'checkpoint'})"
    keep_freed_memory_by_default()  # as load_model() does
    return random_model(smollm2_config()), "random weights, SmolLM2-135M shape"


def check_llama_like(cfg: ModelConfig) -> None:
    """The competitors below implement plain Llama only; say so instead of comparing apples to pears."""
    plain = (
        cfg.norm == "rmsnorm"
        and cfg.gated_mlp
        and cfg.act == "silu"
        and cfg.positional == "rotary"
        and cfg.rotary_dim == cfg.d_head
        and not cfg.rope_scaling
        and not (cfg.qkv_bias or cfg.attn_out_bias or cfg.mlp_bias or cfg.qk_norm)
        and not (cfg.parallel_residual or cfg.sandwich_norms or cfg.attn_softcap or cfg.final_softcap)
        and set(cfg.layer_types) == {"full"}
        and cfg.embed_scale == 1.0
        and cfg.norm_weight_offset == 0.0
    )
    if not plain:
        raise SystemExit(
            f"bench: model {cfg.name!r} is not a plain Llama; the baselines here only cover that"
        )


# ----- transformers, built on our weights -----------------------------------------------------
def hf_llama(model: HookedDecoder, attn_implementation: str) -> torch.nn.Module:
    """transformers' ``LlamaForCausalLM`` sharing the tensors of ``model`` (no copy).

    The config is translated back from ours; the weights are renamed with the inverse of
    ``families/llama.py``'s TABLE.
    """
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    from mechscope.models.families.llama import TABLE

    cfg = model.cfg
    hf_cfg = LlamaConfig(
        vocab_size=cfg.d_vocab,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.d_head,
        rms_norm_eps=cfg.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        tie_word_embeddings=cfg.tie_embeddings,
        max_position_embeddings=cfg.n_ctx,
        hidden_act="silu",
    )
    with torch.device("meta"):  # no random init: every tensor is replaced below
        hf = LlamaForCausalLM._from_config(hf_cfg, attn_implementation=attn_implementation)
    inverse: dict[str, str] = {}
    for hf_name, ours in TABLE.items():
        for i in range(cfg.n_layers) if "{i}" in hf_name else [0]:
            inverse[ours.format(i=i)] = hf_name.format(i=i)
    sd = {inverse[k]: v for k, v in model.state_dict().items()}
    result = hf.load_state_dict(sd, strict=False, assign=True)
    missing = set(result.missing_keys) - ({"lm_head.weight"} if cfg.tie_embeddings else set())
    if missing or result.unexpected_keys:
        raise RuntimeError(f"weight map mismatch: missing {missing}, unexpected {result.unexpected_keys}")
    if cfg.tie_embeddings:
        hf.lm_head.weight = hf.model.embed_tokens.weight
    hf.model.rotary_emb = LlamaRotaryEmbedding(hf_cfg)  # its buffers were built on meta
    hf.eval()
    hf.requires_grad_(False)
    return hf


# ----- the "no hook machinery" baseline -------------------------------------------------------
class BareLlama:
    """A plain-PyTorch Llama forward over mechscope's tensors: no modules, no hooks, no options.

    Written independently of ``models/components.py`` (nanoGPT / HF style), so that
    "our forward with no hooks costs what a model without hook machinery costs" is measured.
    """

    def __init__(self, model: HookedDecoder) -> None:
        cfg, sd = model.cfg, model.state_dict()
        self.cfg = cfg
        names = (
            *("ln1", "ln2", "attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj"),
            *("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"),
        )
        self.layers = [{n: sd[f"blocks.{i}.{n}.weight"] for n in names} for i in range(cfg.n_layers)]
        self.emb, self.ln_f = sd["embed_tokens.weight"], sd["ln_final.weight"]
        self.unemb = self.emb if cfg.tie_embeddings else sd["lm_head.weight"]
        d = cfg.d_head
        self.inv_freq = 1.0 / cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d)

    def _rms(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.norm_eps) * w

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        b, t = tokens.shape
        h, kv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        freqs = torch.outer(torch.arange(t, dtype=torch.float32), self.inv_freq)  # (pos, d_head/2)
        cos, sin = freqs.cos().repeat(1, 2), freqs.sin().repeat(1, 2)  # (pos, d_head)

        def rope(x: torch.Tensor) -> torch.Tensor:  # (batch, head, pos, d_head)
            x1, x2 = x[..., : dh // 2], x[..., dh // 2 :]
            return x * cos + torch.cat((-x2, x1), dim=-1) * sin

        x = F.embedding(tokens, self.emb)  # (batch, pos, d_model)
        for w in self.layers:
            a = self._rms(x, w["ln1"])
            q = F.linear(a, w["attn.q_proj"]).view(b, t, h, dh).transpose(1, 2)  # (batch, head, pos, d_head)
            k = F.linear(a, w["attn.k_proj"]).view(b, t, kv, dh).transpose(1, 2)  # (batch, kv_head, ...)
            v = F.linear(a, w["attn.v_proj"]).view(b, t, kv, dh).transpose(1, 2)
            z = F.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True, enable_gqa=kv != h)
            x = x + F.linear(z.transpose(1, 2).reshape(b, t, h * dh), w["attn.o_proj"])
            m = self._rms(x, w["ln2"])
            x = x + F.linear(
                F.silu(F.linear(m, w["mlp.gate_proj"])) * F.linear(m, w["mlp.up_proj"]), w["mlp.down_proj"]
            )
        return F.linear(self._rms(x, self.ln_f), self.unemb)  # (batch, pos, d_vocab)

    def matmul_floor(self, tokens: torch.Tensor) -> torch.Tensor:
        """Only the forward's matrix products and attention kernels, on the right shapes.

        No norm, rotary, activation or residual add: what no implementation can go below.
        """
        cfg = self.cfg
        b, t = tokens.shape
        h, kv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        x = F.embedding(tokens, self.emb)
        for w in self.layers:
            q = F.linear(x, w["attn.q_proj"]).view(b, t, h, dh).transpose(1, 2)
            k = F.linear(x, w["attn.k_proj"]).view(b, t, kv, dh).transpose(1, 2)
            v = F.linear(x, w["attn.v_proj"]).view(b, t, kv, dh).transpose(1, 2)
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=kv != h)
            F.linear(z.transpose(1, 2).reshape(b, t, h * dh), w["attn.o_proj"])
            g = F.linear(x, w["mlp.gate_proj"])
            F.linear(g, w["mlp.down_proj"])
            F.linear(x, w["mlp.up_proj"])
        return F.linear(x, self.unemb)


def forward_flops(cfg: ModelConfig, t: int) -> float:
    """Multiply-adds x 2 of one forward over ``t`` positions (matmuls and causal attention)."""
    d, h, kv, dh, m = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_mlp
    per_layer = d * h * dh * 2 + d * kv * dh * 2 + d * m * 3
    attn = 2 * h * dh * t * (t + 1) / 2  # q.k and pattern.v over the causal triangle
    return 2.0 * (t * (cfg.n_layers * per_layer + d * cfg.d_vocab) + cfg.n_layers * attn)


# ----- timing ---------------------------------------------------------------------------------
@dataclass
class Timing:
    """Seconds of each repeat of one implementation on one workload."""

    samples: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.samples) * 1e3

    def to_json(self) -> dict[str, Any]:
        return {
            "median_ms": self.median_ms,
            "min_ms": self.min_ms,
            "max_ms": max(self.samples) * 1e3,
            "repeats": len(self.samples),
        }


def bench_interleaved(
    fns: dict[str, Callable[[], Any]],
    cell_s: float,
    warmup: int = 1,
    min_reps: int = 3,
    max_reps: int = 200,
    reps: int | None = None,
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Median seconds of each callable, run round-robin so that machine drift hits all alike.

    Unless ``reps`` is given, the number of rounds is chosen from the warm-up so that the
    slowest callable spends about ``cell_s`` seconds being timed. Returns the timings and each
    callable's last output.
    """
    outputs: dict[str, Any] = {}
    estimate: dict[str, float] = {}
    for _ in range(warmup):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            estimate[name] = time.perf_counter() - t0
    if reps is None:
        slowest = max(estimate.values(), default=cell_s)
        reps = max(min_reps, min(max_reps, math.ceil(cell_s / max(slowest, 1e-6))))
    timings = {name: Timing() for name in fns}
    gc.collect()
    gc.disable()
    try:
        for _ in range(reps):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                outputs[name] = fn()
                timings[name].samples.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return timings, outputs


def contention_probe() -> dict[str, float]:
    """Is another process using the CPU? Compare a small matmul on all threads and on one.

    On an idle machine more threads are faster; when a neighbour holds a core, OpenMP's
    barrier waits make the multi-threaded matmul several times *slower* than one thread, and
    every timing taken then says more about the neighbour than about the code.
    """
    a, w = torch.randn(16, 576), torch.randn(1536, 576)
    threads = torch.get_num_threads()
    out = {}
    for label, n in (("all_threads_us", threads), ("one_thread_us", 1)):
        torch.set_num_threads(n)
        try:
            for _ in range(20):
                F.linear(a, w)
            samples = []
            for _ in range(60):
                t0 = time.perf_counter()
                F.linear(a, w)
                samples.append(time.perf_counter() - t0)
        finally:
            torch.set_num_threads(threads)
        out[label] = statistics.median(samples) * 1e6
    out["slowdown"] = out["all_threads_us"] / out["one_thread_us"]
    out["load_average"] = os.getloadavg()[0]
    return out


def busy_warning(probe: dict[str, float]) -> str | None:
    if torch.get_num_threads() > 1 and probe["slowdown"] > 1.0:
        return (
            f"WARNING: the machine is busy (load average {probe['load_average']:.1f}; a small matmul on "
            f"{torch.get_num_threads()} threads takes {probe['slowdown']:.1f}x its 1-thread time): "
            "the numbers below measure the neighbour more than the code. Rerun when the machine is idle."
        )
    return None


# ----- reporting ------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import transformers

        tf_version = transformers.__version__
    except ImportError:
        tf_version = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": tf_version,
        "python": platform.python_version(),
    }


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        print(f"\nwrote {path}")


def percentile(xs: list[float], q: int) -> float:
    """The ``q``-th percentile (1..99, inclusive method); the value itself for one sample."""
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else xs[0]


def free_port() -> int:
    """A loopback port nothing listens on now, for a server started by a benchmark."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_link(server: subprocess.Popen[str]) -> None:
    """Read a `mechscope serve`/`demo` process's output until it prints its link (it listens then)."""
    assert server.stdout is not None
    while "open http" not in (line := server.stdout.readline()):
        if not line and server.poll() is not None:
            raise SystemExit("the server did not start")
