"""Start and stop the processes a benchmark run needs: the nginx instances and Portico.

Every process started here is stopped by its own pid (nginx: the pid file its config names under
/tmp/portico-bench; Portico: the process group of the child we spawned), never by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path("/tmp/portico-bench")
SHARED_BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "bench"


class BenchError(RuntimeError):
    """A setup step failed; the message says what to look at."""


@dataclass(frozen=True)
class Nginx:
    """One nginx instance from a shared reference config (pid file path read from the config)."""

    name: str
    conf: Path
    port: int

    @property
    def pid_file(self) -> Path:
        match = re.search(r"^\s*pid\s+([^;\s]+)\s*;", self.conf.read_text(), re.MULTILINE)
        if match is None:
            raise BenchError(f"{self.conf} has no pid directive")
        return Path(match.group(1))


def shared_bench_dir() -> Path:
    """The shared reference configs: $PORTICO_BENCH_SHARED, else ../shared/bench next to the repo."""
    path = Path(os.environ.get("PORTICO_BENCH_SHARED", SHARED_BENCH))
    if not (path / "upstream-nginx.conf").is_file():
        raise BenchError(f"reference configs not found in {path} (set PORTICO_BENCH_SHARED)")
    return path


def ensure_tools() -> None:
    """Install nginx and wrk from Debian if either is missing (needs root, as the bench README says)."""
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if not missing:
        return
    print(f"installing {' '.join(missing)} with apt-get ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)
    if shutil.which("taskset") is None:
        raise BenchError("taskset not found (package util-linux)")


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (init here may reap late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def stop_pid(pid: int, sig: signal.Signals = signal.SIGTERM, wait: float = 5.0) -> None:
    """Signal one process, wait for it to go, then SIGKILL it if it has not."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.05)
    if is_alive(pid):
        os.kill(pid, signal.SIGKILL)


def holder(nginx: Nginx) -> str:
    """Who holds an nginx's port, as far as its pid file tells."""
    pid = read_pid(nginx.pid_file)
    if pid is not None and is_alive(pid):
        return f"pid {pid}: {cmdline(pid).strip()} (from {nginx.pid_file})"
    return "a process not started from these configs"


def start_nginx(nginx: Nginx) -> int:
    """Start one nginx (it daemonizes) and return its master pid, read back from its pid file.

    The pid files are shared with anyone else using these configs on the machine, so a busy
    port is an error (another benchmark is running: stopping it is not ours to do).
    """
    if port_in_use(nginx.port):
        raise BenchError(f"port {nginx.port} for {nginx.name} is in use by {holder(nginx)}; stop it first")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["nginx", "-c", str(nginx.conf)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"nginx {nginx.conf.name} failed to start: {done.stderr.strip()}")
    wait_for_port(nginx.port, f"nginx {nginx.conf.name}", timeout=5.0)
    pid = read_pid(nginx.pid_file)
    if pid is None or str(nginx.conf) not in cmdline(pid):
        raise BenchError(f"cannot find the master pid of {nginx.conf.name} in {nginx.pid_file}")
    return pid


def stop_nginx(nginx: Nginx, pid: int) -> None:
    """Gracefully stop the nginx master we started (pid read back when it started)."""
    if is_alive(pid) and str(nginx.conf) in cmdline(pid):
        stop_pid(pid, signal.SIGQUIT)


def wait_for_port(port: int, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port_in_use(port):
        if time.monotonic() > deadline:
            raise BenchError(f"{what} is not listening on 127.0.0.1:{port} after {timeout:.0f} s")
        time.sleep(0.05)


@dataclass
class Portico:
    """A `portico serve` child pinned to CPU1, with its data dir and log."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def start_portico(command: list[str], password: str, cpu: int = 1) -> Portico:
    port = free_port()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    data_dir = BENCH_DIR / f"portico-data-{port}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir()
    log = BENCH_DIR / "portico.log"
    argv = ["taskset", "-c", str(cpu), *command, "serve", "--port", str(port), "--data-dir", str(data_dir)]
    env = {**os.environ, "PORTICO_ADMIN_PASSWORD": password}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return Portico(process, port, data_dir, log)


def wait_healthy(portico: Portico, timeout: float = 60.0) -> None:
    url = f"{portico.base_url}/rest/apigateway/health"
    deadline = time.monotonic() + timeout
    while True:
        if portico.process.poll() is not None:
            raise BenchError(f"portico exited with {portico.process.returncode}:\n{portico.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{url} not healthy after {timeout:.0f} s:\n{portico.log_tail()}")
        time.sleep(0.2)


def stop_portico(portico: Portico) -> None:
    """SIGTERM the Portico process group, SIGKILL it after 10 s; then drop its data dir."""
    if portico.process.poll() is None:
        try:
            os.killpg(portico.process.pid, signal.SIGTERM)
            portico.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(portico.process.pid, signal.SIGKILL)
            portico.process.wait()
        except ProcessLookupError:
            pass
    shutil.rmtree(portico.data_dir, ignore_errors=True)


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            tasks = Path(f"/proc/{current}/task").iterdir()
            for task in tasks:
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy over `seconds` (from /proc/stat), to spot other load on the box."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return idle, sum(fields[:8])

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)
