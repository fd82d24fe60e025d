"""``mechscope maps``: the 2-D maps of a collated dataset's prompts and units (docs/maps.md)."""

from __future__ import annotations

from pathlib import Path

import click

from mechscope.cli_common import friendly_errors


@click.command("maps")
@click.argument("dataset", type=click.Path(file_okay=False, path_type=Path))
@click.option("--what", type=click.Choice(["prompts", "units", "both"]), default="both", show_default=True,
              help="Which map to compute.")  # fmt: skip
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(0, 2**31 - 1),
    help="t-SNE's and the SVD's seed.",
)
@click.option("--perplexity", default=30.0, show_default=True, type=click.FloatRange(1, 500),
              help="t-SNE's perplexity (lowered to fit a small dataset).")  # fmt: skip
@click.option(
    "--force", is_flag=True, help="Recompute even when the stored maps match the dataset and options."
)
@click.option("--jobs", default=None, type=click.IntRange(1), help="t-SNE threads (default: every CPU).")
@friendly_errors
def maps(dataset: Path, what: str, seed: int, perplexity: float, force: bool, jobs: int | None) -> None:
    """Place DATASET's prompts (windows) and units on 2-D maps (t-SNE of what fires where, from the
    stored examples and samples: no model run), stored in DATASET/maps/; skipped when up to date."""
    from mechscope.data.maps import WHAT, MapParams, What, compute_maps, is_current, load_map, map_path
    from mechscope.data.store import Dataset
    from mechscope.errors import InputError

    if not (dataset / "manifest.json").is_file():
        raise InputError(
            f"{dataset}: not a collated dataset folder (no manifest.json); see mechscope collate"
        )
    chosen: tuple[What, ...] = WHAT if what == "both" else (what,)  # type: ignore[assignment]
    params = MapParams(seed=seed, perplexity=perplexity)
    with Dataset(dataset) as ds:
        # decided as compute_maps decides it (a stored map's timestamp has 1 s resolution: two maps
        # made in the same second looked like one kept)
        kept = {w for w in chosen if not force and is_current(load_map(dataset, w), ds, params)}
        out = compute_maps(ds, chosen, params, force=force, n_jobs=jobs)
    for w, m in out.items():
        reused = w in kept
        i = m.info
        state = "up to date, kept" if reused else f"computed in {i['seconds']:.1f} s"
        click.echo(
            f"{w}: {len(m):,} points ({i['rows']:,} x {i['cols']:,}, {i['nnz']:,} non-zero, "
            f"{i['dims']} SVD dims, perplexity {i['perplexity']}, seed {i['seed']}); {state} -> {map_path(dataset, w)}"
        )


def register(main: click.Group) -> None:
    main.add_command(maps)
