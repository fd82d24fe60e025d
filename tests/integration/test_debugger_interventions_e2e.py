"""The Debugger's interventions, directions and verify panel in a real browser (Debian's Chromium via
playwright-core) against `mechscope serve` on the embedded SmolLM2: a scale op picked in the intervention
editor from the node table and its inline check, a steering intervention along a neuron's write added
by hand, the continuation without and with them side by side (first difference marked), the verify
panel and its top N kept across a reload, and the log-prob and probe directions (a wrong-size probe
refused inline).

Screenshots land in ci-artifacts/screenshots/ (dbg-*.png, debugger-interventions.jpg).
"""

from __future__ import annotations

import pytest

from tests.web.conftest import need_browser_and_app, run_e2e, serving

pytestmark = pytest.mark.slow


def test_debugger_interventions_in_chromium() -> None:
    need_browser_and_app()
    with serving() as url:
        shots = run_e2e("e2e:debugger-interventions", url)
    assert list(shots.glob("dbg-*.png")), "no screenshots were written"
