from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mechscope.cli import main
from tests.models.loading.test_hf import write_folder


def test_info_prints_architecture_sizes_and_hook_count(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "m")
    result = CliRunner().invoke(main, ["info", str(folder)])
    assert result.exit_code == 0, result.output
    assert "architecture" in result.output and "llama" in result.output
    assert "hook points" in result.output and "load seconds" in result.output
    data = json.loads(CliRunner().invoke(main, ["info", str(folder), "--json"]).output)
    assert data["layers"] == 1 and data["hook_points"] > 20 and data["config"]["d_model"] == 16


def test_bad_model_is_one_line_and_nonzero(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["info", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "no such file or folder" in result.output


def test_bad_option_value_is_rejected() -> None:
    result = CliRunner().invoke(main, ["generate", "hi", "--top-p", "2"])
    assert result.exit_code == 2 and "top-p" in result.output


def test_hooks_lists_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["hooks", str(write_folder(tmp_path / "m")), "--aliases"])
    assert result.exit_code == 0
    assert "blocks.0.mlp.post" in result.output and "hook_embed -> embed" in result.output
