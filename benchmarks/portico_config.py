"""Configure Portico for a benchmark scenario through its management REST API.

Everything that depends on the shape of Portico's (webMethods API Gateway-compatible) management
API is in this module; `configure_api` is the one entry point `run.py` calls.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from load import probe

UPSTREAM = "http://127.0.0.1:9000"
RESOURCE = "/json"
KEY_HEADER = "x-Gateway-APIKey"
ADMIN_WORKERS = 4  # concurrent management calls while registering applications
SERVER_ERROR_TRIES = 4
RETRIED: list[str] = []  # management calls that got a 5xx and were tried again


class AdminError(RuntimeError):
    pass


@dataclass(frozen=True)
class Admin:
    """Minimal JSON client for /rest/apigateway with HTTP basic auth."""

    base_url: str
    password: str
    user: str = "Administrator"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON call; a 5xx is retried a few times (a server still busy with concurrent
        writes, e.g. SQLite's "database is locked"), and each retry is counted in RETRIED."""
        for attempt in range(1, SERVER_ERROR_TRIES + 1):
            try:
                return self.call_once(method, path, body)
            except urllib.error.HTTPError as error:
                detail = error.read().decode(errors="replace")[:500]
                if error.code < 500 or attempt == SERVER_ERROR_TRIES:
                    raise AdminError(f"{method} {path} -> {error.code}: {detail}") from error
                RETRIED.append(f"{method} {path} -> {error.code}: {detail}")
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    def call_once(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}/rest/apigateway{path}", data, method=method)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else {}


@dataclass(frozen=True)
class PorticoApi:
    """A configured API: where to call it and, if it requires a key, the application keys."""

    api_id: str
    url: str
    keys: list[str]


def openapi_document(name: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.1",
        "info": {"title": name, "version": "1.0"},
        "servers": [{"url": UPSTREAM}],
        "paths": {RESOURCE: {"get": {"responses": {"200": {"description": "static JSON"}}}}},
    }


def create_api(admin: Admin, name: str) -> tuple[str, str]:
    """POST /apis; returns (api id, policy id)."""
    body = {"apiName": name, "apiVersion": "1.0", "type": "openapi", "apiDefinition": openapi_document(name)}
    api = admin.call("POST", "/apis", body)["apiResponse"]["api"]
    return str(api["id"]), str(api["policies"][0])


IDENTIFY_ACTION = {
    "policyAction": {
        "names": [{"value": "Identify", "locale": "English"}],
        "templateKey": "evaluatePolicy",
        "parameters": [
            {"templateKey": "logicalConnector", "values": ["OR"]},
            {"templateKey": "allowAnonymous", "values": ["false"]},
            {
                "templateKey": "IdentificationRule",
                "parameters": [
                    {"templateKey": "applicationLookup", "values": ["strict"]},
                    {"templateKey": "identificationType", "values": ["apiKey"]},
                ],
            },
        ],
    }
}


def require_api_key(admin: Admin, policy_id: str) -> None:
    """Add an evaluatePolicy (API key, strict lookup) action to the IAM stage of the API's policy."""
    action_id = str(admin.call("POST", "/policyActions", IDENTIFY_ACTION)["policyAction"]["id"])
    policy = admin.call("GET", f"/policies/{policy_id}")["policy"]
    stages = [s for s in policy.get("policyEnforcements", []) if s.get("stageKey") != "IAM"]
    iam = next((s for s in policy.get("policyEnforcements", []) if s.get("stageKey") == "IAM"), None)
    enforcements = list(iam["enforcements"]) if iam else []
    enforcements.append({"enforcementObjectId": action_id, "order": str(len(enforcements))})
    policy["policyEnforcements"] = [*stages, {"stageKey": "IAM", "enforcements": enforcements}]
    admin.call("PUT", f"/policies/{policy_id}", {"policy": policy})


def find_application(body: Any) -> dict[str, Any]:
    """The application object in a response, wherever it is wrapped."""
    if isinstance(body, dict):
        if "accessTokens" in body:
            return body
        children = list(body.values())
    elif isinstance(body, list):
        children = body
    else:
        children = []
    for child in children:
        if isinstance(child, dict | list):
            try:
                return find_application(child)
            except AdminError:
                continue
    raise AdminError(f"no application with accessTokens in {str(body)[:300]}")


def application_key(app: dict[str, Any]) -> str:
    tokens = app["accessTokens"]
    for holder in ("apiAccessKey_credentials", "apiAccessKey"):
        value = tokens.get(holder)
        if isinstance(value, dict) and value.get("apiAccessKey"):
            return str(value["apiAccessKey"])
    raise AdminError(f"no API key in accessTokens {tokens}")


def create_application(admin: Admin, api_id: str, number: int) -> str:
    """POST /applications + PUT /applications/{id}/apis; returns the generated API key."""
    body = {"name": f"app-{number:04d}", "description": "", "version": "1.0"}
    app = find_application(admin.call("POST", "/applications", body))
    admin.call("PUT", f"/applications/{app['id']}/apis", {"apiIDs": [api_id]})
    return application_key(app)


def wait_routable(url: str, header: str | None, key: str | None, timeout: float = 30.0) -> None:
    """Wait until the gateway serves the API (snapshots may be rebuilt asynchronously)."""
    deadline = time.monotonic() + timeout
    while (status := probe(url, header, key)) != 200:
        if time.monotonic() > deadline:
            raise AdminError(f"{url} still answers {status} {timeout:.0f} s after configuration")
        time.sleep(0.2)


def configure_api(admin: Admin, name: str, apps: int = 0) -> PorticoApi:
    """Create and activate API `name` proxying UPSTREAM; with apps > 0, require an API key and
    register that many applications to it. Returns the gateway URL and the generated keys."""
    api_id, policy_id = create_api(admin, name)
    if apps:
        require_api_key(admin, policy_id)
    admin.call("PUT", f"/apis/{api_id}/activate")
    with ThreadPoolExecutor(max_workers=ADMIN_WORKERS) as pool:
        keys = list(pool.map(lambda n: create_application(admin, api_id, n), range(1, apps + 1)))
    url = f"{admin.base_url}/gateway/{name}/1.0{RESOURCE}"
    wait_routable(url, KEY_HEADER if keys else None, keys[-1] if keys else None)
    return PorticoApi(api_id, url, keys)
