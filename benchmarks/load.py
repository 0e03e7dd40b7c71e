"""Drive load at a target: saturating runs with wrk, paced latency runs with paced.py.

Both clients run pinned to CPU0 (shared with the upstream), as the bench README prescribes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KEYFILE_LUA = HERE / "wrk-keyfile.lua"
PACED = HERE / "paced.py"
CLIENT_CPU = "0"


@dataclass(frozen=True)
class Target:
    """Something to load: a URL and, for API-key scenarios, the header and key file to rotate."""

    label: str
    url: str
    header: str | None = None
    keys_file: Path | None = None

    def key_args(self) -> list[str]:
        if self.header is None or self.keys_file is None:
            return []
        return ["--keys-file", str(self.keys_file), "--header", self.header]


@dataclass(frozen=True)
class WrkResult:
    rps: float
    non_2xx: int
    socket_errors: int
    latency_avg: str

    @property
    def clean(self) -> bool:
        return self.non_2xx == 0 and self.socket_errors == 0


def wrk(target: Target, duration: float, connections: int = 64) -> WrkResult:
    """One saturating run: `taskset -c 0 wrk -t1 -c64 -d<duration>s` (rotating keys if any)."""
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s"]
    if target.header is not None and target.keys_file is not None:
        argv += ["-s", str(KEYFILE_LUA), target.url, "--", str(target.keys_file), target.header]
    else:
        argv.append(target.url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed on {target.url}: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    latency = re.search(r"Latency\s+(\S+)", output)
    return WrkResult(
        rps=float(rps.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        latency_avg=latency.group(1) if latency else "?",
    )


def paced(target: Target, rate: float, duration: float, connections: int = 64) -> dict[str, Any]:
    """One open-loop run at a fixed rate (see paced.py); returns its JSON summary."""
    argv = ["taskset", "-c", CLIENT_CPU, sys.executable, str(PACED), target.url]
    argv += ["--rate", f"{rate:g}", "--duration", f"{duration:g}", "--connections", str(connections)]
    argv += target.key_args()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"paced run failed on {target.url}: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def probe(url: str, header: str | None = None, key: str | None = None) -> int:
    """Status code of one GET (0 if the connection failed)."""
    request = urllib.request.Request(url)
    if header is not None and key is not None:
        request.add_header(header, key)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0
