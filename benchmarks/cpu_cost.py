#!/usr/bin/env python3
"""CPU microseconds Portico spends per request, per scenario: a steadier figure than rps on a
shared or noisy machine, for comparing versions of the data plane.

Starts the upstream (or reuses one running the shared config) and one Portico per variant, each
pinned to CPU1 and configured for every selected scenario. Then, per scenario and round, each
variant in turn gets `taskset -c 0 wrk -t1 -c64` for --duration seconds while the CPU ticks
(utime + stime, /proc/PID/stat) of its process tree are sampled: cost = ticks / requests served.
Variants alternate within a round, so slow drifts of the machine hit them alike.

A variant is `installed` (the `portico` command: the working tree with `pip install -e .`, its data
plane interpreted), `rev:REV` (Portico as of a git revision, its data plane compiled as
`pip install .` builds it), `pyrev:REV` (the same, interpreted) or `src:DIR` (the package in DIR).

    python3 benchmarks/cpu_cost.py                                   # installed; proxy, apikey, plan
    python3 benchmarks/cpu_cost.py --variant rev:HEAD~3 --variant installed --scenario proxy,apikey
    python3 benchmarks/cpu_cost.py --scenario plan --hold            # then: py-spy top --pid PID

With --hold, everything stays up after the runs until SIGTERM / Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import portico_config
import portico_plans
import services
from load import KEYFILE_LUA, WrkResult, parse_wrk
from run import Cleanup, raise_interrupt, reference_nginx, start_nginx
from services import BENCH_DIR, BenchError

SCENARIOS = ("proxy", "apikey", "plan")


@dataclass
class Variant:
    spec: str
    portico: services.Portico | None = None
    targets: dict[str, tuple[str, Path | None]] = field(default_factory=dict)  # scenario -> (url, key file)
    costs: dict[str, list[float]] = field(default_factory=dict)
    rps: dict[str, list[float]] = field(default_factory=dict)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="all", help="comma-separated: proxy,apikey,plan (default all)")
    p.add_argument("--variant", action="append", help="installed, rev:REV or src:DIR (repeatable)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run (default 8)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--hold", action="store_true", help="keep everything running after the runs")
    p.add_argument("--reuse-running", action="store_true", help="use an upstream already running")
    args = p.parse_args(argv)
    args.variant = args.variant or ["installed"]
    args.scenarios = list(SCENARIOS) if args.scenario == "all" else args.scenario.split(",")
    if not set(args.scenarios) <= set(SCENARIOS):
        p.error(f"unknown scenario in {args.scenario!r}; known: {', '.join(SCENARIOS)}")
    return args


def wrk_run(url: str, duration: float, keys: Path | None, connections: int = 64) -> tuple[WrkResult, int]:
    argv = ["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s"]
    if keys is not None:
        argv += ["-s", str(KEYFILE_LUA), url, "--", str(keys), portico_config.KEY_HEADER]
    else:
        argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed on {url}: {done.stderr.strip() or done.stdout.strip()}")
    total = re.search(r"(\d+) requests in", done.stdout)
    if total is None:
        raise RuntimeError(f"cannot read wrk output:\n{done.stdout}")
    return parse_wrk(done.stdout), int(total.group(1))


def tree_ticks(pid: int) -> int:
    return sum(t for p in services.tree_pids(pid) if (t := services.process_ticks(p)) is not None)


def start_variant(variant: Variant, n: int, args: argparse.Namespace, cleanup: Cleanup,
                  wrapper: tuple[str, ...] = (), health_timeout: float = 60.0) -> None:
    """Start the variant's Portico (under ``wrapper``, e.g. valgrind, when given) and configure
    every selected scenario on it; ``variant.targets`` gets each scenario's URL and key file."""
    command, source = ["portico"], None
    kind, _, value = variant.spec.partition(":")
    if kind in ("rev", "pyrev"):
        source = services.export_revision(value, compiled=kind == "rev")
    elif kind == "src":
        source = Path(value).resolve()
    elif kind != "installed":
        raise BenchError(f"unknown variant {variant.spec!r}: use installed, rev:REV, pyrev:REV or src:DIR")
    if source is not None or wrapper:
        command = [*wrapper, sys.executable, "-m", "portico.cli"]
    password = secrets.token_urlsafe(16)
    portico = variant.portico = services.start_portico(command, password, source)
    cleanup.add(f"stop portico {variant.spec}", lambda: services.stop_portico(portico))
    services.wait_healthy(portico, timeout=health_timeout)
    print(f"{variant.spec}: portico pid {portico.process.pid} on port {portico.port}", flush=True)
    admin = portico_config.Admin(portico.base_url, password)
    for scenario in args.scenarios:
        if scenario == "proxy":
            variant.targets[scenario] = (portico_config.configure_api(admin, "bench").url, None)
            continue
        print(f"  configuring {scenario}: {args.keys} applications ...", flush=True)
        if scenario == "apikey":
            api = portico_config.configure_api(admin, "benchkey", apps=args.keys)
        else:
            api = portico_plans.configure_plan_api(admin, "benchplan", args.keys)
        key_file = BENCH_DIR / f"cpu-keys-{n}-{scenario}.txt"
        key_file.write_text("".join(f"{k}\n" for k in api.keys))
        variant.targets[scenario] = (api.url, key_file)


