"""docs/benchmarks.md, the console summary, the target verdicts and the chart, from the results JSON.

Pure functions of the JSON that ``python -m bench`` writes (no torch, no model): a saved run can
be re-rendered (``python -m bench --render results.json``) and the tests render a fake one.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import DEBUGGER_OVER_BARE
from bench.catalog import SHORT, WORKLOADS
from bench.summary import Target, fmt_ms, fmt_ratio, ratio

PEER_ORDER = ["hf-sdpa", "hf-eager", "tl", "tl-bridge", "nnsight", "sae-lens", "bare", "floor"]
TITLES = {
    "tuned": "same process, mechscope's malloc settings for all (paired per round)",
    "defaults": "same process, glibc malloc defaults for all (MECHSCOPE_KEEP_FREED_MEMORY=0; paired)",
    "shipped": "as each ships: mechscope with its settings, the peer with malloc defaults (two processes; not paired)",
}


# ----- reading the results ------------------------------------------------------------------------
def processes(results: dict[str, Any], workload: str) -> list[dict[str, Any]]:
    w = results.get("workloads", {}).get(workload)
    return [] if w is None else [p for p in w["processes"] if not p.get("extra", {}).get("warm_up")]


def view(results: dict[str, Any], workload: str, role: str) -> dict[str, Any] | None:
    """The worker result of the workload's same-process run of ``role`` ("tuned" or "defaults")."""
    for p in processes(results, workload):
        if p["role"] == role and p.get("result"):
            return dict(p["result"])
    return None


def own(results: dict[str, Any], workload: str, impl: str, tuned: bool) -> dict[str, Any] | None:
    """The worker result of ``impl`` alone in its own process with the given settings."""
    for p in processes(results, workload):
        if p["role"] == "own" and p["impls"] == [impl] and p["tuned"] == tuned and p.get("result"):
            return dict(p["result"])
    return None


def cell(res: dict[str, Any] | None, key: str, impl: str) -> dict[str, Any] | None:
    if res is None:
        return None
    found = res.get("cells", {}).get(key, {}).get(impl)
    return None if found is None else dict(found)


def paired(res: dict[str, Any] | None, key: str, a: str, b: str) -> dict[str, Any] | None:
    x, y = cell(res, key, a), cell(res, key, b)
    return None if x is None or y is None else ratio(x, y, paired=True)


