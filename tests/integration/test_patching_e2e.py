"""The Patching and Lens pages in a real browser (Debian's Chromium via playwright-core) against
`mechscope serve` on the embedded SmolLM2: an IOI pair built by the page, whose residual-stream
patching grid is strong at the swapped name in early layers and at the last position in late
layers; both methods side by side with their correlation; a head's cell opening its node page and
a layer's the Debugger; a mismatched pair flagged; repeated random tokens; the lens grid of each
stream, whose final row at the last token is the model's greedy next token, with a target token's
probability and rank; a reload keeping each view. Screenshots land in ci-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest

from tests.web.conftest import need_browser_and_app, run_e2e, serving

pytestmark = pytest.mark.slow


def test_patching_and_lens_pages_in_chromium() -> None:
    need_browser_and_app()
    with serving(start_seconds=180) as url:
        shots = run_e2e("e2e:patching", url, timeout=900)
    assert list(shots.glob("patching-*.png")) and list(shots.glob("lens-*.png")), (
        "no screenshots were written"
    )
