"""The composition root (portico/app.py): several ``portico serve`` processes started at the same
moment on one empty PostgreSQL database all start (the schema migration and the first-start
seeding run one node at a time), and the one Administrator logs in on each; SIGTERM stops both
listeners (HTTP and HTTPS) at once and drains them together within one shutdown timeout."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.admin.test_keystores import pem_trust, server_jks
from tests.conftest import PG_ADMIN_URL, _pg_admin
from tests.gateway.test_tls import client_ssl
from tests.support.keystores import keystore_fixtures
from tests.support.node import running_node
from tests.support.process import free_port, spawn, wait_healthy
from tests.support.upstream import Upstream, spec_for

AUTH = ("Administrator", "test-secret")
# Each round a fresh database. Before the fix a round of two nodes failed about one time in five
# (Python's start-up jitter usually keeps them apart), one of three nodes about seven in ten: four
# rounds of three fail the old code 99 times in 100, in about 10 s.
NODES, ROUNDS = 3, 4


async def _administrators(url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        rows = await conn.fetch("SELECT kind, id FROM assets WHERE (kind = 'user' AND (id = 'Administrator' OR "
                                "name = 'Administrator')) OR (kind = 'userLogin' AND id = 'Administrator')")
        return [(r["kind"], r["id"]) for r in rows]
    finally:
        await conn.close()


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _race_on_an_empty_database(url: str, data_dirs: list[Path]) -> None:
    ports = [free_port() for _ in data_dirs]
    procs = [spawn(["serve", "--port", str(port), "--data-dir", str(d), "--db", url])
             for port, d in zip(ports, data_dirs, strict=True)]
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_healthy(port, proc, timeout=90)  # both started (the loser of the race used to exit)
        for port in ports:  # the one Administrator logs in on every node
            r = httpx.get(f"http://127.0.0.1:{port}/rest/apigateway/users/Administrator", auth=AUTH, timeout=10)
            assert r.status_code == 200, r.text
        assert asyncio.run(_administrators(url)) == [("user", "Administrator")]
    finally:
        _stop(procs)
    assert [p.returncode for p in procs] == [0] * len(procs), [p.stdout.read() if p.stdout else "" for p in procs]


def test_nodes_started_together_on_an_empty_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except (OSError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}")
    monkeypatch.setenv("PORTICO_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())  # nodes of one store
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    for n in range(ROUNDS):
        name = f"portico_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        try:
            _race_on_an_empty_database(f"{base}/{name}", [tmp_path / f"{n}-{i}" for i in range(NODES)])
        finally:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


SHUTDOWN_TIMEOUT = 3.0


def _refused_soon(port: int, within: float = 0.5) -> bool:
    """True once a new connection to ``port`` is refused, polling for ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.02)
    return False


async def _status(client: httpx.AsyncClient, path: str) -> int | str:
    try:
        return (await client.get(path)).status_code
    except httpx.HTTPError as exc:
        return repr(exc)


async def test_sigterm_drains_both_listeners_at_once(sqlite_url: str, tmp_path: Path, upstream: Upstream) -> None:
    """On each listener one call finishes within the grace period and one never would. After
    SIGTERM neither port takes new connections, the short calls get their answers, the hanging ones
    are cut at the one grace period (503), and the process exits within about one shutdown timeout.
    The listeners used to be drained one after the other, HTTPS first: the HTTP port kept accepting
    for a whole grace period and the process took two to exit."""
    fx = keystore_fixtures()
    async with running_node(sqlite_url, tmp_path / "data") as node:  # the HTTPS listener's keystore
        await server_jks(node, fx)
        await pem_trust(node, fx)
        r = await node.admin.put("/configurations/keystore", json={
            "keystoreName": "ServerKeys", "signingAlias": "server", "truststoreName": "TestCAs"})
        assert r.status_code == 200, r.text
        await node.create_api(spec_for(upstream.url))
    port, https_port = free_port(), free_port()
    proc = spawn(["serve", "--port", str(port), "--https-port", str(https_port), "--data-dir", str(tmp_path / "data"),
                  "--db", sqlite_url, "--shutdown-timeout", str(SHUTDOWN_TIMEOUT)],
                 {"PORTICO_ADMIN_PASSWORD": "test-secret"})
    try:
        await asyncio.to_thread(wait_healthy, port, proc)
        async with (httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/gateway/Echo/1.0", timeout=15) as plain,
                    httpx.AsyncClient(base_url=f"https://localhost:{https_port}/gateway/Echo/1.0",
                                      verify=client_ssl(fx), timeout=15) as tls):
            # the short calls end about 1 s after SIGTERM, the hanging ones long after the grace period
            calls = {(name, length): asyncio.create_task(_status(client, f"/slow/{seconds}"))
                     for name, client in (("http", plain), ("https", tls))
                     for length, seconds in (("short", 1.8), ("hanging", 8))}
            await asyncio.sleep(0.8)  # all four are waiting on the native service
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            refused = {"http": await asyncio.to_thread(_refused_soon, port),
                       "https": await asyncio.to_thread(_refused_soon, https_port)}
            await asyncio.to_thread(proc.wait, 15)
            seconds = time.monotonic() - sent
            statuses = {key: await task for key, task in calls.items()}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    output = proc.stdout.read() if proc.stdout else ""
    assert refused == {"http": True, "https": True}, output
    assert statuses == {("http", "short"): 200, ("http", "hanging"): 503,
                        ("https", "short"): 200, ("https", "hanging"): 503}, output
    assert proc.returncode == 0 and seconds < 1.5 * SHUTDOWN_TIMEOUT, (seconds, output)
