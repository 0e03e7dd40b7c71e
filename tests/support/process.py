"""``portico serve`` as a separate process, the way a user starts it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "portico", *args],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_healthy(port: int, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"portico exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/rest/apigateway/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("portico did not become healthy")


@contextmanager
def serving(
    data_dir: Path, db_url: str | None = None, password: str = "test-secret", extra: tuple[str, ...] = (),
    exits: dict[str, Any] | None = None,
) -> Iterator[int]:
    """``portico serve`` on a free port (``extra``: more arguments) until the block ends with
    SIGTERM. ``exits``, when given, receives the process's ``returncode``, the ``seconds`` it took
    to exit after SIGTERM and its ``output``."""
    port = free_port()
    args = ["serve", "--port", str(port), "--data-dir", str(data_dir), *extra]
    if db_url:
        args += ["--db", db_url]
    proc = spawn(args, {"PORTICO_ADMIN_PASSWORD": password})
    try:
        wait_healthy(port, proc)
        yield port
    finally:
        proc.terminate()
        started = time.monotonic()
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if exits is not None:
            exits.update(returncode=proc.returncode, seconds=time.monotonic() - started, output=output)