def measure(variants: list[Variant], args: argparse.Namespace) -> None:
    for scenario in args.scenarios:
        for variant in variants:
            url, keys = variant.targets[scenario]
            wrk_run(url, args.warmup, keys)
        for n in range(1, args.rounds + 1):
            for variant in variants:
                assert variant.portico is not None
                url, keys = variant.targets[scenario]
                pid = variant.portico.process.pid
                before = tree_ticks(pid)
                run, served = wrk_run(url, args.duration, keys)
                cost = (tree_ticks(pid) - before) / services.CLOCK_TICKS / max(served, 1) * 1e6
                variant.costs.setdefault(scenario, []).append(cost)
                variant.rps.setdefault(scenario, []).append(run.rps)
                flag = "" if run.clean else f"  !! {run.non_2xx} non-2xx, {run.socket_errors} socket errors"
                print(f"  [{scenario}] round {n} {variant.spec:<24} {run.rps:>9,.0f} rps  "
                      f"{cost:6.1f} us CPU/request{flag}", flush=True)


def summary(variants: list[Variant], scenarios: list[str]) -> str:
    """Per scenario and variant: median rps, median and minimum cost, and the median over rounds of
    the cost relative to the first variant's in the same round (back-to-back runs: the machine's
    drifts cancel)."""
    lines = ["", f"{'scenario':<8}  {'variant':<24}  {'rps (median)':>12}  {'CPU us/req median':>17}  "
                 f"{'min':>6}  vs first"]
    for scenario in scenarios:
        first = variants[0].costs[scenario]
        for v in variants:
            costs = v.costs[scenario]
            ratio = statistics.median(c / f for c, f in zip(costs, first, strict=True))
            lines.append(f"{scenario:<8}  {v.spec:<24}  {statistics.median(v.rps[scenario]):>12,.0f}  "
                         f"{statistics.median(costs):>17.1f}  {min(costs):>6.1f}  {ratio:8.3f}")
    return "\n".join(lines)


V = TypeVar("V", bound="Variant")


def run_variants(args: argparse.Namespace, variants: list[V],
                 measure_all: Callable[[list[V], argparse.Namespace], None],
                 report: Callable[[list[V], list[str]], str],
                 start: Callable[[V, int, argparse.Namespace, Cleanup], None] = start_variant) -> int:
    """What cpu_cost.py and instructions.py share: the upstream, one Portico per variant (``start``,
    by default `start_variant`), ``measure_all``, the ``report``; everything stopped at the end."""
    signal.signal(signal.SIGTERM, raise_interrupt)
    cleanup = Cleanup()
    try:
        services.ensure_tools()
        nginx = reference_nginx(services.shared_bench_dir())
        start_nginx(nginx["upstream"], cleanup, _Pids(), args.reuse_running)  # type: ignore[arg-type]
        for n, variant in enumerate(variants):
            start(variant, n, args, cleanup)
        measure_all(variants, args)
        print(report(variants, args.scenarios), flush=True)
        if getattr(args, "hold", False):
            pids = ", ".join(str(v.portico.process.pid) for v in variants if v.portico)
            print(f"\nholding: portico pid(s) {pids}; SIGTERM or Ctrl-C to stop", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return 130
    except (BenchError, portico_config.AdminError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    finally:
        cleanup.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_variants(args, [Variant(spec) for spec in args.variant], measure, summary)


class _Pids:
    """start_nginx notes the pids it started in a run's Setup; nothing reads them here."""

    def __init__(self) -> None:
        self.pids: list[int] = []


if __name__ == "__main__":
    sys.exit(main())
