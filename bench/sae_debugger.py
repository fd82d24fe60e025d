"""The Debugger on IOI with dictionaries attached, through the HTTP API the web app calls.

    python bench/sae_debugger.py                 # the demo preset's dictionaries (train-sae --preset demo)
    python bench/sae_debugger.py --sae DIR ...   # any dictionaries serve --sae accepts
    python bench/sae_debugger.py --checkpoint    # the demo preset's last checkpoint (still training)

Prints how many of the node table's rows are latents (the request the Debugger page sends for
mechscope demo: k=10, the default kinds) and verify's correlation between estimated and true
ablation effects on the 20 latents with the largest |estimated total effect|, then over the
default kinds together.
"""

from __future__ import annotations

import argparse
import time

from fastapi.testclient import TestClient

import mechscope as ms
from mechscope.engine.dictionaries import attach_all, demo_refs
from mechscope.engine.kinds.latent import attach
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries import DictionaryConfig, SparseCoder
from mechscope.models.dictionaries.checkpoint import load_checkpoint
from mechscope.models.dictionaries.presets import DEMO, preset_folder
from mechscope.server.app import create_app

IOI = {
    "prompt": "When Mary and John went to the store, John gave a drink to",
    "targets": [" Mary"],
    "distractors": [" John"],
    "k": 10,
}


def attach_checkpoint(model: HookedDecoder) -> list[str]:
    """The demo preset's dictionaries as its last checkpoint holds them (a run still training)."""
    cfg = DEMO.train
    saved = load_checkpoint(preset_folder(model, DEMO), cfg.to_dict())
    assert saved is not None, "no checkpoint of the demo preset yet"
    next_chunk, states = saved
    names = []
    for hook in cfg.hooks:
        d_in = states[hook]["coder"]["W_enc"].shape[0]
        coder = SparseCoder(DictionaryConfig(d_in=d_in, n_latents=cfg.n_latents, hook=hook, k=cfg.k))
        coder.load_state_dict(states[hook]["coder"])
        tokens = int(states[hook]["counters"][1])
        names.append(attach(model, coder.eval()))
        print(f"{hook}: checkpoint after chunk {next_chunk}, {tokens:,} of {cfg.tokens:,} training tokens")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sae", action="append", default=None, help="dictionary folders (default: demo)")
    ap.add_argument("--top", type=int, default=20, help="latents verified")
    ap.add_argument("--checkpoint", action="store_true", help="the demo preset's last checkpoint")
    args = ap.parse_args()
    model = ms.load_model()
    if args.checkpoint:
        names = attach_checkpoint(model)
    else:
        names = attach_all(model, demo_refs(model, args.sae or ["demo"], print))
    print(f"attached: {', '.join(names)}")
    client = TestClient(create_app(model), base_url="http://localhost")
    t0 = time.perf_counter()
    r = client.post("/api/debug", json=IOI)
    r.raise_for_status()
    left = r.json()["left"]
    rows = left["nodes"]
    latent_rows = [n for n in rows if n["node"]["kind"] in names]
    print(f"/api/debug: value {left['value']:.3f} in {time.perf_counter() - t0:.1f} s; node table "
          f"{len(rows)} rows, {len(latent_rows)} latents")  # fmt: skip
    for kind in names:
        print(f"  {kind}: {sum(n['node']['kind'] == kind for n in rows)} rows")
    top = sorted(latent_rows, key=lambda n: -abs(n["total_effect"]))[:5]
    for n in top:
        print(f"  {n['label']:<28} token {n['token']!r:<10} act {n['activation']:.2f} "
              f"est. total {n['total_effect']:+.3f}")  # fmt: skip
    for label, kinds in (("latents", names), ("default kinds", None)):
        body = {**IOI, "top_n": args.top} | ({"kinds": kinds} if kinds else {})
        t0 = time.perf_counter()
        v = client.post("/api/verify", json=body)
        v.raise_for_status()
        out = v.json()
        pearson, spearman = out["pearson"], out["spearman"]
        print(f"/api/verify top {args.top} ({label}): Pearson {pearson:.3f}, Spearman {spearman:.3f} "
              f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