def unpaired(x: dict[str, Any] | None, y: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if x is None or y is None else ratio(x, y, paired=False)


def label(workload: str, impl: str) -> str:
    return WORKLOADS[workload].impls.get(impl, impl)


def lengths_of(res: dict[str, Any] | None) -> list[str]:
    return sorted((res or {}).get("cells", {}), key=lambda k: int(k) if k.isdigit() else 0)


def impls_of(res: dict[str, Any] | None, workload: str) -> list[str]:
    seen = {i for c in (res or {}).get("cells", {}).values() for i in c}
    return [i for i in WORKLOADS[workload].impls if i in seen]


# ----- headline ratios and targets ----------------------------------------------------------------
@dataclass(frozen=True)
class Headline:
    workload: str
    name: str  # e.g. "mechscope / transformers (sdpa)"
    where: str  # e.g. "16 tokens"
    value: float | None
    limit: float | None = None  # the target, when there is one

    @property
    def key(self) -> str:
        return f"{self.workload}: {self.name}" + (f" @ {self.where}" if self.where else "")


def headlines(results: dict[str, Any]) -> list[Headline]:
    """Every ratio the report leads with (mechscope over each peer or baseline, per length), the
    issue's targets among them. Same-process ratios where both sides ran in one process."""
    out: list[Headline] = []

    def r(x: dict[str, Any] | None) -> float | None:
        return None if x is None else float(x["ratio"])

    for workload in ("forward", "actgrad"):
        res = view(results, workload, "tuned")
        for n in lengths_of(res):
            for peer in PEER_ORDER:
                if cell(res, n, peer) is None:
                    continue
                limit = 0.8 if workload == "forward" and peer == "hf-sdpa" and n == "16" else None
                name = f"mechscope / {label(workload, peer)}"
                out.append(
                    Headline(workload, name, f"{n} tokens", r(paired(res, n, "mechscope", peer)), limit)
                )
    res = view(results, "debugger", "tuned")
    for n in lengths_of(res):
        out.append(
            Headline(
                "debugger",
                "debugger / bare forward+backward",
                f"{n} tokens",
                r(paired(res, n, "mechscope", "bare")),
                DEBUGGER_OVER_BARE,
            )
        )
        if cell(res, n, "hf-sdpa") is not None:
            out.append(
                Headline(
                    "debugger",
                    "debugger / transformers act x grad",
                    f"{n} tokens",
                    r(paired(res, n, "mechscope", "hf-sdpa")),
                    1.0,
                )
            )
    peaks = debugger_rss(results)
    if peaks:
        n, ours, bare = peaks
        out.append(Headline("debugger", "debugger peak RSS / bare pass's", f"{n} tokens", ours / bare, 1.5))
    gen = generation_rows(view(results, "generation", "tuned"))
    if "mechscope" in gen and "hf-sdpa" in gen:
        out.append(
            Headline(
                "generation",
                "mechscope / transformers, ms per token",
                "",
                gen["mechscope"]["ms_per_token"] / gen["hf-sdpa"]["ms_per_token"],
                0.7,
            )
        )
        out.append(
            Headline(
                "generation",
                "mechscope / transformers, decode ms per token",
                "",
                gen["mechscope"]["decode_ms"] / gen["hf-sdpa"]["decode_ms"],
            )
        )
    ours_cache = cell(own(results, "cache", "mechscope", True), "cache", "mechscope")
    for peer in PEER_ORDER:
        theirs = cell(own(results, "cache", peer, False), "cache", peer)
        if theirs is not None:
            out.append(
                Headline(
                    "cache",
                    f"mechscope / {label('cache', peer)}",
                    "own processes",
                    r(unpaired(ours_cache, theirs)),
                )
            )
    tuned_res = own(results, "cache", "mechscope", True)
    if tuned_res is not None:
        out.append(
            Headline(
                "cache",
                "mechscope cache-all / its plain forward",
                "",
                r(cache_overhead(tuned_res, "mechscope")),
            )
        )
    untuned = cell(own(results, "cache", "mechscope", False), "cache", "mechscope")
    if ours_cache is not None and untuned is not None:
        out.append(
            Headline(
                "cache",
                "mechscope cache-all, malloc defaults / mechscope's settings",
                "",
                r(unpaired(untuned, ours_cache)),
                1.05,
            )
        )
    loads = load_stats(results)
    ours_key = "mechscope" if "mechscope" in loads else "mechscope:folder"
    for peer in ("hf-sdpa", "tl-bridge"):
        if ours_key in loads and peer in loads:
            out.append(
                Headline(  # the whole process (imports + load), what a user waits for; the
                    # load call alone compares a GGUF read with a safetensors one
                    "load",
                    f"{label('load', ours_key)} / {label('load', peer)}, whole process",
                    "",
                    loads[ours_key]["process"]["median_ms"] / loads[peer]["process"]["median_ms"],
                )
            )
    res = view(results, "sae", "tuned")
    for act in lengths_of(res):
        for peer in ("sae-lens", "bare"):
            if cell(res, act, peer) is not None and cell(res, act, "mechscope") is not None:
                out.append(
                    Headline(
                        "sae",
                        f"mechscope / {label('sae', peer)}",
                        act,
                        r(paired(res, act, "mechscope", peer)),
                    )
                )
    return out


def cache_overhead(res: dict[str, Any], impl: str) -> dict[str, Any] | None:
    """One library's cache-all call over its own plain forward, paired round by round."""
    a, b = cell(res, "cache", impl), cell(res, "plain", impl)
    return None if a is None or b is None else ratio(a, b, paired=True)


def targets(results: dict[str, Any]) -> list[Target]:
    return [Target(h.name, h.value, h.limit, h.where) for h in headlines(results) if h.limit is not None]


def debugger_rss(results: dict[str, Any]) -> tuple[str, float, float] | None:
    """(length, debugger peak MiB, bare pass's peak MiB), each from its own process."""
    ours, bare = own(results, "debugger", "mechscope", True), own(results, "debugger", "bare", True)
    if not ours or not bare:
        return None
    for key, stat in ours.get("rss", {}).items():
        n = key.split("@")[1]
        other = bare.get("rss", {}).get(f"bare@{n}")
        if other:
            return n, float(stat["peak_mib"]), float(other["peak_mib"])
    return None


def generation_rows(res: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    """Per implementation: total, ms/token, prefill+1 and decode ms/token, and decode GB/s."""
    if res is None:
        return {}
    info = res.get("info", {})
    new = info.get("new_tokens", 32)
    out = {}
    for impl, total in res.get("cells", {}).get("generate", {}).items():
        first = res["cells"].get("prefill+1", {}).get(impl)
        if first is None:
            continue
        decode = (total["median_ms"] - first["median_ms"]) / max(new - 1, 1)
        out[impl] = {
            "total_ms": total["median_ms"],
            "ms_per_token": total["median_ms"] / new,
            "prefill_ms": first["median_ms"],
            "decode_ms": decode,
            "decode_gb_s": info.get("weight_bytes", 0) / (decode / 1e3) / 1e9 if decode > 0 else float("nan"),
        }
    return out


def load_stats(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per implementation, over its counted fresh processes: load call and whole-process seconds."""
    from bench.summary import summarize

    runs: dict[str, list[dict[str, Any]]] = {}
    for p in processes(results, "load"):
        if p.get("result") and p["impls"]:
            runs.setdefault(p["impls"][0], []).append({**p["result"], "wall_s": p["wall_s"]})
    return {
        impl: {
            "load": summarize([x["load_s"] for x in xs]),
            "import": summarize([x["import_library_s"] + x["import_torch_s"] for x in xs]),
            "process": summarize([x["wall_s"] for x in xs]),
        }
        for impl, xs in runs.items()
    }


# ----- markdown -------------------------------------------------------------------------------------
def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def md_table(header: list[str], rows: Iterable[list[str]]) -> str:
    rows = list(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def times_table(res: dict[str, Any] | None, workload: str) -> str:
    keys = lengths_of(res)
    rows = [
        [label(workload, impl), *(fmt_ms(cell(res, k, impl)) for k in keys)]
        for impl in impls_of(res, workload)
    ]
    rounds = [str(next(iter(res["cells"][k].values()))["n"]) for k in keys] if res else []
    rows.append(["rounds", *rounds])
    return md_table(["ms, median (min-max)", *(f"{k} tokens" if k.isdigit() else k for k in keys)], rows)


def ratio_tables(results: dict[str, Any], workload: str, ours: str = "mechscope") -> str:
    """mechscope / X in each of the three views (below 1: mechscope is faster)."""
    tuned, defaults = view(results, workload, "tuned"), view(results, workload, "defaults")
    keys = lengths_of(tuned) or lengths_of(defaults)
    parts = []
    for title, rows in (
        (
            "tuned",
            [
                [label(workload, x), *(fmt_ratio(paired(tuned, k, ours, x)) for k in keys)]
                for x in impls_of(tuned, workload)
                if x != ours
            ],
        ),
        (
            "defaults",
            [
                [label(workload, x), *(fmt_ratio(paired(defaults, k, ours, x)) for k in keys)]
                for x in impls_of(defaults, workload)
                if x != ours
            ],
        ),
        (
            "shipped",
            [
                [
                    label(workload, x),
                    *(fmt_ratio(unpaired(cell(tuned, k, ours), cell(defaults, k, x))) for k in keys),
                ]
                for x in impls_of(defaults, workload)
                if x != ours
            ],
        ),
    ):
        if rows:
            head = [
                f"{label(workload, ours).split(' ')[0]} / X, {TITLES[title]}",
                *(f"{k} tokens" if k.isdigit() else k for k in keys),
            ]
            parts.append(md_table(head, rows))
    return "\n\n".join(parts)


def checks_text(results: dict[str, Any], workload: str) -> str:
    checks = [c for p in processes(results, workload) for c in (p.get("result") or {}).get("checks", [])]
    if not checks:
        return ""
    worst: dict[str, float] = {}
    for c in checks:
        what = c["what"].split(": ", 1)[1] if ": " in c["what"] else c["what"]
        worst[what] = max(worst.get(what, 0.0), float(c["value"]))
    failed = [c for c in checks if not c["ok"]]
    lines = [
        f"Checked before timing ({len(checks)} checks, {len(failed)} failed); the largest difference of each:"
    ]
    lines += [f"- {what}: {v:.1e}" for what, v in worst.items()]
    lines += [f"- **FAILED**: {c['what']}: {c['value']:.2e} > {c['tolerance']:g}" for c in failed]
    return "\n".join(lines)


def roofline_text(results: dict[str, Any]) -> str:
    r = results.get("roofline")
    if not r:
        return "(not measured)"
    rows = [
        [
            "fp32 sgemm 2048 x 2048 x 2048",
            f"{r['sgemm_2048_gflops']['median']:.1f} GFLOP/s",
            f"{r['sgemm_2048_gflops']['max']:.1f}",
        ],
        [
            "fp32 sgemm (16 x 576) x (576 x 1536)",
            f"{r['sgemm_16x576x1536_gflops']['median']:.1f} GFLOP/s",
            f"{r['sgemm_16x576x1536_gflops']['max']:.1f}",
        ],
        [
            f"read: a {r['buffer_mib']} MiB matrix times a vector (a decode step's access)",
            f"{r['read_gb_s']['median']:.1f} GB/s",
            f"{r['read_gb_s']['max']:.1f}",
        ],
        *(
            [
                [
                    f"read: sum of the same {r['buffer_mib']} MiB",
                    f"{r['sum_gb_s']['median']:.1f} GB/s",
                    f"{r['sum_gb_s']['max']:.1f}",
                ]
            ]
            if "sum_gb_s" in r
            else []
        ),
        [
            f"copy: {r['buffer_mib'] // 2} MiB into another (read + write)",
            f"{r['copy_gb_s']['median']:.1f} GB/s",
            f"{r['copy_gb_s']['max']:.1f}",
        ],
    ]
    return md_table(["limit (all threads)", "median", "best"], rows) + f"\n\n{r['threads']} torch threads."


def forward_roofline(results: dict[str, Any]) -> str:
    res, r = view(results, "forward", "tuned"), results.get("roofline")
    if res is None or not r:
        return ""
    peak, small = r["sgemm_2048_gflops"]["median"], r["sgemm_16x576x1536_gflops"]["median"]
    rows = []
    for impl in ("mechscope", "bare", "floor"):
        row = [label("forward", impl)]
        for n in lengths_of(res):
            c = cell(res, n, impl)
            if c is None:
                row.append("-")
                continue
            rate = res["info"]["gflop"][n] / c["median_ms"] * 1e3
            row.append(
                f"{rate:.1f} GFLOP/s ({rate / peak:.0%} of sgemm 2048, {rate / small:.0%} of the small sgemm)"
            )
        rows.append(row)
    gflop = ["GFLOP per forward", *(f"{res['info']['gflop'][n]:.3g}" for n in lengths_of(res))]
    return md_table(
        ["fraction of the machine's matmul limit", *(f"{n} tokens" for n in lengths_of(res))], [gflop, *rows]
    )


def generation_text(results: dict[str, Any]) -> str:
    parts = []
    read = (results.get("roofline") or {}).get("read_gb_s", {}).get("median")
    for role in ("tuned", "defaults"):
        res = view(results, "generation", role)
        rows_data = generation_rows(res)
        if not rows_data:
            continue
        rows = []
        for impl, g in rows_data.items():
            frac = f"{g['decode_gb_s'] / read:.0%}" if read else "-"
            total = cell(res, "generate", impl)
            rows.append(
                [
                    label("generation", impl),
                    fmt_ms(total),
                    f"{g['ms_per_token']:.1f}",
                    f"{g['prefill_ms']:.1f}",
                    f"{g['decode_ms']:.1f}",
                    f"{g['decode_gb_s']:.1f}",
                    frac,
                ]
            )
        if "mechscope" in rows_data and "hf-sdpa" in rows_data:
            a, b = rows_data["mechscope"], rows_data["hf-sdpa"]
            rows.append(
                [
                    "mechscope / transformers",
                    "",
                    f"{a['ms_per_token'] / b['ms_per_token']:.2f}x",
                    f"{a['prefill_ms'] / b['prefill_ms']:.2f}x",
                    f"{a['decode_ms'] / b['decode_ms']:.2f}x",
                    "",
                    "",
                ]
            )
        info = res["info"] if res else {}
        head = [
            "implementation",
            "32 tokens, ms",
            "ms/token",
            "prefill+1 ms",
            "decode ms/token",
            "decode GB/s of weights",
            "of read bandwidth",
        ]
        parts.append(f"{sentence(TITLES[role])}:\n\n" + md_table(head, rows))
        parts.append(
            f"{info.get('weight_bytes', 0) / 2**20:.0f} MiB of weights read per decoded token; the two "
            f"implementations' tokens were identical for the first {info.get('identical_prefix')} of {info.get('new_tokens')}."
        )
    return "\n\n".join(parts)


def cache_text(results: dict[str, Any]) -> str:
    parts = []
    rows = []
    ours = cell(own(results, "cache", "mechscope", True), "cache", "mechscope")
    for impl, is_tuned in [("mechscope", True), ("mechscope", False), *((p, False) for p in PEER_ORDER)]:
        res = own(results, "cache", impl, is_tuned)
        if res is None or impl not in res.get("cells", {}).get("cache", {}):
            continue
        contents = res["info"]["contents"].get(impl, {})
        rss = res.get("rss", {}).get(impl, {})
        c = cell(res, "cache", impl)
        rows.append(
            [
                label("cache", impl)
                + ("" if is_tuned else ", malloc defaults" if impl == "mechscope" else ""),
                f"{contents.get('tensors', '-')} tensors, {contents.get('mib', 0):.0f} MiB",
                fmt_ms(c),
                fmt_ms(cell(res, "plain", impl)),
                fmt_ratio(cache_overhead(res, impl)),
                fmt_ratio(unpaired(ours, c)) if impl != "mechscope" or not is_tuned else "1.00x",
                f"{rss['peak_mib']:.0f}" if rss else "-",
                f"{rss['before_mib']:.0f}" if rss.get("before_mib") else "-",
            ]
        )
    if rows:
        n = next(iter(processes(results, "cache")))["lengths"][0]
        head = [
            "implementation (own process)",
            "what it keeps (logits included)",
            f"cache-all ms at {n} tokens",
            "its plain forward ms",
            "cache-all / plain",
            "mechscope / X, cache-all",
            "peak RSS MiB",
            "RSS before MiB",
        ]
        parts.append(md_table(head, rows))
    tuned = view(results, "cache", "tuned")
    if tuned is not None:
        rows = [
            [
                label("cache", i),
                fmt_ms(cell(tuned, "cache", i)),
                fmt_ms(cell(tuned, "plain", i)),
                fmt_ratio(cache_overhead(tuned, i)),
                fmt_ratio(paired_cells(tuned, ("cache", "mechscope"), ("cache", i))),
            ]
            for i in impls_of(tuned, "cache")
        ]
        parts.append(
            f"All in one process ({TITLES['tuned']}):\n\n"
            + md_table(
                [
                    "implementation",
                    "cache-all ms",
                    "plain ms",
                    "cache-all / plain",
                    "mechscope / X, cache-all",
                ],
                rows,
            )
        )
    return "\n\n".join(parts)


def paired_cells(res: dict[str, Any], a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any] | None:
    x, y = cell(res, *a), cell(res, *b)
    return None if x is None or y is None else ratio(x, y, paired=True)


def debugger_text(results: dict[str, Any]) -> str:
    parts = []
    for role in ("tuned", "defaults"):
        res = view(results, "debugger", role)
        if res is None:
            continue
        keys = lengths_of(res)
        rows = [
            [label("debugger", i), *(fmt_ms(cell(res, k, i)) for k in keys)]
            for i in impls_of(res, "debugger")
        ]
        rows.append(
            [
                "debugger / bare forward+backward",
                *(fmt_ratio(paired(res, k, "mechscope", "bare")) for k in keys),
            ]
        )
        rows.append(
            [
                "debugger / transformers act x grad",
                *(fmt_ratio(paired(res, k, "mechscope", "hf-sdpa")) for k in keys),
            ]
        )
        parts.append(
            f"{sentence(TITLES[role])}:\n\n"
            + md_table(["ms, median (min-max)", *(f"{k} tokens" for k in keys)], rows)
        )
    tuned, defaults = view(results, "debugger", "tuned"), view(results, "debugger", "defaults")
    if tuned is not None and defaults is not None:
        keys = lengths_of(tuned)
        row = [
            "debugger (mechscope's settings) / transformers act x grad (malloc defaults)",
            *(fmt_ratio(unpaired(cell(tuned, k, "mechscope"), cell(defaults, k, "hf-sdpa"))) for k in keys),
        ]
        parts.append(md_table([TITLES["shipped"], *(f"{k} tokens" for k in keys)], [row]))
    peaks = debugger_rss(results)
    if peaks:
        n, ours, bare = peaks
        parts.append(
            md_table(
                [f"peak RSS over one call at {n} tokens (own process each)", "MiB"],
                [
                    ["bare forward + backward", f"{bare:.0f}"],
                    ["debugger", f"{ours:.0f}"],
                    ["debugger / bare", f"{ours / bare:.2f}x"],
                ],
            )
        )
    return "\n\n".join(parts)


def load_text(results: dict[str, Any]) -> str:
    stats = load_stats(results)
    if not stats:
        return ""
    rows = [
        [label("load", i), fmt_ms(s["load"]), fmt_ms(s["import"]), fmt_ms(s["process"]), str(s["load"]["n"])]
        for i, s in stats.items()
    ]
    return md_table(
        ["loader", "load call ms", "imports ms (torch + library)", "whole process ms", "loads"], rows
    )


def sae_text(results: dict[str, Any]) -> str:
    parts = []
    for role in ("tuned", "defaults"):
        res = view(results, "sae", role)
        if res is None:
            continue
        info = res.get("info", {})
        rows = []
        for act in lengths_of(res):
            for impl in impls_of(res, "sae"):
                c = cell(res, act, impl)
                if c is None:
                    continue
                tok_s = info.get("batch", 4096) / c["median_ms"] * 1e3
                rows.append(
                    [
                        act,
                        label("sae", impl),
                        fmt_ms(c),
                        f"{tok_s:,.0f}",
                        fmt_ratio(paired(res, act, "mechscope", impl)) if impl != "mechscope" else "",
                    ]
                )
        head = ["activation", "trainer", "ms/step, median (min-max)", "tokens/s", "mechscope / X"]
        parts.append(
            f"{sentence(TITLES[role])}; {info.get('hook')}, {info.get('d_in')} -> {info.get('latents')} latents, k = {info.get('k')}, batch {info.get('batch')}:\n\n"
            + md_table(head, rows)
        )
    return "\n\n".join(parts)


def targets_text(results: dict[str, Any]) -> str:
    second = results.get("second_run")
    other = {t.name + t.where: t for t in targets(second)} if second else {}
    rows = []
    for t in targets(results):
        row = [
            t.name,
            t.where or "-",
            f"<= {t.limit:.2f}x",
            "n/a" if t.value is None else f"{t.value:.2f}x",
            f"**{t.verdict}**",
        ]
        if second:
            o = other.get(t.name + t.where)
            row.append("n/a" if o is None or o.value is None else f"{o.value:.2f}x ({o.verdict})")
        rows.append(row)
    head = ["target", "where", "limit", "this run", "verdict", *(["second run"] if second else [])]
    return md_table(head, rows) if rows else "(no target was measured in this run)"


def second_run_text(results: dict[str, Any]) -> str:
    second = results.get("second_run")
    if not second:
        return ""
    theirs = {h.key: h.value for h in headlines(second)}
    rows = []
    for h in headlines(results):
        o = theirs.get(h.key)
        if h.value is None or o is None:
            continue
        rows.append([h.key, f"{h.value:.2f}x", f"{o:.2f}x", f"{(o - h.value) / h.value:+.0%}"])
    spread = [abs(float(r[3].rstrip("%"))) for r in rows]
    summary = (
        f"Median absolute change {statistics.median(spread):.0f}%, largest {max(spread):.0f}%."
        if spread
        else ""
    )
    m = second.get("machine", {})
    return (
        f"The second run: {m.get('date', '?')}, load average {m.get('load_average', ['?'])[0]}, `{second.get('command', '')}`. {summary}\n\n"
        + md_table(["ratio", "this run", "second run", "change"], rows)
    )


def header_text(results: dict[str, Any]) -> str:
    m = results["machine"]
    v = {k: x for k, x in m.get("versions", {}).items() if x}
    versions = ", ".join(f"{k} {x}" for k, x in v.items())
    load_end = m.get("load_average_end", ["?"])[0]
    which = [
        name
        for impl, name in (
            ("tl", "HookedTransformer (its 3.x implementation, built from a HookedTransformerConfig)"),
            ("tl-bridge", "TransformerBridge (around transformers' eager Llama)"),
        )
        if ran(results, impl)
    ]
    tl = "TransformerLens: " + (" and ".join(which) if which else "did not run")
    lines = [
        f"- Machine: {m['cpu']}, {m['cores']} cores, Python {m.get('python', '?')}",
        f"- Versions: {versions}",
        f"- {tl}",
        f"- Date: {m['date']}; load average {m['load_average'][0]:.2f} at the start, {load_end if isinstance(load_end, str) else f'{load_end:.2f}'} at the end",
        f"- Model: {model_label(results)}; command `{results.get('command', 'python -m bench')}`; total {results.get('elapsed_s', 0) / 60:.1f} min",
    ]
    for w, data in results.get("workloads", {}).items():
        lines.append(f"  - {w}: {data['elapsed_s']:.0f} s")
    return "\n".join(lines)


def ran(results: dict[str, Any], impl: str) -> bool:
    """Whether ``impl`` was timed anywhere in this run (loads have no cells: their process counts)."""
    for w in results.get("workloads", {}):
        for p in processes(results, w):
            res = p.get("result") or {}
            if any(impl in c for c in res.get("cells", {}).values()):
                return True
            if w == "load" and res and p["impls"] == [impl]:
                return True
    return False


def model_label(results: dict[str, Any]) -> str:
    for w in results.get("workloads", {}).values():
        for p in w["processes"]:
            if p.get("result", {}) and p["result"].get("model"):
                return str(p["result"]["model"])
    return str(results.get("mode", "?"))


def notes_text(results: dict[str, Any]) -> str:
    lines = [f"- skipped {impl}: {why}" for impl, why in results.get("skipped", {}).items()]
    for w, data in results.get("workloads", {}).items():
        for p in data["processes"]:
            if p.get("error"):
                lines.append(
                    f"- **{w}, {', '.join(p['impls'])}: the worker failed**: `{p['error'].splitlines()[-1]}`"
                )
            res = p.get("result") or {}
            for impl, why in res.get("skipped", {}).items():
                if why != "not part of this workload":
                    lines.append(f"- {w}: {impl} skipped: {why.splitlines()[0]}")
            for key in ("probe_start", "probe_end"):
                probe = res.get(key)
                if probe and res.get("threads", 1) > 1 and probe.get("slowdown", 0) > 1.0:
                    lines.append(
                        f"- {w} ({p['role']}): busy machine at the {key[6:]} (a small matmul on all threads took {probe['slowdown']:.1f}x its 1-thread time, load average {probe['load_average']:.1f})"
                    )
    return "\n".join(dict.fromkeys(lines)) or "- none"


DESIGN = """\
## How to regenerate

```bash
pip install -e '.[test,bench]'      # transformers, TransformerLens, nnsight, SAELens, matplotlib
python -m bench                       # every workload (~12 min on 2 idle cores); writes this page,
                                      # docs/images/benchmarks.png and docs/benchmarks.json
python -m bench --quick               # 16 and 128 tokens, fewer rounds and processes (~5 min)
python -m bench --only forward,debugger --json run2.json
python -m bench --second-run run1.json           # this run beside an earlier one
python -m bench --render run2.json --second-run run1.json   # re-render without running
python -m bench --random-weights      # SmolLM2's shape, random weights (no GGUF needed)
```

A peer that is not installed is skipped with a line saying so. `python -m bench --help` lists
every option; `bench/README.md` describes the older one-workload scripts.

## How it measures

- **One worker process per group of implementations** (`python -m bench.worker`). Inside a
  worker the implementations are interleaved round by round (`bench/_common.py:
  bench_interleaved`) and each result is the median over the rounds with its min-max; a ratio of
  two implementations timed in the same rounds is paired (its spread is the min-max of the
  per-round ratios).
- **Why several processes.** `ms.load_model()` tunes glibc's malloc for the whole process
  (`src/mechscope/models/memory.py`: freed memory is kept for reuse). In a shared process that
  tuning speeds up the peers too, which flatters them. So every comparison runs twice:
  *same process, mechscope's malloc settings* (everyone tuned; the view the targets are judged on,
  conservative for mechscope) and *same process, malloc defaults*
  (`MECHSCOPE_KEEP_FREED_MEMORY=0`: what each peer gets on its own, and mechscope without its
  tuning). The *as shipped* ratio takes mechscope from the first and the peer from the second: two
  processes, so not paired, and machine drift between them is not cancelled.
- **Own processes** for what must not share a process: peak RSS (the debugger and the bare pass
  at 512 tokens; each cache-everything implementation), measured as the kernel's peak-RSS counter
  over one call after a warm call (reset through `/proc/self/clear_refs`), model weights
  included; warm loads, one fresh process per load.
- **Same weights everywhere.** transformers' Llama is built on mechscope's own tensors
  (`_common.hf_llama`), nnsight and the TransformerLens bridge wrap such a model, TransformerLens'
  HookedTransformer gets a copy in its layout. Every peer's logits (forward) and act x grad are
  checked against mechscope's before timing; a peer that disagrees is not timed.
- **The machine's limits in the same run**: fp32 sgemm GFLOP/s (a 2048-cube and a
  SmolLM2-sized (16 x 576) x (576 x 1536)) and read bandwidth (a 1 GiB matrix times a vector,
  the access pattern of a decode step; summing the buffer beside it). The forward's GFLOP/s and
  the decode's weight bytes per second are given as fractions of them.
- **Targets** (issue 18) are judged on the same-process view with mechscope's settings, except
  peak RSS (own processes) and cache-all without the malloc tuning (mechscope in two processes,
  one with `MECHSCOPE_KEEP_FREED_MEMORY=0`: part 4 asks for the same speed there).
- `--quick` keeps both same-process views of forward, act x grad and generation, and drops the
  malloc-defaults runs of the debugger and SAE training and the all-in-one cache process.
- Each worker checks before and after its workload whether a neighbour holds a core (a small
  matmul on all threads slower than on one); such runs are listed at the end: do not quote them.
- Ratios are *mechscope / X*: below 1, mechscope is faster.
"""


def markdown(results: dict[str, Any], image: str | None) -> str:
    sections = [
        "# Benchmarks",
        "<!-- generated by `python -m bench` (bench/report.py); edit the code, not this page -->",
        "mechscope against its peers on the same weights, and against plain-PyTorch baselines, on "
        "every workload the issue tracker names. Everything below the design section is the output "
        "of one run.",
        DESIGN,
        "## Results",
        header_text(results),
        "### Targets",
        targets_text(results),
    ]
    if image:
        sections.append(f"![mechscope / X for every workload (below 1: mechscope is faster)]({image})")
    sections += ["### The machine's limits", roofline_text(results)]
    for workload, body in (
        (
            "forward",
            lambda: "\n\n".join(
                filter(
                    None,
                    [
                        times_table(view(results, "forward", "tuned"), "forward"),
                        ratio_tables(results, "forward"),
                        forward_roofline(results),
                        checks_text(results, "forward"),
                    ],
                )
            ),
        ),
        (
            "actgrad",
            lambda: "\n\n".join(
                filter(
                    None,
                    [
                        times_table(view(results, "actgrad", "tuned"), "actgrad"),
                        ratio_tables(results, "actgrad"),
                        checks_text(results, "actgrad"),
                    ],
                )
            ),
        ),
        (
            "debugger",
            lambda: "\n\n".join(filter(None, [debugger_text(results), checks_text(results, "debugger")])),
        ),
        ("generation", lambda: generation_text(results)),
        ("cache", lambda: cache_text(results)),
        ("load", lambda: load_text(results)),
        ("sae", lambda: sae_text(results)),
    ):
        if workload in results.get("workloads", {}):
            sections += [f"### {WORKLOADS[workload].title}", body() or "(no result)"]
    if results.get("second_run"):
        sections += ["### The spread of a second run", second_run_text(results)]
    sections += ["### Skipped, failed and busy", notes_text(results)]
    return "\n\n".join(sections) + "\n"


def console(results: dict[str, Any]) -> str:
    lines = ["targets:"]
    lines += [f"  {t.line()}" for t in targets(results)] or ["  (none measured)"]
    lines.append("\nmechscope / X (same process; below 1: mechscope is faster):")
    for h in headlines(results):
        if h.value is not None and h.limit is None:
            lines.append(f"  {h.key}: {h.value:.2f}x")
    notes = notes_text(results)
    if notes != "- none":
        lines += ["\nnotes:", notes]
    lines.append(f"\ntotal {results.get('elapsed_s', 0) / 60:.1f} min")
    return "\n".join(lines)


# ----- the chart --------------------------------------------------------------------------------------
def chart_label(h: Headline) -> str:
    """A headline's name with each implementation's short name, for the chart's axis."""
    text = h.name
    labels = sorted(
        ((lab, impl) for w in WORKLOADS.values() for impl, lab in w.impls.items()), key=lambda x: -len(x[0])
    )
    for lab, impl in labels:
        text = text.replace(lab, SHORT.get(impl, lab))
    return f"{h.workload}: {text}" + (f" ({h.where})" if h.where else "")


def draw_chart(results: dict[str, Any], path: Path) -> bool:
    """A horizontal bar per headline ratio, grouped by workload, targets marked; False when
    matplotlib is not installed or there is nothing to draw."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no chart")
        return False
    items = [h for h in headlines(results) if h.value is not None]
    if not items:
        return False
    second = {h.key: h.value for h in headlines(results["second_run"])} if results.get("second_run") else {}
    workloads = list(dict.fromkeys(h.workload for h in items))
    colors = {w: plt.cm.tab10(i % 10) for i, w in enumerate(workloads)}
    fig, ax = plt.subplots(figsize=(11, 0.24 * len(items) + 1.6))
    ys = list(range(len(items)))[::-1]
    values = [float(h.value or 0.0) for h in items]
    ax.barh(ys, values, color=[colors[h.workload] for h in items], height=0.7)
    for y, h, value in zip(ys, items, values, strict=True):
        if h.limit is not None:
            ax.plot([h.limit, h.limit], [y - 0.4, y + 0.4], color="black", linewidth=2)
        other = second.get(h.key)
        if other is not None:
            ax.plot([other], [y], "o", color="black", markersize=3)
        ax.text(value, y, f" {value:.2f}", va="center", fontsize=7)
    ax.set_xscale("log")  # ratios are multiplicative: 0.5x and 2x sit at the same distance from 1
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16) if min(values) / 2 <= t <= max(values) * 2]
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())  # a log axis labels its minor ticks too: they overlap
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(ys)
    ax.set_yticklabels([chart_label(h) for h in items], fontsize=7)
    ax.set_xlabel(
        "mechscope / X  (below 1: mechscope is faster; black tick: target"
        + ("; dot: second run)" if second else ")")
    )
    m = results["machine"]
    ax.set_title(f"python -m bench: {m['cpu']}, {m['cores']} cores, {m['date'][:10]}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
