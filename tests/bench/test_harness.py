"""The benchmark harness's pure parts: aggregation, ratios, verdicts, the report, peer skipping."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bench import peers, report
from bench.orchestrator import main, parse_args, plan
from bench.summary import Target, all_met, fmt_ms, fmt_ratio, ratio, summarize
from tests.bench import fake


def test_summarize_gives_median_and_min_max_in_ms() -> None:
    s = summarize([0.3, 0.1, 0.2, 0.5])
    assert (s["median_ms"], s["min_ms"], s["max_ms"], s["n"]) == pytest.approx((250.0, 100.0, 500.0, 4))
    assert fmt_ms(s) == "250 (100-500)"
    with pytest.raises(ValueError):
        summarize([])


def test_paired_ratio_spread_is_per_round_and_unpaired_has_none() -> None:
    a, b = summarize([1.0, 2.0, 3.0]), summarize([2.0, 2.0, 2.0])
    r = ratio(a, b, paired=True)
    assert (r["ratio"], r["min"], r["max"], r["paired"]) == (1.0, 0.5, 1.5, True)
    assert fmt_ratio(r) == "1.00x (0.50-1.50)"
    u = ratio(a, b, paired=False)
    assert u["min"] is None and fmt_ratio(u) == "1.00x"
    # Different round counts cannot be paired, whatever the caller says.
    assert ratio(a, summarize([2.0]), paired=True)["paired"] is False


def test_target_verdicts() -> None:
    met, missed, absent = Target("a", 0.7, 0.8), Target("b", 1.2, 1.15, "16 tokens"), Target("c", None, 1.0)
    assert (met.verdict, missed.verdict, absent.verdict) == ("met", "NOT met", "not measured")
    assert missed.line() == "b at 16 tokens: 1.20x (target <= 1.15x) NOT met"
    assert all_met([met, absent]) and not all_met([met, missed])
    assert missed.to_json()["met"] is False


def test_targets_from_results() -> None:
    got = {(t.name, t.where): t for t in report.targets(fake.results())}
    assert got[("mechscope / transformers (sdpa)", "16 tokens")].value == pytest.approx(0.75)
    assert got[("mechscope / transformers (sdpa)", "16 tokens")].met
    assert got[("debugger / bare forward+backward", "16 tokens")].value == pytest.approx(1.5)
    assert not got[("debugger / bare forward+backward", "16 tokens")].met
    assert got[("debugger / transformers act x grad", "16 tokens")].met
    assert got[("debugger peak RSS / bare pass's", "512 tokens")].value == pytest.approx(3.0)
    assert got[("mechscope / transformers, ms per token", "")].value == pytest.approx(0.5)
    cache = got[("mechscope cache-all, malloc defaults / mechscope's settings", "")]
    assert cache.value == pytest.approx(1.25) and not cache.met


def test_markdown_report_has_every_section_and_verdict() -> None:
    text = report.markdown(fake.results(), "images/benchmarks.png")
    for needle in (
        "Fake CPU, 2 cores",
        "### Targets",
        "**NOT met**",
        "**met**",
        "![mechscope / X",
        "100.0 GFLOP/s",
        "75.0 (70.0-90.0)",  # forward, mechscope at 16 tokens: median (min-max)
        "0.75x (0.70-0.90)",  # paired per round
        "as each ships",
        "3.00x",  # debugger peak RSS ratio
        "500 tensors, 1400 MiB",
        "skipped nnsight",
        "python -m bench",
    ):
        assert needle in text, needle
    assert "warm" not in report.load_text(fake.results())  # the warm-up load is not counted
    assert report.load_stats(fake.results())["mechscope"]["load"]["n"] == 1


def test_second_run_is_shown_beside_this_one() -> None:
    first, second = fake.results(), fake.results()
    cell = second["workloads"]["forward"]["processes"][0]["result"]["cells"]["16"]["mechscope"]
    cell["median_ms"] = 90.0
    first["second_run"] = second
    text = report.markdown(first, None)
    assert "### The spread of a second run" in text
    assert "0.90x" in text and "+20%" in text
    assert "second run" in report.targets_text(first)


def test_chart_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "images" / "chart.png"
    assert report.draw_chart(fake.results(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_peer_is_skipped_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nnsight" else real(name, *a)
    )
    keep, skipped = peers.split_available(["mechscope", "nnsight", "bare", "mechscope:folder"])
    assert keep == ["mechscope", "bare", "mechscope:folder"]
    assert "not installed" in skipped["nnsight"] and "nnsight" in skipped["nnsight"]


def test_options_and_process_plan() -> None:
    args = parse_args(["--quick", "--only", "forward,cache", "--peers", "transformers", "--tiny"])
    assert (args.mode, args.workloads, args.peers, args.lengths) == (
        "tiny",
        ["forward", "cache"],
        ["transformers"],
        [16, 128],
    )
    with pytest.raises(SystemExit):
        parse_args(["--only", "nonsense"])
    # Peers run a second time without mechscope's malloc tuning; peak RSS gets its own processes.
    forward = plan("forward", ["mechscope", "hf-sdpa", "bare"], args)
    assert [(p.role, p.tuned, p.impls) for p in forward] == [
        ("tuned", True, ["mechscope", "hf-sdpa", "bare"]),
        ("defaults", False, ["mechscope", "hf-sdpa"]),
    ]
    cache = plan("cache", ["mechscope", "tl"], args)
    assert [(p.impls, p.tuned, p.rss) for p in cache] == [
        (["mechscope"], True, True),
        (["mechscope"], False, True),
        (["tl"], False, True),
    ]


def test_render_only_rewrites_doc_and_chart(tmp_path: Path) -> None:
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(fake.results()))
    doc, chart = tmp_path / "doc.md", tmp_path / "chart.png"
    code = main(["--render", str(saved), "--out-doc", str(doc), "--chart", str(chart)])
    assert code == 0
    assert "### Targets" in doc.read_text()
