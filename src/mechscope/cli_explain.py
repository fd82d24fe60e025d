"""``mechscope explain``: explain and score a dataset's nodes (docs/explanations.md)."""

from __future__ import annotations

from pathlib import Path

import click

from mechscope.cli_common import MODEL_HELP, friendly_errors, ray_option


def _ints(text: str | None, option: str) -> list[int] | None:
    from mechscope.errors import InputError

    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{option}: {text!r} is not a comma-separated list of integers") from None


@click.command("explain")
@click.option(
    "--dataset", "dataset", required=True, type=click.Path(file_okay=False), help="A collated dataset folder."
)
@click.option("--layers", default=None, help="Comma-separated layers (default: all).")
@click.option(
    "--kinds",
    default=None,
    help="Comma-separated node kinds, e.g. mlp_neuron,attn_head (default: all collated).",
)
@click.option(
    "--backend",
    default="baseline",
    show_default=True,
    help="Explainer: baseline (no LLM), local, or an OpenAI-compatible endpoint URL.",
)
@click.option(
    "--model", "llm_model", default=None, help="The endpoint's model name (with a URL backend or simulator)."
)
@click.option("--local-model", default=None, help="The local LLM: " + MODEL_HELP)
@click.option(
    "--simulator",
    default=None,
    help="Simulator and judge: local, a URL, or none (default: the backend's; local for baseline).",
)
@click.option("--dataset-model", default=None, help="The model the dataset was collated with: " + MODEL_HELP)
@click.option(
    "--sae", "saes", multiple=True, help="Dictionaries the dataset's latents came from (as for collate)."
)
@click.option(
    "--limit", default=None, type=click.IntRange(1), help="Explain a seeded random sample of this many nodes."
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="Nodes explained side by side: threads (default 1), or with --ray Ray workers, each with its "
    "own model copies (default: one per GPU of the cluster, or per CPU without GPUs).",
)
@ray_option("Explain on Ray workers")
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the node sample, record draws and bootstraps.",
)
@click.option("--quiet", is_flag=True, help="No progress line.")
@friendly_errors
def explain(
    dataset: str,
    layers: str | None,
    kinds: str | None,
    backend: str,
    llm_model: str | None,
    local_model: str | None,
    simulator: str | None,
    dataset_model: str | None,
    saes: tuple[str, ...],
    limit: int | None,
    workers: int | None,
    ray_address: str | None,
    seed: int,
    quiet: bool,
) -> None:
    """Explain a collated dataset's nodes and score each explanation on held-out examples.

    Results go to explanations.duckdb in the dataset folder; a re-run skips the nodes done.
    """
    from mechscope.data.collate import weights_fingerprint
    from mechscope.data.store import Dataset
    from mechscope.errors import InputError
    from mechscope.explain.jobs import (
        MAX_CALLS_WITHOUT_LIMIT,
        BackendSpec,
        JobConfig,
        JobRecorder,
        calls_per_node,
        progress_line,
        run_job,
        select_nodes,
    )
    from mechscope.explain.records import RecordConfig
    from mechscope.explain.store import ExplanationStore
    from mechscope.models.loading import load_model

    root = Path(dataset)
    if not (root / "manifest.json").is_file():
        raise InputError(
            f"{root}: not a collated dataset (no manifest.json); build one with mechscope collate"
        )
    spec = BackendSpec(backend, simulator, llm_model, local_model)
    ds = Dataset(root)
    if ds.progress()["status"] != "done":
        raise InputError(f"{root}: the collation is not finished; explain a finished dataset")
    nodes = select_nodes(ds, kinds.split(",") if kinds else None, _ints(layers, "--layers"), limit, seed)
    cfg = JobConfig(records=RecordConfig(seed=seed), seed=seed)
    model = load_model(dataset_model)
    if saes:
        from mechscope.engine.dictionaries import attach_all, demo_refs

        attach_all(model, demo_refs(model, list(saes), click.echo))
    if weights_fingerprint(model) != ds.meta().get("weights"):
        raise InputError(
            f"{root} was collated with {ds.meta().get('model')!r}, not these weights; pass that model as --dataset-model"
        )
    store = ExplanationStore(root)

    def plan(rec: JobRecorder) -> None:
        calls = len(rec.todo) * calls_per_node(rec.key, cfg)
        click.echo(
            f"{len(rec.todo):,} of {len(nodes):,} nodes to explain ({rec.key[0]}), scored by "
            f"{spec.scorer}: up to ~{calls:,} LLM calls"
        )
        if calls > MAX_CALLS_WITHOUT_LIMIT and limit is None:
            raise InputError(
                f"~{calls:,} LLM calls planned (more than {MAX_CALLS_WITHOUT_LIMIT:,}): pass --limit N"
            )

    progress = None if quiet else progress_line()
    try:
        if ray_address is None:
            summary = run_job(ds, store, nodes, model, spec.build(), cfg, workers or 1, progress, before=plan)
        else:
            from mechscope.explain.distributed import explain_on_ray

            # The cost is printed once the workers have built their backends (no LLM on the driver).
            summary = explain_on_ray(
                ds, store, nodes, model, spec, cfg, None if ray_address == "local" else ray_address,
                workers, progress, plan,
            )  # fmt: skip
    finally:
        store.close()
        ds.close()
    if not quiet:
        click.echo("", err=True)
    click.echo(
        f"explained {summary.done:,} nodes ({summary.failed} failed, {summary.skipped:,} already done) "
        f"in {summary.seconds:.1f} s; results in {root / 'explanations.duckdb'}"
    )


def register(group: click.Group) -> None:
    """Add the command to the ``mechscope`` group (called once by cli.py)."""
    group.add_command(explain)
