"""The results of a benchmark run, and the tables printed from them."""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from load import WrkResult

MIN_RATIO = {"proxy": 0.5, "apikey": 0.4, "plan": 0.35, "jwt": 0.4}  # Portico rps / reference rps
MAX_ADDED_P99_MS = 2.0  # over upstream direct, at the paced rate
BUSY_LIMIT = 0.05  # machine CPU share taken by other processes during a run above which it is flagged


@dataclass
class ScenarioResult:
    """Every run of one scenario, by role: "direct" (upstream), "reference" and "portico"."""

    name: str
    labels: dict[str, str]
    foreign: list[float] = field(default_factory=list)  # other processes' CPU share, per run
    throughput: dict[str, list[WrkResult]] = field(default_factory=dict)
    paced: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain-text table: the first two columns left-aligned, the figures right-aligned."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


def median_rps(runs: list[WrkResult]) -> float:
    return statistics.median(r.rps for r in runs)


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def median_ratio(portico: list[WrkResult], reference: list[WrkResult]) -> float:
    """Median over rounds of Portico rps / reference rps: each round's two runs are adjacent in
    time, so drifts in machine speed cancel within a round."""
    return statistics.median(p.rps / r.rps for p, r in zip(portico, reference, strict=True))


def median_added(runs: list[dict[str, Any]], direct: list[dict[str, Any]], key: str) -> float:
    """Median over rounds of (target - upstream direct) for one percentile, paired by round."""
    return statistics.median(float(t[key]) - float(d[key]) for t, d in zip(runs, direct, strict=True))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def throughput_rows(results: list[ScenarioResult]) -> list[list[str]]:
    rows = []
    for res in results:
        ref = median_rps(res.throughput["reference"])
        dirty = sum(not r.clean for runs in res.throughput.values() for r in runs)
        note = f"{dirty} run(s) had errors" if dirty else ""
        if "portico" in res.throughput:
            por = median_rps(res.throughput["portico"])
            ratio = median_ratio(res.throughput["portico"], res.throughput["reference"])
            goal = MIN_RATIO[res.name]
            cells = [f"{por:,.0f}", f"{ratio:.2f}", f">= {goal:g}", verdict(ratio >= goal and not dirty)]
        else:
            cells = ["-", "-", f">= {MIN_RATIO[res.name]:g}", "-"]
        rows.append([res.name, res.labels["reference"], f"{ref:,.0f}", *cells, note])
    return rows


def latency_rows(results: list[ScenarioResult]) -> list[list[str]]:
    rows = []
    for res in results:
        direct = res.paced["direct"]
        for role in ("direct", "reference", "portico"):
            if role not in res.paced:
                continue
            runs = res.paced[role]
            p50, p99 = median_of(runs, "p50_ms"), median_of(runs, "p99_ms")
            added = role != "direct"
            add50, add99 = median_added(runs, direct, "p50_ms"), median_added(runs, direct, "p99_ms")
            check = ""
            if role == "portico":
                check = f"{verdict(add99 <= MAX_ADDED_P99_MS)} (<= {MAX_ADDED_P99_MS:g})"
            rows.append(
                [
                    res.name,
                    res.labels[role],
                    f"{p50:.2f}",
                    f"{p99:.2f}",
                    f"{median_of(runs, 'p999_ms'):.2f}",
                    f"{add50:+.2f}" if added else "",
                    f"{add99:+.2f}" if added else "",
                    check,
                    f"{median_of(runs, 'lag_p99_ms'):.2f}",
                ]
            )
    return rows


def report(results: list[ScenarioResult], args: argparse.Namespace, rss_kib: int | None) -> str:
    throughput = table(
        ["scenario", "reference", "ref rps", "portico rps", "ratio", "target", "result", "note"],
        throughput_rows(results),
    )
    latency = table(
        ["scenario", "target", "p50", "p99", "p99.9", "+p50", "+p99", "+p99 target", "send lag p99"],
        latency_rows(results),
    )
    rss = f"{rss_kib / 1024:.1f} MiB" if rss_kib is not None else "-"
    busy = [f"{r.name} up to {max(r.foreign):.0%}" for r in results if max(r.foreign) > BUSY_LIMIT]
    warning = f"!! other processes used the CPUs during runs ({', '.join(busy)}): rerun on an idle box\n"
    foreign = ", ".join(f"{r.name} max {max(r.foreign):.0%}" for r in results)
    return (
        f"\nThroughput: wrk -t1 -c64 -d{args.duration:g}s, {args.rounds} alternating round(s); "
        "rps = median, ratio = median of per-round ratios\n"
        f"{throughput}\n\n"
        f"Latency (ms): open-loop {args.rate:,.0f} rps over 64 connections, {args.paced_duration:g} s, "
        f"median of {args.rounds} round(s); +p50/+p99 = median per-round difference to upstream direct\n"
        f"{latency}\n\n"
        f"Portico RSS after the runs: {rss}\n"
        f"CPU used by other processes during the runs: {foreign}\n"
        f"{warning if busy else ''}"
    )


def save_json(path: Path, results: list[ScenarioResult], args: argparse.Namespace, rss: int | None) -> None:
    payload = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "portico_rss_kib": rss,
        "scenarios": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(payload, indent=2))
