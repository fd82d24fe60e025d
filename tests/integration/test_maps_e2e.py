"""The Maps page in a real browser (Debian's Chromium via playwright-core) against `mechscope serve`
on the embedded SmolLM2 with a small collated dataset whose maps `mechscope maps` computed: both
maps render, colour by kind names the kinds, a search dims the rest, the wheel zooms around the
cursor and a drag pans (the view in the URL, kept by a reload), and a click opens the right page:
a unit its node page, a prompt the prompt explorer on that window's text.

The dataset is 4096 tokens of a plain-text corpus written here. Screenshots land in
ci-artifacts/screenshots/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.conftest import need_browser_and_app, run_e2e, serving

pytestmark = pytest.mark.slow

PARAGRAPHS = {
    "photosynthesis": "Plants turn sunlight, water and carbon dioxide into sugar and oxygen. The green pigment "
    "chlorophyll absorbs red and blue light inside the chloroplasts of each leaf.",
    "rome": "Rome ruled the Mediterranean for centuries. Its legions built roads, bridges and walls from Britain "
    "to Egypt, and Latin spread with its soldiers and merchants.",
    "volcanoes": "Molten rock rises through the crust and erupts as lava, ash and gas. Mount Etna in Sicily is one "
    "of the most active volcanoes in Europe.",
    "bees": "A colony of bees has one queen, thousands of workers and a few drones. Workers gather nectar and "
    "pollen and dance to tell the others where the flowers are.",
    "code": "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(add(i, i * 2))\n",
    "numbers": "1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181.",
}


def write_corpus(path: Path) -> Path:
    """A plain-text corpus of mixed paragraphs, long enough for 4096 tokens of windows."""
    out = [f"{text} Note {i + 1} on {name}." for i in range(16) for name, text in PARAGRAPHS.items()]
    path.write_text("\n\n".join(out) + "\n")
    return path


def test_maps_page_in_chromium(tmp_path: Path) -> None:
    need_browser_and_app()
    corpus = write_corpus(tmp_path / "corpus.txt")
    dataset = tmp_path / "dataset"
    mechscope = [sys.executable, "-m", "mechscope"]
    subprocess.run([*mechscope, "collate", "--tokens", "4096", "--out", str(dataset), "--corpus", str(corpus), "-q"],
                   check=True, timeout=900)  # fmt: skip
    done = subprocess.run(
        [*mechscope, "maps", str(dataset)], check=True, timeout=900, capture_output=True, text=True
    )
    assert "prompts:" in done.stdout and "units:" in done.stdout, done.stdout
    with serving("--dataset", str(dataset), start_seconds=180) as url:
        shots = run_e2e("e2e:maps", url, timeout=600)
    assert {"maps-units-layer.png", "maps-prompts.png"} <= {p.name for p in shots.glob("maps-*.png")}
