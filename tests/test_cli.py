"""``portico`` as a user runs it: version, first start, refusing an unsafe start, clean shutdown."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import portico
from tests.support.process import free_port, serving, spawn, wait_healthy
from tests.support.upstream import Upstream, spec_for

AUTH = ("Administrator", "test-secret")


def test_version() -> None:
    out = subprocess.run(["portico", "--version"], capture_output=True, text=True, check=True)
    # the command is the installed one: compiled after `pip install .`, not after `pip install -e .`
    assert re.fullmatch(rf"portico {re.escape(portico.__version__)} \(data plane (compiled|interpreted)\)",
                        out.stdout.strip()), out.stdout


def test_serve_with_embedded_store_and_default_password_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTICO_ADMIN_PASSWORD")
    port = free_port()
    proc = spawn(["serve", "--port", str(port), "--data-dir", str(tmp_path / "d")])
    try:
        wait_healthy(port, proc)
        assert (tmp_path / "d" / "portico.db").exists()
        r = httpx.get(f"http://127.0.0.1:{port}/rest/apigateway/apis", auth=("Administrator", "manage"))
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "default password" in out


def test_refuses_non_loopback_with_default_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTICO_ADMIN_PASSWORD")
    proc = spawn(["serve", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(tmp_path / "d")])
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "default password" in out and "PORTICO_ADMIN_PASSWORD" in out


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path, upstream: Upstream) -> None:
    with serving(tmp_path / "d") as port:
        admin = f"http://127.0.0.1:{port}/rest/apigateway"
        api = httpx.post(f"{admin}/apis", auth=AUTH, json={"type": "openapi", "apiDefinition": spec_for(upstream.url)})
        httpx.put(f"{admin}/apis/{api.json()['apiResponse']['api']['id']}/activate", auth=AUTH)
        result: dict[str, int] = {}

        def slow_call() -> None:
            result["status"] = httpx.get(f"http://127.0.0.1:{port}/gateway/Echo/1.0/slow/1", timeout=10).status_code

        time.sleep(0.5)  # hot deploy
        caller = threading.Thread(target=slow_call)
        caller.start()
        time.sleep(0.3)
        # Leaving the block sends SIGTERM while the call is still waiting on the upstream.
    caller.join(timeout=10)
    assert result.get("status") == 200, "the in-flight call did not finish cleanly"


def test_sigterm_past_the_shutdown_wait_answers_503_and_records_it(tmp_path: Path, upstream: Upstream) -> None:
    # The native service hangs (6 s) past the shutdown wait (0.5 s): the call is cut, answered
    # 503, and its event says why (GATEWAY_SHUTDOWN), written before the process exits.
    exits: dict[str, Any] = {}
    with serving(tmp_path / "d", extra=("--shutdown-timeout", "0.5"), exits=exits) as port:
        admin = f"http://127.0.0.1:{port}/rest/apigateway"
        api = httpx.post(f"{admin}/apis", auth=AUTH, json={"type": "openapi", "apiDefinition": spec_for(upstream.url)})
        api_id = api.json()["apiResponse"]["api"]["id"]
        httpx.put(f"{admin}/apis/{api_id}/activate", auth=AUTH)
        result: dict[str, httpx.Response | httpx.HTTPError] = {}

        def hanging_call() -> None:
            try:
                result["answer"] = httpx.get(f"http://127.0.0.1:{port}/gateway/Echo/1.0/slow/6", timeout=10)
            except httpx.HTTPError as exc:
                result["answer"] = exc

        caller = threading.Thread(target=hanging_call)
        caller.start()
        time.sleep(0.3)
    caller.join(timeout=10)
    assert exits["returncode"] == 0 and exits["seconds"] < 4.5, exits
    answer = result["answer"]
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 503 and answer.headers["connection"] == "close"
    assert "shutting down" in answer.json()["errorDetails"]
    with serving(tmp_path / "d") as port:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        found = httpx.get(f"http://127.0.0.1:{port}/rest/apigateway/transactionalEvents/_search", auth=AUTH,
                          params={"apiId": api_id, "fromDate": day, "toDate": day})
    events = [(e["operationName"], e["responseCode"], e["status"], e.get("errorOrigin"))
              for e in found.json()["transaction"]]
    assert events == [("/slow/{id}", "503", "FAILURE", "GATEWAY_SHUTDOWN")]
