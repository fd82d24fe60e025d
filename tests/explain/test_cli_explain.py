"""``mechscope explain``: bad input is one line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mechscope.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "gpt"], "--backend 'gpt' is not one of"),
        (["--simulator", "ftp://x"], "--simulator 'ftp://x' is not one of"),
        (
            ["--kinds", "neuron"],
            "node kind 'neuron' is not collated in this dataset; collated: attn_head, mlp_neuron",
        ),
        (["--layers", "1,x"], "'1,x' is not a comma-separated list of integers"),
        (["--layers", "7"], "layer 7 of attn_head does not exist: layers 0..1"),
    ],
)
def test_bad_input_is_one_line(digit_root: Path, args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, ["explain", "--dataset", str(digit_root), *args])
    assert res.exit_code != 0
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert message in res.output and len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output


def test_not_a_dataset(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["explain", "--dataset", str(tmp_path)])
    assert (
        res.exit_code == 1
        and res.output.strip()
        == f"Error: {tmp_path}: not a collated dataset (no manifest.json); build one with mechscope collate"
    )
