#!/usr/bin/env python3
"""Instructions Portico executes per request (user space), counted by valgrind's callgrind: unlike
rps or CPU time, the count does not move with whatever else runs on the machine, so two versions
of the data plane can be compared on a busy machine and small changes (a few percent) show.

Each variant runs as `valgrind --tool=callgrind --instr-atstart=no python -m portico.cli serve`
(pinned to CPU1, configured like cpu_cost.py), about 50 times slower than natively. Per scenario
and variant: a warm-up load, then counting is switched on (`callgrind_control -i on`) for a
`wrk -t1 -c8` run, and separately for an idle spell of the same length; the per-request figure is
(instructions under load - idle instructions) / requests served. System calls are not counted.

    python3 benchmarks/instructions.py --variant rev:HEAD~1 --variant installed --scenario proxy
    python3 benchmarks/instructions.py --variant src:/tmp/other-tree --scenario proxy,apikey

A variant is `installed`, `rev:REV` (compiled), `pyrev:REV` or `src:DIR` as in cpu_cost.py.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import cpu_cost
import services
from cpu_cost import SCENARIOS, wrk_run
from run import Cleanup
from services import BENCH_DIR

T = TypeVar("T")


@dataclass
class Variant(cpu_cost.Variant):
    out: Path | None = None  # callgrind's output file
    counts: dict[str, list[float]] = field(default_factory=dict)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="proxy", help="comma-separated: proxy,apikey,plan (default proxy)")
    p.add_argument("--variant", action="append", help="installed, rev:REV, pyrev:REV or src:DIR (repeatable)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of counted load (default 10)")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=8,
                   help="wrk connections (default 8: fewer requests share a loop iteration, so counts vary less)")
    p.add_argument("--keys", type=int, default=100, help="applications for apikey/plan (default 100)")
    p.add_argument("--reuse-running", action="store_true", help="use an upstream already running")
    args = p.parse_args(argv)
    args.variant = args.variant or ["installed"]
    args.scenarios = args.scenario.split(",")
    if not set(args.scenarios) <= set(SCENARIOS):
        p.error(f"unknown scenario in {args.scenario!r}; known: {', '.join(SCENARIOS)}")
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        p.error("valgrind (with callgrind_control) is needed: apt-get install valgrind")
    return args


def start_variant(variant: Variant, n: int, args: argparse.Namespace, cleanup: Cleanup) -> None:
    variant.out = BENCH_DIR / f"callgrind-{n}.out"
    wrapper = ("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={variant.out}")
    cpu_cost.start_variant(variant, n, args, cleanup, wrapper, health_timeout=600)


def counted(pid: int, out: Path, spell: Callable[[], T], keep: Path | None = None) -> tuple[int, T]:
    """Instructions callgrind counts in `pid` while `spell()` runs, and what it returned; `keep`:
    where to copy callgrind's profile of the spell (for `callgrind_annotate`)."""
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
    try:
        result = spell()
    finally:
        subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, capture_output=True)
    for old in out.parent.glob(out.name + "*"):
        old.unlink()
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        if keep is not None:
            shutil.copy(dump, keep)
        found = re.search(r"^totals:\s+(\d+)", dump.read_text(errors="replace"), re.MULTILINE)
        if found:
            total += int(found.group(1))
    return total, result


def valgrind_pid(portico: services.Portico) -> int:
    """The process callgrind runs in: `taskset` execs valgrind, which execs nothing further."""
    return portico.process.pid


def measure(variants: list[Variant], args: argparse.Namespace) -> None:
    for scenario in args.scenarios:
        for variant in variants:
            url, keys = variant.targets[scenario]
            wrk_run(url, args.warmup, keys, args.connections)
        for n in range(1, args.rounds + 1):
            for variant in variants:
                assert variant.portico is not None and variant.out is not None
                url, keys = variant.targets[scenario]
                pid = valgrind_pid(variant.portico)
                idle, _ = counted(pid, variant.out, partial(time.sleep, args.duration))
                keep = BENCH_DIR / f"callgrind-{scenario}-{variant.spec.replace('/', '_')}-{n}.out"
                busy, result = counted(pid, variant.out, partial(wrk_run, url, args.duration, keys, args.connections),
                                       keep)
                run, served = result
                per_request = (busy - idle) / max(served, 1)
                variant.counts.setdefault(scenario, []).append(per_request)
                flag = "" if run.clean else f"  !! {run.non_2xx} non-2xx, {run.socket_errors} socket errors"
                print(f"  [{scenario}] round {n} {variant.spec:<24} {served:>7,} requests  "
                      f"{per_request:>10,.0f} instructions/request (idle {idle / args.duration:,.0f}/s){flag}",
                      flush=True)


def summary(variants: list[Variant], scenarios: list[str]) -> str:
    lines = ["", f"{'scenario':<8}  {'variant':<24}  {'instructions/request (min)':>27}  vs first"]
    for scenario in scenarios:
        first = min(variants[0].counts[scenario])
        for v in variants:
            best = min(v.counts[scenario])
            lines.append(f"{scenario:<8}  {v.spec:<24}  {best:>27,.0f}  {best / first:8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return cpu_cost.run_variants(args, [Variant(spec) for spec in args.variant], measure, summary, start_variant)


if __name__ == "__main__":
    sys.exit(main())
