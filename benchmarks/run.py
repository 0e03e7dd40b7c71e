#!/usr/bin/env python3
"""Side-by-side data-plane benchmark: Portico against the nginx references in shared/bench.

Scenarios:
  proxy   reference A (nginx-proxy.conf, :8080) vs Portico proxying an API with no identification
  apikey  reference B (nginx-peer.conf, :8082) vs Portico with an evaluatePolicy (API key) action
          and 1,000 registered applications; both get the same 1,000 keys, rotated per request
  plan    reference B with its JSON access log on vs Portico with API key + per-application rate
          limit (a package plan, never reached) + a transaction event per call (not part of "all":
          it shares reference B's port)

Per scenario: saturating wrk runs alternating reference / Portico (median rps, ratio vs target),
then open-loop paced runs at a fixed rate against the upstream directly, the reference and
Portico (added p50/p99 over upstream-direct). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TypeVar

import load
import portico_config
import portico_jwt
import portico_plans
import services
from load import Target
from report import BUSY_LIMIT, ScenarioResult, report, save_json
from services import BENCH_DIR, BenchError, Nginx

R = TypeVar("R")
UPSTREAM_URL = "http://127.0.0.1:9000/json"
NGINX_KEY_HEADER = "X-API-Key"  # nginx-peer.conf maps $http_x_api_key
KEYS_FILE = BENCH_DIR / "keys.txt"  # one key per line, for wrk-keyfile.lua and paced.py
NGINX_MAP = BENCH_DIR / "keys.map"  # included by nginx-peer.conf
KEYED = ("apikey", "plan")  # scenarios that send API keys


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", choices=("proxy", "apikey", "plan", "jwt", "all"), default="all")
    p.add_argument("--rounds", type=int, default=3, help="alternating runs per target (default 3)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    p.add_argument("--paced-duration", type=float, help="seconds per paced run (default: --duration)")
    p.add_argument("--rate", type=float, default=2000.0, help="paced request rate (default 2000)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of wrk per target first (default 5)")
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="repeat a run during which other processes took > 5%% CPU, up to this many times (default 2)",
    )
    p.add_argument("--keys", type=int, default=1000, help="applications / API keys (default 1000)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 round, 5 s runs, 2 s warm-up")
    p.add_argument("--only-references", action="store_true", help="skip Portico (nginx side only)")
    p.add_argument("--portico-cmd", default="portico", help="command that runs Portico (default portico)")
    p.add_argument(
        "--portico-rev",
        metavar="REV",
        help="run Portico as of this git revision (e.g. HEAD) instead of the working tree / installed one, "
        "with its data plane compiled as `pip install .` builds it",
    )
    p.add_argument("--interpreted", action="store_true",
                   help="with --portico-rev: run the data plane as plain Python (as `pip install -e .`)")
    p.add_argument("--json", type=Path, help="also write all raw results to this file")
    p.add_argument(
        "--reuse-running",
        action="store_true",
        help="use an upstream / reference A nginx already running the same shared config (left running)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 5.0, 2.0
    if args.paced_duration is None:
        args.paced_duration = args.duration
    return args


# ---------------------------------------------------------------- setup


class Cleanup:
    """Teardown steps, run last-in first-out, each one even if another fails."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], None]]] = []

    def add(self, what: str, step: Callable[[], None]) -> None:
        self.steps.append((what, step))

    def run(self) -> None:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip steps
        try:
            while self.steps:
                what, step = self.steps.pop()
                try:
                    step()
                except Exception as error:
                    print(f"cleanup: {what} failed: {error}", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous)


def reference_nginx(shared: Path) -> dict[str, Nginx]:
    return {
        "upstream": Nginx("upstream", shared / "upstream-nginx.conf", 9000),
        "proxy": Nginx("reference A", shared / "nginx-proxy.conf", 8080),
        "apikey": Nginx("reference B", shared / "nginx-peer.conf", 8082),
        "plan": Nginx("reference B + log", portico_plans.txlog_peer_conf(shared), 8082),
    }


def start_nginx(nginx: Nginx, cleanup: Cleanup, setup: Setup, reuse: bool) -> None:
    print(f"starting {nginx.name} ({nginx.conf.name}, port {nginx.port})", flush=True)
    pid, started = services.start_nginx(nginx, reuse)
    if started:
        cleanup.add(f"stop {nginx.name}", lambda: services.stop_nginx(nginx, pid))
    setup.pids.append(pid)


