"""``portico agent`` as a separate process configured by environment variables, against
``portico serve`` as a separate process (uvloop, the real listener) and moto."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from tests.federation.support import agent_env
from tests.support.aws import apigw, make_api, make_usage_plan
from tests.support.keystores import keystore_fixtures
from tests.support.process import free_port, serving, spawn


class _Served:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"


def _wait(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_agent_process_links_discovers_and_ingests(tmp_path: Path, fresh: str) -> None:
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    with serving(tmp_path / "data") as port:
        admin = httpx.Client(base_url=f"http://127.0.0.1:{port}/rest/apigateway", auth=("Administrator", "test-secret"),
                             timeout=30)
        iid = admin.post("/integrations", json={"name": "aws", "provider": "aws-api-gateway"}).json()["id"]
        token = admin.post("/users/Administrator/tokens", json={"name": "agent"}).json()["token"]
        health_port = free_port()
        env = agent_env(_Served(port), iid, token, fresh)  # type: ignore[arg-type]
        env.update({"gravitee_services_core_http_enabled": "true", "gravitee_services_core_http_port": str(health_port),
                    "gravitee_services_core_http_host": "127.0.0.1"})
        env["gravitee_integration_connector_ws_endpoints_0"] = f"http://127.0.0.1:{port}/integration-controller"
        agent = spawn(["agent"], env)
        try:
            def status() -> str:
                return str(admin.get(f"/integrations/{iid}").json()["status"]["agentStatus"])

            _wait(lambda: status() == "CONNECTED")
            local = httpx.get(f"http://127.0.0.1:{health_port}/health", timeout=5).json()
            assert local["links"][0]["status"] == "CONNECTED" and local["links"][0]["primary"]
            found = admin.post(f"/integrations/{iid}/discover").json()
            assert [a["name"] for a in found["apis"]] == ["Orders"]
            job = admin.post(f"/integrations/{iid}/ingest").json()
            assert job["status"] == "SUCCEEDED" and job["created"] == 1
            r = httpx.get(f"http://127.0.0.1:{port}/gateway/Orders/prod/items")
            assert r.status_code == 404 and "execute-api.eu-west-1.amazonaws.com/prod" in r.text
        finally:
            agent.terminate()
            agent.wait(timeout=10)
        _wait(lambda: status() == "DISCONNECTED", timeout=10)


def test_malformed_environment_stops_the_agent_naming_the_setting(fresh: str) -> None:
    base = agent_env(_Served(1), "int-1", "ptk_x", fresh)  # type: ignore[arg-type]
    cases = {
        "gravitee_integration_providers_0_integrationId": None,
        "gravitee_integration_providers_0_type": "azure-api-management",
        "gravitee_integration_connector_ws_endpoints_0": "ftp://host/integration-controller",
    }
    for name, value in cases.items():
        env = {k: v for k, v in base.items() if k != name}
        if value is not None:
            env[name] = value
        proc = spawn(["agent"], env)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 2, out
        assert name in out, out


def test_a_bad_truststore_stops_the_agent_at_start(fresh: str, tmp_path: Path) -> None:
    fx = keystore_fixtures()
    ts = "gravitee_integration_connector_ws_ssl_truststore"
    env = agent_env(_Served(1), "int-1", "ptk_x", fresh)  # type: ignore[arg-type]
    env["gravitee_integration_connector_ws_endpoints_0"] = "https://127.0.0.1:1/integration-controller"
    (tmp_path / "bad.pem").write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    for extra, named in (({f"{ts}_type": "JKS", f"{ts}_path": str(fx.path("trust.jks")), f"{ts}_password": "nope"},
                          f"{ts}_password"),
                         ({f"{ts}_type": "PEM", f"{ts}_path": str(tmp_path / "bad.pem")}, f"{ts}_path")):
        proc = spawn(["agent"], {**env, **extra})
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 2, out
        assert named in out and "Traceback" not in out, out
