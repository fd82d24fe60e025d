"""The ``mechscope`` command line: thin wrappers over library calls."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mechscope import __version__
from mechscope.cli_common import MODEL_HELP, friendly_errors, ray_option

SAE_HELP = (
    "Attach a dictionary (repeatable or comma-separated): a train-sae output folder or one of its "
    "per-hook folders, a SAELens or sparsify folder; 'demo': the demo preset's (trained first if absent); "
    "'transcoders': SmolLM2's per-layer transcoders for attribution graphs (the same)."
)


@click.group()
@click.version_option(__version__, prog_name="mechscope")
def main() -> None:
    """mechscope: a fast, offline transformer debugger."""


@main.command()
@click.argument("model", required=False)
@click.option("--dtype", default="float32", show_default=True, help="float32, bfloat16 or float16.")
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
@friendly_errors
def info(model: str | None, dtype: str, as_json: bool) -> None:
    """Print a model's architecture, sizes, hook points and load time.

    MODEL: a .gguf file, a Hugging Face checkpoint folder, or smollm2 (default) / gemma3-270m.
    """
    import dataclasses

    from mechscope.models.loading import load_model

    m = load_model(model, dtype=dtype)
    cfg = m.cfg
    facts: dict[str, Any] = {
        "name": cfg.name,
        "architecture": cfg.architecture,
        "weights": cfg.note or "as stored",
        "dtype": str(m.dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in m.parameters()),
        "layers": cfg.n_layers,
        "d_model": cfg.d_model,
        "heads": f"{cfg.n_heads} query / {cfg.n_kv_heads} key-value, d_head {cfg.d_head}",
        "d_mlp": cfg.d_mlp,
        "vocab": cfg.d_vocab,
        "context": cfg.n_ctx,
        "hook_points": len(m.hook_names()),
        "load_seconds": round(m.load_seconds, 3),
    }
    if as_json:
        click.echo(json.dumps({**facts, "config": dataclasses.asdict(cfg)}, indent=2))
        return
    width = max(len(k) for k in facts)
    for k, v in facts.items():
        v = f"{v:,}" if isinstance(v, int) else v
        click.echo(f"{k.replace('_', ' '):<{width}}  {v}")


@main.command()
@click.argument("prompt")
@click.option("--model", "-m", default=None, help=MODEL_HELP)
@click.option("--max-new-tokens", "-n", default=32, show_default=True, type=click.IntRange(0, 4096))
@click.option(
    "--temperature", "-t", default=0.0, show_default=True, type=click.FloatRange(0), help="0 is greedy."
)
@click.option("--top-k", default=None, type=click.IntRange(1), help="Sample among the k likeliest tokens.")
@click.option(
    "--top-p", default=None, type=click.FloatRange(0, 1, min_open=True), help="Nucleus sampling mass."
)
@click.option("--seed", default=None, type=int, help="Random seed for sampling.")
@click.option("--stop", multiple=True, help="Stop when this text appears (repeatable).")
@friendly_errors
def generate(
    prompt: str,
    model: str | None,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    stop: tuple[str, ...],
) -> None:
    """Continue PROMPT with the model (KV-cached sampling), printing prompt and continuation."""
    from mechscope.models.loading import load_model

    m = load_model(model)
    out = m.generate(
        prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        stop_strings=stop,
    )
    click.echo(prompt + click.style(out.text, bold=True))


@main.command()
@click.argument("prompt")
@click.option("--model", "-m", default=None, help=MODEL_HELP)
@click.option(
    "--target", "targets", multiple=True, help="Token (or text) whose score is explained (repeatable)."
)
@click.option(
    "--distractor", "distractors", multiple=True, help="Token subtracted from the targets (repeatable)."
)
@click.option("--position", default=-1, show_default=True, help="Prompt position whose next token is scored.")
@click.option(
    "--trace", default=None, help="Explain a node instead, e.g. L5.attn_head.2@10<-3 or L3.mlp_neuron.7@4."
)
@click.option(
    "--through",
    type=click.Choice(["pre", "post", "query", "key", "query_key", "value"]),
    default=None,
    help="With --trace: what of the node is traced (see docs/attribution.md).",
)
@click.option(
    "--ablate", multiple=True, help="Zero-ablate this node first (repeatable); shows baseline vs ablated."
)
@click.option(
    "-k",
    "k",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Top nodes per kind and metric.",
)
@click.option("--rows", default=25, show_default=True, type=click.IntRange(1), help="Node rows printed.")
@click.option(
    "--kinds",
    default=None,
    help="Comma-separated node kinds to score (default: the model's default kinds; docs/attribution.md).",
)
@click.option("--keep-norm-scale", is_flag=True, help="Let the gradient flow through the final norm's scale.")
@click.option(
    "--verify", "verify_n", default=0, type=click.IntRange(0, 200), help="Ablate the top N nodes and compare."
)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@friendly_errors
def attribute(
    prompt: str,
    model: str | None,
    targets: tuple[str, ...],
    distractors: tuple[str, ...],
    position: int,
    trace: str | None,
    through: str | None,
    ablate: tuple[str, ...],
    k: int,
    rows: int,
    kinds: str | None,
    keep_norm_scale: bool,
    verify_n: int,
    as_json: bool,
) -> None:
    """Why does the model give PROMPT's next token? Scores every node for a logit difference
    (--target/--distractor) or for a traced node (--trace), in one forward and backward pass."""
    from mechscope.cli_attribute import run_attribute

    run_attribute(
        prompt=prompt,
        model_ref=model,
        targets=list(targets),
        distractors=list(distractors),
        position=position,
        trace=trace,
        through=through,
        ablate=list(ablate),
        k=k,
        rows=rows,
        kinds=[x.strip() for x in (kinds or "").split(",") if x.strip()],
        freeze_norm_scale=not keep_norm_scale,
        verify_n=verify_n,
        as_json=as_json,
    )


@main.command()
@click.option("--model", "-m", default=None, help=MODEL_HELP)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; 0.0.0.0 exposes the server to the network, which then requires an access "
    "token ($MECHSCOPE_TOKEN, or one generated and printed).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--cors-origin", "cors", multiple=True, help="Also allow API calls from this origin (repeatable)."
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Also answer requests whose Host header names this host (repeatable; '*': any). localhost, "
    "IP addresses and the --host name are always answered.",
)
@click.option(
    "--dataset",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A collated dataset folder (mechscope collate) for the node pages.",
)
@click.option("--sae", "saes", multiple=True, help=SAE_HELP)
@friendly_errors
def serve(
    model: str | None,
    host: str,
    port: int,
    cors: tuple[str, ...],
    allowed_hosts: tuple[str, ...],
    dataset: Path | None,
    saes: tuple[str, ...],
) -> None:
    """Serve the JSON API (/api, schema at /openapi.json) and the web app for a model."""
    from mechscope.engine.dictionaries import split_refs
    from mechscope.server.run import serve_model

    serve_model(
        model,
        host,
        port,
        list(cors),
        "",
        open_browser=False,
        dataset=dataset,
        allowed_hosts=list(allowed_hosts),
        dictionaries=split_refs(saes),
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--no-browser", is_flag=True, help="Do not open a browser; only print the address.")
@click.option("--no-collate", is_flag=True, help="Do not collate the default corpus slice in the background.")
@click.option(
    "--background-llm/--no-background-llm",
    default=True,
    show_default=True,
    help="After the baseline explanations, explain the collated units with the shipped SmolLM2 too "
    "(in the background, at low priority; kept for the next start).",
)
@click.option("--sae", "saes", multiple=True, help=SAE_HELP)
@friendly_errors
def demo(
    host: str, port: int, no_browser: bool, no_collate: bool, background_llm: bool, saes: tuple[str, ...]
) -> None:
    """Serve the embedded SmolLM2 and open the Debugger on the IOI prompt (" Mary" vs " John");
    collate a slice of the default corpus for the node pages in the background and explain its
    units. With --sae demo, the demo preset's dictionaries are attached (trained first, once, if
    absent)."""
    from mechscope.engine.dictionaries import split_refs
    from mechscope.server.run import IOI_QUERY, serve_model

    serve_model(
        None, host, port, [], IOI_QUERY, open_browser=not no_browser, collate_demo=not no_collate,
        dictionaries=split_refs(saes), background_llm=background_llm,
    )  # fmt: skip


@main.command()
@click.option("--model", "-m", default=None, help=MODEL_HELP)
@click.option(
    "--corpus",
    "-c",
    default=None,
    help="A .txt file or folder, .jsonl, .parquet, datasets folder, or wiki (default).",
)
@click.option(
    "--tokens",
    default=100_000,
    show_default=True,
    type=click.IntRange(0),
    help="Corpus tokens to collate (0: all).",
)
@click.option(
    "--out", default=None, help="Dataset folder (default $MECHSCOPE_HOME/datasets/<model>/<corpus>)."
)
@click.option(
    "--window", default=64, show_default=True, type=click.IntRange(2, 4096), help="Tokens per example."
)
@click.option(
    "--top-k", default=20, show_default=True, type=click.IntRange(1, 1000), help="Top examples per node."
)
@click.option(
    "--batch", default=16, show_default=True, type=click.IntRange(1, 4096), help="Windows per forward."
)
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl", "parquet", "hf"]), help="Corpus format.")
@click.option(
    "--field", default=None, help="JSONL field / Parquet or datasets column with the text (default text)."
)
@ray_option("Split the work across Ray workers")
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1),
    help="Ray workers (default: one per GPU of the cluster, or per CPU without GPUs).",
)
@click.option(
    "--preview",
    is_flag=True,
    help="While running, also write a database of the windows done so far after 1, 2, 4, ... shards.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--sae", "saes", multiple=True, help=SAE_HELP)
@friendly_errors
def collate(
    model: str | None,
    corpus: str | None,
    tokens: int,
    out: str | None,
    window: int,
    top_k: int,
    batch: int,
    fmt: str | None,
    field: str | None,
    ray_address: str | None,
    workers: int | None,
    preview: bool,
    quiet: bool,
    saes: tuple[str, ...],
) -> None:
    """Collate what makes every MLP neuron and attention head (and --sae latent) fire over a corpus
    (resumable)."""
    from mechscope.data.cli_collate import run_collate
    from mechscope.engine.dictionaries import split_refs

    if workers is not None and ray_address is None:
        raise click.UsageError("--workers goes with --ray")
    run_collate(
        model, corpus, tokens, out, window, top_k, batch, fmt, field, quiet,
        ray_address=ray_address, workers=workers, preview=preview, dictionaries=split_refs(saes),
    )  # fmt: skip


@main.command()
@click.argument("model", required=False)
@click.option("--aliases", is_flag=True, help="Also list the TransformerLens-style aliases.")
@friendly_errors
def hooks(model: str | None, aliases: bool) -> None:
    """List the model's hook point names, in forward order."""
    from mechscope.models.hooks import tl_aliases
    from mechscope.models.loading import load_model

    for name in load_model(model).hook_names():
        click.echo(name)
    if aliases:
        for alias, name in tl_aliases().items():
            click.echo(f"{alias} -> {name}")


from mechscope.cli_dictionaries import register as _register_dictionaries  # noqa: E402

_register_dictionaries(main)
from mechscope.cli_models import register as _register_models  # noqa: E402

_register_models(main)
from mechscope.cli_explain import register as _register_explain  # noqa: E402
from mechscope.cli_graph import register as _register_graph  # noqa: E402

_register_explain(main)
_register_graph(main)
from mechscope.data.cli_maps import register as _register_maps  # noqa: E402

_register_maps(main)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