def write_keys(keys: list[str]) -> None:
    """The same keys for everyone: keys.map for nginx-peer, keys.txt for the load generators."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    for key in keys:
        if not key or any(c in key for c in "\"'\\; \t\r\n"):
            raise BenchError(f"key {key!r} cannot be written into an nginx map")
    NGINX_MAP.write_text("".join(f'"{key}" "consumer-{n:06d}";\n' for n, key in enumerate(keys, 1)))
    KEYS_FILE.write_text("".join(f"{key}\n" for key in keys))


def synthetic_keys(count: int) -> list[str]:
    """Keys in make-keys.py's format, used when Portico does not generate them."""
    return [f"key-{n:06d}" for n in range(1, count + 1)]


@dataclass
class Setup:
    """What run() needs once everything is started and configured."""

    scenarios: list[str]
    pids: list[int] = field(default_factory=list)  # roots of the process trees we started
    portico: services.Portico | None = None
    portico_urls: dict[str, str] = field(default_factory=dict)


def start_portico(args: argparse.Namespace, cleanup: Cleanup, setup: Setup) -> list[str]:
    """Start and configure Portico for the selected scenarios; returns the generated keys."""
    password = secrets.token_urlsafe(16)
    command, source = shlex.split(args.portico_cmd), None
    if args.portico_rev:
        source = services.export_revision(args.portico_rev, compiled=not args.interpreted)
        command = [sys.executable, "-m", "portico.cli"]
    portico = services.start_portico(command, password, source)
    cleanup.add("stop portico", lambda: services.stop_portico(portico))
    origin = f" from {args.portico_rev} ({source.name})" if source else " (the portico command)"
    print(f"starting portico{origin} on port {portico.port} (log {portico.log})", flush=True)
    services.wait_healthy(portico)
    setup.portico = portico
    setup.pids.append(portico.process.pid)
    admin = portico_config.Admin(portico.base_url, password)
    keys: list[str] = []
    if "proxy" in setup.scenarios:
        setup.portico_urls["proxy"] = portico_config.configure_api(admin, "bench").url
    if "apikey" in setup.scenarios:
        print(f"configuring portico: API with API-key identification, {args.keys} applications", flush=True)
        started = time.monotonic()
        api = portico_config.configure_api(admin, "benchkey", apps=args.keys)
        print(f"  {len(api.keys)} applications in {time.monotonic() - started:.0f} s", flush=True)
        setup.portico_urls["apikey"] = api.url
        keys = api.keys
    if "plan" in setup.scenarios:
        print(f"configuring portico: package plan with a per-application rate limit, {args.keys} subscriptions",
              flush=True)
        api = portico_plans.configure_plan_api(admin, "benchplan", args.keys)
        setup.portico_urls["plan"] = api.url
        keys = api.keys
    if "jwt" in setup.scenarios:
        print(f"configuring portico: JWT (RS256) identification by claims, {args.keys} applications", flush=True)
        setup.portico_urls["jwt"] = portico_jwt.configure(admin, "benchjwt", args.keys, cleanup)
    if portico_config.RETRIED:
        print(f"  !! {len(portico_config.RETRIED)} management call(s) got a 5xx and were retried, first:", flush=True)
        print(f"     {portico_config.RETRIED[0]}", flush=True)
    return keys


def targets(scenario: str, setup: Setup) -> dict[str, Target]:
    """upstream direct / reference / Portico targets of one scenario, keyed by role."""
    if scenario == "jwt":
        return portico_jwt.targets(setup.portico_urls.get("jwt"))
    ref_url = {"proxy": "http://127.0.0.1:8080/json", "apikey": "http://127.0.0.1:8082/json",
               "plan": "http://127.0.0.1:8082/json"}[scenario]
    keyed = scenario in KEYED
    gw_header = portico_config.KEY_HEADER if keyed else None
    result = {
        "direct": Target("upstream direct", UPSTREAM_URL, gw_header, KEYS_FILE if keyed else None),
        "reference": Target(
            {"proxy": "A nginx proxy_pass", "apikey": "B nginx key map", "plan": "B nginx map+json log"}[scenario],
            ref_url,
            NGINX_KEY_HEADER if keyed else None,
            KEYS_FILE if keyed else None,
        ),
    }
    if scenario in setup.portico_urls:
        result["portico"] = Target("portico", setup.portico_urls[scenario], gw_header, result["direct"].keys_file)
    return result


def check_targets(scenario: str, roles: dict[str, Target]) -> None:
    """Each target answers 200 to a keyed request; keyed gateways refuse a missing or wrong key."""
    if scenario == "jwt":
        return portico_jwt.check(roles)
    key = KEYS_FILE.read_text().split()[0] if scenario in KEYED else None
    for role, target in roles.items():
        status = load.probe(target.url, target.header, key)
        if status != 200:
            raise BenchError(f"{target.label} ({target.url}) answered {status} instead of 200")
        if scenario in KEYED and role != "direct":
            for sent in (None, "not-a-registered-key"):
                refused = load.probe(target.url, target.header, sent)
                if refused not in (401, 403):
                    raise BenchError(f"{target.label} answered {refused} to key {sent!r}, expected 401/403")


