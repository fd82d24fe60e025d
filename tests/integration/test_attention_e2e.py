"""The Attention page in a real browser (Debian's Chromium via playwright-core) against `mechscope
serve` on the embedded SmolLM2: the four head-detector grids on 8 repeated random-token sequences
(scores in [0, 1], the best induction head above 0.5), a tooltip, a click that opens the induction
head on the repeated sequence with its stripe r - 1 back holding most of the attention, the
token-to-token lines, the links, every head as small multiples, a prompt with the detectors on
it, a reload that keeps the view, and the dataset source. Screenshots land in
ci-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest

from tests.web.conftest import need_browser_and_app, run_e2e, serving

pytestmark = pytest.mark.slow


def test_attention_page_in_chromium() -> None:
    need_browser_and_app()
    with serving(start_seconds=180) as url:
        shots = run_e2e("e2e:attention", url, timeout=600)
    assert list(shots.glob("attention-*.png")), "no screenshots were written"
