"""``mechscope train-sae`` and ``mechscope eval-sae``: thin wrappers over models/dictionaries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from mechscope.cli_common import MODEL_HELP, friendly_errors

SHOWN = ("l0", "explained_variance", "explained_variance_legacy_around_zero", "loss_added_nats",
         "kl_to_clean", "ce_recovered_vs_zero", "ce_recovered_vs_mean", "dead_fraction", "dense_latents")  # fmt: skip


@click.command("train-sae")
@click.option("--model", "-m", "model_ref", default=None, help=MODEL_HELP)
@click.option("--hook", "hooks", default=None, help="Hook point(s), comma-separated: all from one forward.")
@click.option("--latents", default=None, type=click.IntRange(1), help="Latents per dictionary.")
@click.option(
    "--preset",
    default=None,
    help="demo: SmolLM2's resid_post at layers 3, 6, 9, 4608 latents, k=32, about 4 min on 2 cores "
    "(10 without native bf16); transcoders: a skip-transcoder at each of SmolLM2's 30 MLPs, 2048 "
    "latents, k=16, for attribution graphs, about 16 min (45 without native bf16); sets every training option (--model, --corpus, --out and --quiet still apply).",
)
@click.option(
    "--k", "k", default=32, show_default=True, type=click.IntRange(1), help="Active latents per token."
)
@click.option(
    "--tokens", default=1_000_000, show_default=True, type=click.IntRange(1), help="Training tokens."
)
@click.option("--corpus", "-c", default=None, help="A corpus file or folder, or wiki (the default).")
@click.option(
    "--kind",
    default="sae",
    show_default=True,
    type=click.Choice(["sae", "transcoder", "skip-transcoder"]),
    help="sae, or a transcoder (MLP input -> MLP output; --hook names the MLP: blocks.L.mlp), "
    "or a skip-transcoder (a transcoder plus a learnt linear skip term).",
)
@click.option("--activation", default="topk", show_default=True, help="topk, batchtopk or relu.")
@click.option(
    "--out", default=None, help="Output folder (default $MECHSCOPE_HOME/dictionaries/<model>/<run>)."
)
@click.option(
    "--batch-tokens", default=4096, show_default=True, type=click.IntRange(1), help="Tokens per step."
)
@click.option(
    "--lr", default=None, type=float, help="Adam learning rate (default 2e-4 / sqrt(latents / 2^14))."
)
@click.option("--window", default=128, show_default=True, type=click.IntRange(2), help="Tokens per sequence.")
@click.option("--no-auxk", is_flag=True, help="Turn the AuxK loss off.")
@click.option(
    "--precision",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "fp32", "bf16"]),
    help="Matmul precision: auto is bf16 where the CPU multiplies bf16 natively (AMX, AVX512-BF16), else fp32.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of initialisation and shuffles.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@friendly_errors
def train_sae(
    model_ref: str | None, hooks: str | None, latents: int | None, preset: str | None, k: int, tokens: int, corpus: str | None, kind: str,
    activation: str, out: str | None, batch_tokens: int, lr: float | None, window: int, no_auxk: bool,
    precision: str, seed: int, quiet: bool,
) -> None:  # fmt: skip
    """Train a sparse dictionary per hook point (resumable: rerun the command after a kill)."""
    from mechscope.data.corpora import make_windows, open_corpus
    from mechscope.errors import InputError
    from mechscope.models.dictionaries.training import TrainConfig
    from mechscope.models.dictionaries.workflow import progress_line, train_to_folder
    from mechscope.models.loading import load_model
    from mechscope.models.loading.assets import mechscope_home

    if preset is not None:
        _train_preset(model_ref, preset, corpus, out, quiet)
        return
    if hooks is None or latents is None:
        raise click.UsageError("--hook and --latents are required (or --preset)")
    names = tuple(h.strip() for h in hooks.split(",") if h.strip())
    cfg = TrainConfig(hooks=names, n_latents=latents, k=k, tokens=tokens, activation=activation,
                      kind=kind.replace("-", "_"), batch_tokens=batch_tokens, lr=lr, window=window,
                      auxk=not no_auxk, precision=precision, seed=seed)  # fmt: skip
    text = open_corpus(corpus)
    next(text.documents())  # a bad corpus fails before the model loads
    model = load_model(model_ref)
    for points in cfg.reads.values():
        for p in points:
            model.hook_point(p)  # an unknown hook point fails now, naming the allowed ones
    if model.tokenizer is None:
        raise InputError("this model has no tokenizer; training needs one to cut the corpus into windows")
    eval_windows = 64
    windows = make_windows(text, model.tokenizer, window, cfg.corpus_tokens(eval_windows))
    prefix = "" if kind == "sae" else f"{kind}-"
    run = f"{prefix}{text.name}-{'+'.join(names)}-{latents}-k{k}-{activation}"
    root = Path(out) if out else mechscope_home() / "dictionaries" / (model.cfg.name or "model") / run
    t0 = time.perf_counter()
    results = train_to_folder(
        model, windows.tokens, cfg, root, eval_windows, None if quiet else progress_line(cfg)
    )
    if not quiet:
        click.echo("", err=True)
    click.echo(f"dictionaries: {root} ({time.perf_counter() - t0:.0f} s)")
    for hook, ev in results.items():
        click.echo(f"{hook}: " + ", ".join(f"{m} {_fmt(getattr(ev, m))}" for m in SHOWN))


@click.command("eval-sae")
@click.argument("path")
@click.option("--model", "-m", "model_ref", default=None, help=MODEL_HELP)
@click.option("--corpus", "-c", default=None, help="A corpus file or folder, or wiki (the default).")
@click.option("--tokens", default=65536, show_default=True, type=click.IntRange(1), help="Evaluation tokens.")
@click.option("--hook", default=None, help="The hook point, for files that do not name it (OpenAI .pt).")
@click.option("--window", default=128, show_default=True, type=click.IntRange(2), help="Tokens per sequence.")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON.")
@friendly_errors
def eval_sae(
    path: str,
    model_ref: str | None,
    corpus: str | None,
    tokens: int,
    hook: str | None,
    window: int,
    as_json: bool,
) -> None:
    """Evaluate a dictionary (any supported format) and store the result with it (mechscope folders)."""
    import json

    from mechscope.data.corpora import make_windows, open_corpus
    from mechscope.models.dictionaries.eval import evaluate
    from mechscope.models.loading import load_model
    from mechscope.models.loading.dictionary_formats import NATIVE_CONFIG, load_any, save_dictionary

    coder = load_any(path, hook)
    text = open_corpus(corpus)
    model = load_model(model_ref)
    model.hook_point(coder.cfg.hook)
    windows = make_windows(text, model.tokenizer, window, tokens) if model.tokenizer else None
    if windows is None:
        raise click.ClickException("this model has no tokenizer; evaluation needs one")
    ev = evaluate(model, coder, windows.tokens)
    folder = Path(path).expanduser()
    if (folder / NATIVE_CONFIG).is_file():
        save_dictionary(coder, folder, ev.to_dict())
    if as_json:
        click.echo(json.dumps(ev.to_dict(), indent=2))
        return
    for m in ("hook", "tokens", "predictions", *SHOWN, "fvu", "mse", "ce_clean", "ce_with_dictionary",
              "ce_zero_ablation", "ce_mean_ablation", "dead_latents"):  # fmt: skip
        click.echo(f"{m:<40} {_fmt(getattr(ev, m))}")


@click.command("convert-sae")
@click.argument("source")
@click.option(
    "--to",
    "fmt",
    required=True,
    type=click.Choice(["mechscope", "saelens", "sparsify", "circuit-tracer", "openai"]),
    help="The format to write.",
)
@click.option("--out", required=True, help="Output folder (one sub-folder or file per dictionary).")
@click.option("--hook", default=None, help="The hook point, for an OpenAI .pt that does not name it.")
@click.option(
    "--model-name",
    default=None,
    help="circuit-tracer's config.yaml model_name (default: the model the dictionaries name).",
)
@friendly_errors
def convert_sae(source: str, fmt: str, out: str, hook: str | None, model_name: str | None) -> None:
    """Write dictionaries in another tool's format: SOURCE is anything --sae takes (a dictionary folder
    or file, a train-sae run folder, a circuit-tracer folder). circuit-tracer gets layer_L.safetensors
    files and a config.yaml for load_transcoder_set; OpenAI gets <hook>.pt files."""
    from mechscope.engine.dictionaries import dictionary_folders
    from mechscope.models.loading.dictionary_formats import load_any, save_as, write_circuit_tracer_config

    dest = Path(out).expanduser()
    coders = [load_any(p, hook) for p in dictionary_folders(source)]
    layers: dict[int, Path] = {}
    for coder in coders:
        single = fmt in ("circuit-tracer", "openai")  # one file per dictionary, side by side
        written = save_as(coder, fmt, dest if single or len(coders) == 1 else dest / coder.cfg.hook)
        click.echo(f"{coder.cfg.hook}: {written}")
        if fmt == "circuit-tracer":
            layers[int(coder.cfg.hook.split(".")[1])] = written
    if layers:
        name = model_name or next((c.cfg.model for c in coders if c.cfg.model), "") or "model"
        config = write_circuit_tracer_config(dest, name, layers)
        click.echo(f"circuit-tracer set: {config}")
        if sorted(layers) != list(range(max(layers) + 1)):
            click.echo(
                f"note: circuit-tracer's load_transcoder_set needs a transcoder at every layer 0..{max(layers)}; "
                f"this set has {sorted(layers)}",
                err=True,
            )


def _train_preset(model_ref: str | None, name: str, corpus: str | None, out: str | None, quiet: bool) -> None:
    from mechscope.data.corpora import open_corpus
    from mechscope.models.dictionaries.presets import get_preset, preset_folder, train_preset
    from mechscope.models.dictionaries.workflow import progress_line
    from mechscope.models.loading import load_model

    preset = get_preset(name)
    next(open_corpus(corpus).documents())  # a bad corpus fails before the model loads
    model = load_model(model_ref)
    root = Path(out) if out else preset_folder(model, preset)
    say = (lambda _msg: None) if quiet else click.echo
    results = train_preset(model, preset, root, corpus, None if quiet else progress_line(preset.train), say)
    if not quiet:
        click.echo("", err=True)
    click.echo(f"dictionaries: {root}")
    for hook, ev in results.items():
        click.echo(f"{hook}: " + ", ".join(f"{m} {_fmt(getattr(ev, m))}" for m in SHOWN))


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def register(group: click.Group) -> None:
    """Add the commands to the ``mechscope`` group (called once by cli.py)."""
    group.add_command(train_sae)
    group.add_command(eval_sae)
    group.add_command(convert_sae)
