"""A small results JSON of the shape ``python -m bench`` writes, with chosen numbers."""

from __future__ import annotations

from typing import Any

from bench.summary import summarize


def cells(**per_impl: list[float]) -> dict[str, Any]:
    """{impl: summary} from seconds per round."""
    return {impl: summarize(samples) for impl, samples in per_impl.items()}


def proc(
    role: str, impls: list[str], tuned: bool, result: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    return {
        "role": role,
        "impls": impls,
        "tuned": tuned,
        "lengths": [512],
        "rss": False,
        "result": result,
        "error": extra.pop("error", None),
        "wall_s": extra.pop("wall_s", 5.0),
        "extra": extra,
    }


def results() -> dict[str, Any]:
    forward_tuned = {
        "cells": {
            "16": cells(
                **{
                    "mechscope": [0.07, 0.075, 0.09],
                    "hf-sdpa": [0.10, 0.10, 0.10],
                    "bare": [0.06, 0.07, 0.08],
                }
            ),
            "128": cells(
                **{"mechscope": [0.2, 0.2, 0.2], "hf-sdpa": [0.2, 0.25, 0.3], "bare": [0.2, 0.2, 0.2]}
            ),
        },
        "info": {"gflop": {"16": 4.3, "128": 35.0}},
        "checks": [
            {
                "what": "forward 16 tokens: hf-sdpa logits vs mechscope's (max abs)",
                "value": 4e-5,
                "tolerance": 1e-3,
                "ok": True,
            }
        ],
        "model": "fake model",
        "threads": 2,
    }
    forward_defaults = {
        "cells": {
            "16": cells(**{"mechscope": [0.09, 0.09, 0.09], "hf-sdpa": [0.11, 0.11, 0.11]}),
            "128": cells(**{"mechscope": [0.21, 0.21, 0.21], "hf-sdpa": [0.22, 0.22, 0.22]}),
        },
        "info": {"gflop": {"16": 4.3, "128": 35.0}},
    }
    debugger_tuned = {
        "cells": {
            "16": cells(
                **{"mechscope": [0.30, 0.30, 0.30], "bare": [0.20, 0.20, 0.20], "hf-sdpa": [0.31, 0.31, 0.31]}
            )
        },
        "checks": [],
    }
    rss_ours = {"cells": {}, "rss": {"mechscope@512": {"peak_mib": 3000.0, "before_mib": 900.0}}}
    rss_bare = {"cells": {}, "rss": {"bare@512": {"peak_mib": 1000.0, "before_mib": 800.0}}}
    generation = {
        "cells": {
            "generate": cells(**{"mechscope": [1.6, 1.6, 1.6], "hf-sdpa": [3.2, 3.2, 3.2]}),
            "prefill+1": cells(**{"mechscope": [0.1, 0.1, 0.1], "hf-sdpa": [0.1, 0.1, 0.1]}),
        },
        "info": {"new_tokens": 32, "prompt_tokens": 16, "identical_prefix": 32, "weight_bytes": 540e6},
    }

    def cache(impl: str, t: float) -> dict[str, Any]:
        return {
            "cells": {"cache": cells(**{impl: [t, t, t]}), "plain": cells(**{impl: [1.0, 1.0, 1.0]})},
            "rss": {impl: {"peak_mib": 2000.0, "before_mib": 600.0}},
            "info": {"tokens": 512, "contents": {impl: {"tensors": 500, "mib": 1400.0}}},
        }

    loads = [
        proc(
            "own",
            ["mechscope"],
            True,
            {"import_torch_s": 1.5, "import_library_s": 0.1, "load_s": 1.0},
            warm_up=True,
        ),
        proc("own", ["mechscope"], True, {"import_torch_s": 1.5, "import_library_s": 0.1, "load_s": 1.1}),
        proc("own", ["hf-sdpa"], False, {"import_torch_s": 1.5, "import_library_s": 2.0, "load_s": 2.2}),
    ]
    return {
        "schema": 1,
        "command": "python -m bench --fake",
        "mode": "real",
        "quick": False,
        "elapsed_s": 600.0,
        "machine": {
            "cpu": "Fake CPU",
            "cores": 2,
            "python": "3.11",
            "versions": {"torch": "2.13.0"},
            "date": "2026-12-04T10:00:00+00:00",
            "load_average": [0.3, 0.3, 0.3],
            "load_average_end": [0.4, 0.4, 0.4],
        },
        "roofline": {
            "threads": 2,
            "sgemm_2048_gflops": {"median": 100.0, "max": 110.0},
            "sgemm_16x576x1536_gflops": {"median": 50.0, "max": 60.0},
            "read_gb_s": {"median": 10.0, "max": 11.0},
            "copy_gb_s": {"median": 8.0, "max": 9.0},
            "buffer_mib": 1024,
        },
        "skipped": {"nnsight": "nnsight is not installed"},
        "workloads": {
            "forward": {
                "elapsed_s": 100.0,
                "processes": [
                    proc("tuned", ["mechscope", "hf-sdpa", "bare"], True, forward_tuned),
                    proc("defaults", ["mechscope", "hf-sdpa"], False, forward_defaults),
                ],
            },
            "debugger": {
                "elapsed_s": 80.0,
                "processes": [
                    proc("tuned", ["mechscope", "bare", "hf-sdpa"], True, debugger_tuned),
                    proc("own", ["mechscope"], True, rss_ours),
                    proc("own", ["bare"], True, rss_bare),
                ],
            },
            "generation": {
                "elapsed_s": 30.0,
                "processes": [proc("tuned", ["mechscope", "hf-sdpa"], True, generation)],
            },
            "cache": {
                "elapsed_s": 60.0,
                "processes": [
                    proc("own", ["mechscope"], True, cache("mechscope", 1.2)),
                    proc("own", ["mechscope"], False, cache("mechscope", 1.5)),
                    proc("own", ["tl"], False, cache("tl", 2.4)),
                ],
            },
            "load": {"elapsed_s": 20.0, "processes": loads},
        },
    }
