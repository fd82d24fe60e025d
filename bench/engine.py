"""The debugger's computation vs a bare forward+backward of the same model, in one run.

    python bench/engine.py                 # 16, 64 and 256 tokens on the embedded SmolLM2
    python bench/engine.py --lengths 16    # one length
    python bench/engine.py --json out.json

"debugger" is what the Debugger page asks for: :func:`mechscope.engine.attribution.attribute`
with every node kind (one forward with the attention pattern materialised, one backward, every
metric of every neuron, head, pair, embedding and layer output) plus the summary (top-k per
metric, token effects, logits table). The baseline is the same model's plain forward (fused
attention, no hooks) and backward of the same logit difference, with the embeddings requiring
grad as the debugger's do. Target: debugger / baseline <= 1.5x.
"""

from __future__ import annotations

import argparse

import torch
from _common import (
    DEBUGGER_OVER_BARE,
    bench_interleaved,
    busy_warning,
    contention_probe,
    load_model_under_test,
    machine,
    table,
    write_json,
)

from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff

TARGET = DEBUGGER_OVER_BARE
TEXT = (
    "When Mary and John went to the store, John gave a drink to Mary. The store was on the corner of "
    "the street, next to the old library where the children used to read on Sunday afternoons. "
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--cell-seconds", type=float, default=4.0)
    ap.add_argument("--random-weights", action="store_true", help="SmolLM2's shape, random weights")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()
    model, label = load_model_under_test(args.random_weights)
    assert model.tokenizer is not None
    ids = model.tokenizer.encode(TEXT * 20)
    mary, john = model.tokenizer.encode(" Mary", False)[0], model.tokenizer.encode(" John", False)[0]
    direction = LogitDiff(targets=[[mary]], distractors=[[john]])
    m = machine()
    print(
        f"debugger benchmark: {label}\n{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads)"
    )
    results = []
    for t in args.lengths:
        tokens = torch.tensor([ids[:t]])

        def bare(tokens: torch.Tensor = tokens) -> float:
            with torch.enable_grad():
                emb = model.embed_tokens.weight  # a leaf that needs no grad; the hook-free path
                logits = _forward_with_grad(model, tokens, emb)
                value = logits[0, -1, mary] - logits[0, -1, john]
                value.backward()
            return float(value.detach())

        def debugger(tokens: torch.Tensor = tokens) -> float:
            attr = attribute(model, tokens, direction)
            attr.summary(k=10)
            return attr.value

        probe = contention_probe()
        timings, outs = bench_interleaved({"bare": bare, "debugger": debugger}, args.cell_seconds)
        if abs(outs["bare"] - outs["debugger"]) > 1e-3:
            raise SystemExit(f"values differ at {t} tokens: {outs['bare']} vs {outs['debugger']}")
        ratio = timings["debugger"].median_ms / timings["bare"].median_ms
        results.append(
            {
                "tokens": t,
                "bare_ms": timings["bare"].median_ms,
                "debugger_ms": timings["debugger"].median_ms,
                "ratio": ratio,
                "rounds": len(timings["bare"].samples),
                "busy": busy_warning(probe),
            }
        )
    rows = [
        [
            str(r["tokens"]),
            f"{r['bare_ms']:.1f}",
            f"{r['debugger_ms']:.1f}",
            f"{r['ratio']:.2f}x",
            f"<= {TARGET:.2f}x",
            "met" if r["ratio"] <= TARGET else "NOT met",
            str(r["rounds"]),
        ]
        for r in results
    ]
    print(table(rows, ["tokens", "bare fwd+bwd ms", "debugger ms", "ratio", "target", "", "rounds"]))
    for r in results:
        if r["busy"]:
            print(f"WARNING at {r['tokens']} tokens: {r['busy']}")
    write_json(args.json, {"machine": machine(), "model": label, "results": results})


def _forward_with_grad(model: torch.nn.Module, tokens: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    # The debugger needs gradients at every activation but none for weights; the baseline makes
    # the token embeddings require grad so that the backward runs through every layer the same way.
    from mechscope.models.decoder import HookedDecoder

    assert isinstance(model, HookedDecoder)
    positions = torch.arange(tokens.shape[1]).expand(tokens.shape)
    x = model.embed_step(tokens, positions, track_grad=True)
    ctx = model.attention_context(positions, None)
    for i in range(model.cfg.n_layers):
        x = model.block(i)(x, ctx)
    del emb
    # Only the scored position is unembedded, as the debugger does: the baseline is the cheapest
    # plain pass that computes the same value, not one that wastes a (pos, d_vocab) product.
    return model.unembed(model.final_norm(x[:, -1:]))


if __name__ == "__main__":
    main()