# ---------------------------------------------------------------- measuring


def metered(pids: list[int], result: ScenarioResult, retries: int, action: Callable[[], R]) -> tuple[R, str]:
    """Run one measurement, noting how much CPU processes outside the benchmark took meanwhile;
    while that is over BUSY_LIMIT, run it again (up to `retries` times) and keep the quietest."""
    tries: list[tuple[float, R]] = []
    while True:
        before = services.cpu_sample(pids)
        outcome = action()
        tries.append((services.foreign_share(before, services.cpu_sample(pids)), outcome))
        if tries[-1][0] <= BUSY_LIMIT or len(tries) > retries:
            break
    share, outcome = min(tries, key=lambda t: t[0])
    result.foreign.append(share)
    again = f" ({len(tries)} tries)" if len(tries) > 1 else ""
    return outcome, f"  !! other load {share:.0%} CPU{again}" if share > BUSY_LIMIT else again


def throughput_rounds(
    roles: dict[str, Target], args: argparse.Namespace, result: ScenarioResult, pids: list[int]
) -> None:
    order = [role for role in ("reference", "portico") if role in roles]
    for n in range(1, args.rounds + 1):
        for role in order:
            run, flag = metered(pids, result, args.retries, partial(load.wrk, roles[role], args.duration))
            result.throughput.setdefault(role, []).append(run)
            if not run.clean:
                flag += f"  !! {run.non_2xx} non-2xx, {run.socket_errors} socket errors"
            print(f"  [{result.name}] round {n} {roles[role].label:<20} {run.rps:>10,.0f} rps{flag}", flush=True)


def paced_rounds(roles: dict[str, Target], args: argparse.Namespace, result: ScenarioResult, pids: list[int]) -> None:
    order = [role for role in ("direct", "reference", "portico") if role in roles]
    for n in range(1, args.rounds + 1):
        for role in order:
            action = partial(load.paced, roles[role], args.rate, args.paced_duration)
            run, flag = metered(pids, result, args.retries, action)
            result.paced.setdefault(role, []).append(run)
            bad = int(run["non_2xx_3xx"]) + int(run["errors"])
            flag += f"  !! {bad} failed" if bad else ""
            print(
                f"  [{result.name}] paced {n} {roles[role].label:<20} p50 {run['p50_ms']:.3f} ms"
                f"  p99 {run['p99_ms']:.3f} ms  ({run['achieved_rps']:,.0f} rps){flag}",
                flush=True,
            )


def warm_up(roles: dict[str, Target], seconds: float) -> None:
    for target in roles.values():
        load.wrk(target, seconds)


def run_scenario(scenario: str, setup: Setup, args: argparse.Namespace) -> ScenarioResult:
    roles = targets(scenario, setup)
    check_targets(scenario, roles)
    print(f"== scenario {scenario}: warm-up {args.warmup:g} s per target", flush=True)
    warm_up(roles, args.warmup)
    result = ScenarioResult(scenario, {role: t.label for role, t in roles.items()})
    throughput_rounds(roles, args, result, setup.pids)
    paced_rounds(roles, args, result, setup.pids)
    return result


# ---------------------------------------------------------------- main


def run(args: argparse.Namespace, cleanup: Cleanup) -> tuple[list[ScenarioResult], int | None]:
    services.ensure_tools()
    nginx = reference_nginx(services.shared_bench_dir())
    setup = Setup(["proxy", "apikey"] if args.scenario == "all" else [args.scenario])
    start_nginx(nginx["upstream"], cleanup, setup, args.reuse_running)
    keys = [] if args.only_references else start_portico(args, cleanup, setup)
    if set(KEYED) & set(setup.scenarios):
        write_keys(keys or synthetic_keys(args.keys))
    for scenario in setup.scenarios:
        if scenario == "jwt":  # reference C is HAProxy
            setup.pids.append(portico_jwt.start_haproxy(services.shared_bench_dir(), cleanup))
            continue
        # nginx-peer must load the keys written above, so it is never reused
        start_nginx(nginx[scenario], cleanup, setup, args.reuse_running and scenario == "proxy")
    results = [run_scenario(scenario, setup, args) for scenario in setup.scenarios]
    rss = services.tree_rss_kib(setup.portico.process.pid) if setup.portico else None
    return results, rss


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, raise_interrupt)
    cleanup = Cleanup()
    try:
        results, rss = run(args, cleanup)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    except (BenchError, portico_config.AdminError, RuntimeError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    finally:
        cleanup.run()
    print(report(results, args, rss))
    if args.json:
        save_json(args.json, results, args, rss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
