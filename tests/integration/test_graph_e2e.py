"""The Graph page in a real browser (Debian's Chromium via playwright-core) against `mechscope serve`
on the embedded SmolLM2 with 30 random skip-transcoders: the graph renders (nodes, links, token
columns, scores), a tooltip, a latent's side panel and its node page, an edge's heads and a Q/K
trace link into the Debugger, pinning, the causal check's table and correlations, a supernode and
the pinned-only view, a reload that keeps all of it, and the Neuronpedia export.

Random transcoders make a valid (if uninteresting) graph: enough for the page. Screenshots land
in ci-artifacts/screenshots/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mechscope.models.dictionaries import DictionaryConfig, SparseCoder, init_random
from mechscope.models.loading.dictionary_formats import save_dictionary
from tests.web.conftest import need_browser_and_app, run_e2e, serving

pytestmark = pytest.mark.slow
N_LAYERS = 30  # SmolLM2-135M
D_MODEL = 576


def write_random_transcoders(folder: Path, n_latents: int = 256, k: int = 8) -> Path:
    """One random skip-transcoder per layer of SmolLM2, in mechscope's format (`--sae folder`)."""
    for layer in range(N_LAYERS):
        cfg = DictionaryConfig(d_in=D_MODEL, n_latents=n_latents, hook=f"blocks.{layer}.ln2.out",
                               out_hook=f"blocks.{layer}.mlp_out", d_out=D_MODEL, kind="skip_transcoder",
                               activation="topk", k=k, apply_b_dec_to_input=False,
                               model="SmolLM2-135M-Instruct")  # fmt: skip
        save_dictionary(init_random(SparseCoder(cfg), 100 + layer), folder / f"blocks.{layer}.mlp", {})
    return folder


def test_graph_page_in_chromium(tmp_path: Path) -> None:
    need_browser_and_app()
    saes = write_random_transcoders(tmp_path / "transcoders")
    with serving("--sae", str(saes), start_seconds=180) as url:
        shots = run_e2e("e2e:graph", url, timeout=900)
    assert list(shots.glob("graph-*.png")), "no screenshots were written"
