"""``mechscope attribute``: the Debugger's node table in a terminal (or as JSON)."""

from __future__ import annotations

import json
from typing import Any

import click

from mechscope.errors import InputError


def run_attribute(
    *,
    prompt: str,
    model_ref: str | None,
    targets: list[str],
    distractors: list[str],
    position: int,
    trace: str | None,
    through: str | None,
    ablate: list[str],
    k: int,
    rows: int,
    kinds: list[str],
    freeze_norm_scale: bool,
    verify_n: int,
    as_json: bool,
) -> None:
    from mechscope.engine.compare import Run, compare
    from mechscope.engine.directions import Direction, LogitDiff, NodeDirection
    from mechscope.engine.interventions import Intervention
    from mechscope.engine.kinds import get_kind
    from mechscope.engine.nodes import Node
    from mechscope.engine.verify import verify
    from mechscope.models.loading import load_model

    direction: Direction
    if trace is not None:
        if targets or distractors:
            raise InputError("give either --trace or --target/--distractor, not both")
        direction = NodeDirection(node=Node.parse(trace), through=through)
    elif targets:
        if through is not None:
            raise InputError("--through only applies with --trace")
        direction = LogitDiff(targets=list(targets), distractors=list(distractors), position=position)
    else:
        raise InputError("say what to explain: --target TOKEN [--distractor TOKEN], or --trace NODE")
    ablations = [Intervention.on_node(Node.parse(a)) for a in ablate]
    model = load_model(model_ref)
    for name in kinds or []:
        try:
            get_kind(name, model)
        except InputError as e:
            raise InputError(f"--kinds: {e}") from None
    cmp = compare(
        model,
        Run(prompt=prompt),
        Run(prompt=prompt, interventions=ablations),
        direction,
        kinds=kinds or None,
        freeze_norm_scale=freeze_norm_scale,
    )
    attr = cmp.right  # the ablated run when --ablate is given, else identical to the baseline
    summary = attr.summary(k=k)
    checked = verify(attr, top_n=verify_n) if verify_n else None
    if as_json:
        out: dict[str, Any] = {"result": summary.model_dump()}
        if ablations:
            out["baseline_value"] = cmp.left.value
            out["interventions"] = [iv.model_dump() for iv in ablations]
        if checked is not None:
            out["verify"] = checked.model_dump()
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{summary.direction} at position {summary.position} ({summary.tokens[summary.position]!r})")
    if ablations:
        click.echo(
            f"baseline {cmp.left.value:+.4f}  ->  with {', '.join(ablate)} ablated {attr.value:+.4f}"
            f"  (change {cmp.value_diff:+.4f})"
        )
    else:
        click.echo(f"value {attr.value:+.4f}")
    if summary.candidates:
        click.echo("\nnext-token candidates")
        click.echo(
            _table(
                [[str(c.rank), repr(c.token), f"{c.logit:.3f}", f"{c.prob:.4f}"] for c in summary.candidates],
                ["rank", "token", "logit", "prob"],
            )
        )
    click.echo(
        f"\ntop nodes by |estimated total effect| ({min(rows, len(summary.nodes))} of {len(summary.nodes)})"
    )
    body = [
        [
            n.label,
            repr(n.token) + (f" <- {n.key_token!r}" if n.key_token is not None else ""),
            "" if n.activation is None else f"{n.activation:.3f}",
            f"{n.write_norm:.3f}",
            f"{n.direct_effect:+.4f}",
            f"{n.total_effect:+.4f}",
        ]
        for n in summary.nodes[:rows]
    ]
    click.echo(_table(body, ["node", "token", "activation", "write", "direct", "total (est.)"]))
    if checked is not None:
        click.echo(f"\nverify: top {len(checked.nodes)} nodes ablated one at a time")
        click.echo(f"pearson {_num(checked.pearson)}   spearman {_num(checked.spearman)}")


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
