"""What each workload times and what each implementation is called in it (no torch: the
orchestrator and the report read this without importing any model code)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    impls: dict[str, str]  # implementation -> label in this workload, in display order
    ours: str = "mechscope"  # the implementation the ratios are taken of


WORKLOADS = {
    w.name: w
    for w in [
        Workload(
            "forward",
            "Forward pass (batch 1, fp32, logits at every position)",
            {
                "mechscope": "mechscope `model(x)`",
                "hf-eager": "transformers (eager)",
                "hf-sdpa": "transformers (sdpa)",
                "tl": "TransformerLens HookedTransformer",
                "tl-bridge": "TransformerLens TransformerBridge",
                "nnsight": "nnsight trace of transformers (sdpa)",
                "bare": "bare PyTorch Llama (no modules, no hooks)",
                "floor": "floor: matmuls + sdpa only",
            },
        ),
        Workload(
            "actgrad",
            "Activation x gradient at every MLP neuron",
            {
                "mechscope": "mechscope (`model.hooks(fwd=..., bwd=...)`)",
                "hf-sdpa": "transformers (sdpa; pre-hooks + tensor hooks)",
                "tl": "TransformerLens HookedTransformer (hooks)",
                "tl-bridge": "TransformerLens TransformerBridge (hooks)",
                "nnsight": "nnsight (`.input` / `.grad` in a trace)",
            },
        ),
        Workload(
            "debugger",
            "The Debugger's computation",
            {
                "mechscope": "mechscope debugger: `attribute()` + `summary(k=10)`",
                "bare": "bare forward + backward (bench/engine.py)",
                "hf-sdpa": "transformers act x grad (sdpa)",
            },
        ),
        Workload(
            "generation",
            "Greedy generation (32 tokens after a 16-token prompt)",
            {
                "mechscope": "mechscope `model.generate(..., stop_tokens=[])`",
                "hf-sdpa": "transformers `generate(do_sample=False)` (sdpa)",
            },
        ),
        Workload(
            "cache",
            "Cache everything",
            {
                "mechscope": "mechscope `run_with_cache(x)`",
                "hf-eager": "transformers `output_hidden_states` + `output_attentions` (eager)",
                "tl": "TransformerLens HookedTransformer `run_with_cache(x)`",
                "tl-bridge": "TransformerLens TransformerBridge `run_with_cache(x)`",
            },
        ),
        Workload(
            "load",
            "Warm load (a fresh process per load)",
            {
                "mechscope": "mechscope `ms.load_model()` (GGUF, cache hit)",
                "mechscope:folder": "mechscope `ms.load_model(folder)`",
                "hf-sdpa": "transformers `from_pretrained(folder)`",
                "tl-bridge": "TransformerLens `TransformerBridge.boot_transformers(folder)`",
            },
        ),
        Workload(
            "sae",
            "SAE training steps on cached activations",
            {
                "mechscope": "mechscope `training.step` (fp32)",
                "sae-lens": "SAELens `SAETrainer.step` (fp32)",
                "bare": "plain PyTorch loop",
            },
        ),
    ]
}

# Short names for the chart's axis.
SHORT = {
    "mechscope": "mechscope",
    "mechscope:folder": "mechscope (folder)",
    "hf-eager": "transformers eager",
    "hf-sdpa": "transformers",
    "tl": "TL HookedTransformer",
    "tl-bridge": "TL bridge",
    "nnsight": "nnsight",
    "bare": "bare",
    "floor": "matmul floor",
    "sae-lens": "SAELens",
}
