"""One workload for a set of implementations, in this (fresh) process; results as JSON.

    python -m bench.worker forward --impls mechscope,hf-sdpa --model real --json out.json

The orchestrator (``python -m bench``) decides which implementations share a process and with
which settings (``MECHSCOPE_KEEP_FREED_MEMORY`` in the environment); this module only runs what
it is told, interleaving the implementations round by round.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", help="forward, actgrad, debugger, generation, cache, sae, load or save-folder")
    p.add_argument("--impls", default="", help="comma-separated implementations (see each workload's IMPLS)")
    p.add_argument("--model", default="real", choices=("real", "random", "tiny"))
    p.add_argument("--lengths", type=int, nargs="*", default=[16])
    p.add_argument("--cell-seconds", type=float, default=2.5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rss", action="store_true", help="also measure each implementation's peak RSS")
    p.add_argument("--folder", help="the Hugging Face checkpoint folder (load, save-folder)")
    p.add_argument("--json", required=True, help="where to write the results")
    return p.parse_args(argv)


def quiet() -> None:
    """Peers' progress bars and deprecation chatter would bury the harness's lines."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("transformer_lens").setLevel(logging.ERROR)


def run(args: argparse.Namespace) -> dict[str, Any]:
    impls = [i for i in args.impls.split(",") if i]
    if args.workload == "save-folder":
        from bench.workloads.load import save_folder

        return save_folder(args.model, Path(args.folder))
    if args.workload == "load":
        from bench.workloads.load import load_once

        (impl,) = impls
        return load_once(impl, Path(args.folder) if args.folder else None)

    import torch

    from bench import _common
    from bench.subjects import load_subject
    from bench.workloads import Context
    from mechscope.models.memory import is_keeping_freed_memory

    t0 = time.perf_counter()
    subject = load_subject(args.model)
    ctx = Context(subject, args.lengths, args.cell_seconds, args.quick, rss=args.rss, folder=args.folder)
    probe = _common.contention_probe()
    module = importlib.import_module(f"bench.workloads.{args.workload}")
    setup_s = time.perf_counter() - t0
    out = module.run(ctx, impls)
    out.update(
        {
            "workload": args.workload,
            "impls": impls,
            "skipped": ctx.skipped,
            "checks": ctx.checks,
            "model": subject.label,
            "keep_freed_memory": is_keeping_freed_memory(),
            "threads": torch.get_num_threads(),
            "probe_start": probe,
            "probe_end": _common.contention_probe(),
            "setup_s": setup_s,
        }
    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet()
    t0 = time.perf_counter()
    out = run(args)
    out["elapsed_s"] = time.perf_counter() - t0
    out["pid"] = os.getpid()
    Path(args.json).write_text(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
