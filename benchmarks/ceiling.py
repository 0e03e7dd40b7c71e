#!/usr/bin/env python3
"""How close to nginx can a Python proxy get on this machine, and where Portico stands.

Runs, pinned to CPU1 like Portico in `run.py`, and alternating round by round:
- `nginx A`: the shared reference proxy (`nginx-proxy.conf`), the ratio's denominator;
- `raw`: the floor of a Python proxy (`ceiling_servers.py raw`: asyncio + uvloop + httptools);
- `layers`: Portico's HTTP server and upstream pool with a pass-through handler (with `--portico-rev`,
  the compiled tree the `portico` row runs);
- `portico`: the `proxy` scenario of `run.py` (the `portico` command, or `--portico-rev REV`).

For each: requests/second under `wrk -t1 -c64`, the ratio to nginx A in the same round, and the
CPU microseconds per request, split into user space and kernel (system calls, the loopback TCP
stack, wake-ups: `/proc/PID/stat` utime and stime of the process tree, nginx's workers included).
The gap between `raw` and `layers` is what Portico's HTTP layers cost, the gap between `layers`
and `portico` what the gateway's own work costs (API resolution, the policy phases, routing, the
transaction event). The kernel column bounds every proxy from below: a ratio r to nginx A needs
a total per request of at most (nginx A's total) / r.

    python3 benchmarks/ceiling.py --rounds 3 --duration 8
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import portico_config
import services
from cpu_cost import Variant, _Pids, start_variant, wrk_run
from run import Cleanup, raise_interrupt, reference_nginx, start_nginx
from services import BenchError

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    name: str
    url: str
    pid: int  # the process (tree) to meter
    rps: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    user: list[float] = field(default_factory=list)  # us per request
    kernel: list[float] = field(default_factory=list)


def start_reference_server(kind: str, cleanup: Cleanup, source: Path | None = None) -> Row:
    """``source``: the Portico tree ``layers`` imports (the measured revision's, compiled as the
    ``portico`` row runs it); None: the installed one."""
    port = services.free_port()
    argv = ["taskset", "-c", "1", sys.executable, str(HERE / "ceiling_servers.py"), kind, str(port)]
    env = dict(os.environ, PYTHONPATH=str(source)) if source is not None else None
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                               env=env)

    def stop() -> None:
        process.terminate()
        process.wait(10)

    cleanup.add(f"stop {kind}", stop)
    services.wait_for_port(port, kind, 30)
    return Row(kind, f"http://127.0.0.1:{port}/json", process.pid)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--portico-rev", help="measure the portico package of this git revision")
    p.add_argument("--reuse-running", action="store_true", help="use an upstream / nginx A already running")
    args = p.parse_args(argv)
    args.scenarios, args.keys = ["proxy"], 0
    signal.signal(signal.SIGTERM, raise_interrupt)
    cleanup = Cleanup()
    try:
        services.ensure_tools()
        nginx = reference_nginx(services.shared_bench_dir())
        start_nginx(nginx["upstream"], cleanup, _Pids(), args.reuse_running)  # type: ignore[arg-type]
        proxy_pids = _Pids()
        start_nginx(nginx["proxy"], cleanup, proxy_pids, args.reuse_running)  # type: ignore[arg-type]
        rows = [Row("nginx A", f"http://127.0.0.1:{nginx['proxy'].port}/json", proxy_pids.pids[-1])]
        source = services.export_revision(args.portico_rev) if args.portico_rev else None
        rows += [start_reference_server("raw", cleanup), start_reference_server("layers", cleanup, source)]
        variant = Variant(f"rev:{args.portico_rev}" if args.portico_rev else "installed")
        start_variant(variant, 0, args, cleanup)
        assert variant.portico is not None
        rows.append(Row("portico", variant.targets["proxy"][0], variant.portico.process.pid))
        for row in rows:
            wrk_run(row.url, args.warmup, None)
        for n in range(1, args.rounds + 1):
            for row in rows:
                before = services.tree_split(row.pid)
                run, served = wrk_run(row.url, args.duration, None)
                after = services.tree_split(row.pid)
                per_request = 1e6 / services.CLOCK_TICKS / max(served, 1)
                row.user.append((after[0] - before[0]) * per_request)
                row.kernel.append((after[1] - before[1]) * per_request)
                row.rps.append(run.rps)
                row.ratio.append(run.rps / rows[0].rps[-1])
                flag = "" if run.clean else "  !! errors"
                print(f"  round {n} {row.name:<8} {run.rps:>9,.0f} rps{flag}", flush=True)
            time.sleep(0.5)
        print(f"\n{'target':<8}  {'rps (median)':>12}  {'vs nginx A':>10}  {'CPU us/request: user':>20}  "
              f"{'kernel':>6}  {'total':>6}")
        for row in rows:
            user, kernel = statistics.median(row.user), statistics.median(row.kernel)
            print(f"{row.name:<8}  {statistics.median(row.rps):>12,.0f}  {statistics.median(row.ratio):>10.2f}  "
                  f"{user:>20.1f}  {kernel:>6.1f}  {user + kernel:>6.1f}")
    except KeyboardInterrupt:
        return 130
    except (BenchError, portico_config.AdminError, RuntimeError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    finally:
        cleanup.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
