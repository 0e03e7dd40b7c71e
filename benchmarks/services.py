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
import sys
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
    if missing:
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


def running_master(nginx: Nginx) -> int | None:
    """The pid of an nginx master already running this very config, if any (the shared pid files
    cannot be trusted for that: any other run of the same config overwrites or deletes them)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            line = cmdline(int(entry.name)).strip()
            if line.startswith("nginx: master process") and line.endswith(f"-c {nginx.conf}"):
                return int(entry.name)
    return None


def start_nginx(nginx: Nginx, reuse: bool = False) -> tuple[int, bool]:
    """Start one nginx (it daemonizes); returns its master pid and whether we started it.

    A port already taken is an error, unless `reuse` is set and it is held by an nginx running
    the same config (another session's: it is left running).
    """
    if port_in_use(nginx.port):
        pid = running_master(nginx)
        if reuse and pid is not None:
            print(f"  reusing {nginx.name}: nginx pid {pid} already runs {nginx.conf.name}", flush=True)
            return pid, False
        who = f"nginx pid {pid} with the same config" if pid else "another process"
        hint = " (--reuse-running to use it)" if pid and not reuse else ""
        raise BenchError(f"port {nginx.port} for {nginx.name} is taken by {who}{hint}")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["nginx", "-c", str(nginx.conf)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"nginx {nginx.conf.name} failed to start: {done.stderr.strip()}")
    wait_for_port(nginx.port, f"nginx {nginx.conf.name}", timeout=5.0)
    pid = read_pid(nginx.pid_file)
    if pid is None or str(nginx.conf) not in cmdline(pid):
        raise BenchError(f"cannot find the master pid of {nginx.conf.name} in {nginx.pid_file}")
    return pid, True


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


def export_revision(rev: str, compiled: bool = True) -> Path:
    """Extract Portico as of git revision `rev` into a fresh directory, so a run measures exactly
    that commit, whatever is being edited in the working tree meanwhile. With `compiled` (as a
    `pip install .` builds it), the data plane's modules are compiled with mypyc (setup.py) where
    the revision has that build: a minute or two, once per revision (the tree is kept)."""
    repo = Path(__file__).resolve().parent.parent
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if sha.returncode != 0:
        raise BenchError(f"unknown revision {rev!r}: {sha.stderr.strip()}")
    commit = sha.stdout.strip()
    dest = BENCH_DIR / f"portico-src-{commit}{'-compiled' if compiled else ''}"
    done = dest / ".exported"
    if done.exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    listed = subprocess.run(["git", "-C", str(repo), "ls-tree", "--name-only", commit], capture_output=True,
                            text=True, check=True).stdout.split()
    paths = ["portico", *(name for name in ("setup.py", "pyproject.toml", "README.md") if name in listed)]
    archive = subprocess.Popen(["git", "-C", str(repo), "archive", commit, *paths], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise BenchError(f"git archive {rev} failed")
    if compiled and (dest / "setup.py").exists():
        print(f"compiling the data plane of {commit} with mypyc ...", flush=True)
        build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=dest,
                               env={**os.environ, "PORTICO_COMPILE": "1"}, capture_output=True, text=True)
        if build.returncode != 0 or not list((dest / "portico" / "gateway").glob("runtime.*.so")):
            raise BenchError(f"mypyc build of {commit} failed:\n{build.stdout[-2000:]}\n{build.stderr[-2000:]}")
    done.touch()
    return dest


def start_portico(command: list[str], password: str, source: Path | None = None, cpu: int = 1) -> Portico:
    """Start `<command> serve` on a free port pinned to `cpu`; `source` goes first on PYTHONPATH."""
    port = free_port()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    data_dir = BENCH_DIR / f"portico-data-{port}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir()
    log = BENCH_DIR / "portico.log"
    argv = ["taskset", "-c", str(cpu), *command, "serve", "--port", str(port), "--data-dir", str(data_dir)]
    env = {**os.environ, "PORTICO_ADMIN_PASSWORD": password}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    with open(log, "wb") as out:
        # Run from `source` when given: `python -m` puts the working directory first on sys.path, so
        # started from the repository it would import the working tree's package, not `source`'s.
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                   cwd=source)
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
    total = 0
    for member in tree_pids(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except FileNotFoundError:
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total


@dataclass(frozen=True)
class CpuSample:
    """CPU time (clock ticks) used machine-wide, by our reaped children and by each of our live
    processes, at one instant."""

    busy: int
    children: int
    processes: dict[int, int]
    at: float


def tree_pids(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return found


def process_ticks(pid: int) -> int | None:
    split = process_split(pid)
    return None if split is None else split[0] + split[1]


def process_split(pid: int) -> tuple[int, int] | None:
    """(user, kernel) clock ticks a process has used, all its threads included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return int(fields[11]), int(fields[12])  # utime, stime


def tree_split(pid: int) -> tuple[int, int]:
    """(user, kernel) clock ticks of a process and its descendants."""
    splits = [s for p in tree_pids(pid) if (s := process_split(p)) is not None]
    return sum(u for u, _ in splits), sum(k for _, k in splits)


def cpu_sample(roots: list[int]) -> CpuSample:
    """Machine-wide user+nice+system ticks, ticks of our reaped children (wrk, paced.py), and of
    every process in `roots`' trees. Interrupt time is left out: it is charged to no process."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    times = os.times()
    processes = {p: t for root in roots for p in tree_pids(root) if (t := process_ticks(p)) is not None}
    return CpuSample(
        busy=fields[0] + fields[1] + fields[2],
        children=round((times.children_user + times.children_system) * CLOCK_TICKS),
        processes=processes,
        at=time.monotonic(),
    )


def foreign_share(before: CpuSample, after: CpuSample) -> float:
    """Share of the machine's CPU used by processes that are not part of the benchmark (a process
    of ours that started or ended in between counts only for the part both samples saw)."""
    capacity = (after.at - before.at) * CLOCK_TICKS * (os.cpu_count() or 1)
    common = before.processes.keys() & after.processes.keys()
    ours = (after.children - before.children) + sum(after.processes[p] - before.processes[p] for p in common)
    foreign = (after.busy - before.busy) - ours
    return min(1.0, max(0.0, foreign / capacity)) if capacity > 0 else 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
