"""``mechscope collate``: the library calls behind the command, and its summary."""

from __future__ import annotations

from pathlib import Path

import click


def run_collate(
    model_ref: str | None,
    corpus_ref: str | None,
    tokens: int,
    out: str | None,
    window: int,
    top_k: int,
    batch: int,
    fmt: str | None,
    field: str | None,
    quiet: bool,
    ray_address: str | None = None,
    workers: int | None = None,
    preview: bool = False,
    dictionaries: list[str] | None = None,
) -> Path:
    import time

    from mechscope.data.collate import CollateConfig, ProgressBar, collate
    from mechscope.data.corpora import make_windows, open_corpus
    from mechscope.data.store import Dataset, Workspace, default_workspace
    from mechscope.errors import InputError
    from mechscope.models.loading import load_model

    corpus = open_corpus(corpus_ref, fmt, field)
    next(corpus.documents())  # read the first document before loading the model: bad corpora fail fast
    model = load_model(model_ref)
    if dictionaries:  # their latents are node kinds, collated like neurons (Ray ships them in the model)
        from mechscope.engine.dictionaries import attach_all, demo_refs

        attach_all(model, demo_refs(model, dictionaries, click.echo))
    if model.tokenizer is None:
        raise InputError("this model has no tokenizer; collation needs one to cut the corpus into windows")
    windows = make_windows(corpus, model.tokenizer, window, tokens or None)
    model_name = model.cfg.name or Path(model_ref or "model").stem
    root = Path(out) if out else default_workspace(model_name, f"{corpus.name}-{windows.n * (window - 1)}")
    cfg = CollateConfig(window=window, top_k=top_k, batch=batch)
    t0 = time.perf_counter()
    bar = None if quiet else ProgressBar(window - 1)
    if ray_address is None:
        collate(model, windows, Workspace(root), cfg, corpus.name, corpus.attribution, bar, preview)
    else:
        from mechscope.data.distributed import collate_on_ray

        address = None if ray_address == "local" else ray_address
        collate_on_ray(
            model,
            windows,
            Workspace(root),
            cfg,
            corpus.name,
            corpus.attribution,
            bar,
            address,
            workers,
            preview,
        )
    with Dataset(root) as ds:
        n_nodes = ds.query("SELECT count(*) AS n FROM nodes")[0]["n"]
        dense = ds.query(
            "SELECT kind, avg(density) AS density FROM nodes GROUP BY kind ORDER BY kind"
        )  # a one-line health check: dead or saturated models show here
    click.echo(f"dataset: {root}")
    click.echo(
        f"{windows.n:,} windows of {window} tokens ({windows.n * (window - 1):,} corpus tokens, "
        f"{len(windows.documents):,} documents) from {corpus.description}; {n_nodes:,} nodes, top {top_k} "
        f"examples each; {time.perf_counter() - t0:.1f} s"
    )
    click.echo("mean density: " + ", ".join(f"{r['kind']} {r['density']:.3f}" for r in dense))
    if corpus.attribution:
        click.echo(f"corpus: {corpus.attribution}")
    return root
