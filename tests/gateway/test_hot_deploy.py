"""Changes through the management API reach the gateway within a second, on every node sharing the store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.conftest import _pg_admin
from tests.support.process import serving
from tests.support.upstream import Upstream, spec_for

AUTH = ("Administrator", "test-secret")


def _eventually(check: object, within: float = 1.0) -> float:
    start = time.monotonic()
    while True:
        if check():  # type: ignore[operator]
            return time.monotonic() - start
        assert time.monotonic() - start < within, "change not in force in time"
        time.sleep(0.02)


def test_two_nodes_sharing_postgres(tmp_path: Path, upstream: Upstream, pg_database: str) -> None:
    asyncio.run(_pg_admin("DROP SCHEMA public CASCADE; CREATE SCHEMA public", pg_database))
    with serving(tmp_path / "a", pg_database) as port_a, serving(tmp_path / "b", pg_database) as port_b:
        admin_a = f"http://127.0.0.1:{port_a}/rest/apigateway"
        gw_b = f"http://127.0.0.1:{port_b}/gateway/Echo/1.0/echo"
        body = {"type": "openapi", "apiDefinition": spec_for(upstream.url)}
        created = httpx.post(f"{admin_a}/apis", auth=AUTH, json=body)
        api_id = created.json()["apiResponse"]["api"]["id"]
        assert httpx.get(gw_b).status_code == 404
        httpx.put(f"{admin_a}/apis/{api_id}/activate", auth=AUTH)
        _eventually(lambda: httpx.get(gw_b).status_code == 200)
        httpx.put(f"{admin_a}/apis/{api_id}/deactivate", auth=AUTH)
        _eventually(lambda: httpx.get(gw_b).status_code == 404)


def test_single_node_applies_changes_at_once(tmp_path: Path, upstream: Upstream) -> None:
    with serving(tmp_path / "a") as port:
        admin = f"http://127.0.0.1:{port}/rest/apigateway"
        gw = f"http://127.0.0.1:{port}/gateway/Echo/1.0/echo"
        body = {"type": "openapi", "apiDefinition": spec_for(upstream.url)}
        created = httpx.post(f"{admin}/apis", auth=AUTH, json=body)
        httpx.put(f"{admin}/apis/{created.json()['apiResponse']['api']['id']}/activate", auth=AUTH)
        _eventually(lambda: httpx.get(gw).status_code == 200, within=1.0)
