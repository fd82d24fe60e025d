"""The prompt explorer in a real browser (Debian's Chromium via playwright-core) against `mechscope
serve` on the embedded SmolLM2 with a small collated dataset: the grid of every layer's neurons
follows the slider and the arrow keys, a hover names a unit, a click fills the unit pane (its
activation over the prompt, its top corpus examples, its links), a corpus search by title picks a
window as the prompt, the kind switch redraws, and a reload keeps the view.

The dataset is 2048 tokens of a small titled corpus written here (`mechscope collate`). Screenshots
land in ci-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.conftest import need_browser_and_app, run_e2e, serving

pytestmark = pytest.mark.slow

TOPICS = {
    "Photosynthesis": "Plants turn sunlight, water and carbon dioxide into sugar and oxygen. The green pigment "
    "chlorophyll absorbs red and blue light inside the chloroplasts of each leaf.",
    "The Roman Empire": "Rome ruled the Mediterranean for centuries. Its legions built roads, bridges and walls "
    "from Britain to Egypt, and Latin spread with its soldiers and merchants.",
    "Volcanoes": "Molten rock rises through the crust and erupts as lava, ash and gas. Mount Etna in Sicily is "
    "one of the most active volcanoes in Europe.",
    "Honey bees": "A colony of bees has one queen, thousands of workers and a few drones. Workers gather nectar "
    "and pollen and dance to tell the others where the flowers are.",
    "Chess openings": "White opens with the king's pawn or the queen's pawn. The Sicilian Defence and the French "
    "Defence are common answers to the king's pawn opening.",
    "The water cycle": "Water evaporates from the sea, condenses into clouds and falls as rain or snow. Rivers "
    "carry it back to the sea, and the cycle starts again.",
}


def write_corpus(path: Path) -> Path:
    """A JSONL corpus of titled documents, long enough for 2048 tokens of windows."""
    lines = []
    for i in range(8):
        for title, text in TOPICS.items():
            lines.append(
                json.dumps(
                    {"title": f"{title} ({i + 1})", "text": f"{text} Note {i + 1} on {title.lower()}."}
                )
            )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_prompt_explorer_in_chromium(tmp_path: Path) -> None:
    need_browser_and_app()
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    dataset = tmp_path / "dataset"
    subprocess.run(
        [sys.executable, "-m", "mechscope", "collate", "--corpus", str(corpus), "--format", "jsonl",
         "--tokens", "2048", "--window", "32", "--top-k", "5", "--batch", "8", "--out", str(dataset), "-q"],
        check=True, timeout=900,
    )  # fmt: skip
    with serving("--dataset", str(dataset), start_seconds=180) as url:
        shots = run_e2e("e2e:prompt", url, timeout=600)
    assert list(shots.glob("prompt-*.png")), "no screenshots were written"
