"""Random bodies against every write endpoint of the management API's own OpenAPI document:
never a 500, always an ``errorDetails`` on a 4xx (seeded, so failures reproduce; PORTICO_FUZZ_SEED and
PORTICO_FUZZ_ROUNDS explore further)."""

from __future__ import annotations

import os
import random
from typing import Any

from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for

KEYS = ["name", "apiName", "apiVersion", "type", "url", "apiDefinition", "apiIDs", "identifiers", "isSuspended",
        "policyEnforcements", "templateKey", "parameters", "preferredSettings", "extendedKeys", "newApiVersion",
        "retainApplications", "sendNativeProviderFault", "policyAction", "policy", "values", "key", "value"]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, 3.5, 1e308])
    if kind == 3:
        return rng.choice(["", "x", "true", "openapi", "http://127.0.0.1:1/x", "${sys:resource_path}", "\u0000",
                           "a" * 5000])
    if kind == 4:
        return rng.choice(KEYS)
    if kind in (5, 6):
        return {rng.choice(KEYS): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]


async def test_random_bodies_never_500(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url), activate=False)
    app = (await node.admin.post("/applications", json={"name": "fuzz"})).json()
    ids = {"apiId": api["id"], "applicationId": app["id"], "policyId": api["policies"][0],
           "policyActionId": "unknown", "templateKey": "evaluatePolicy"}
    doc = (await node.admin.get("/openapi.json")).json()
    rng = random.Random(int(os.environ.get("PORTICO_FUZZ_SEED", "20261122")))
    for path, item in doc["paths"].items():
        for method in item:
            if method not in ("post", "put", "patch"):
                continue
            url = path
            for key, value in ids.items():
                url = url.replace("{" + key + "}", value)
            for _ in range(int(os.environ.get("PORTICO_FUZZ_ROUNDS", "25"))):
                body = random_json(rng)
                r = await node.admin.request(method.upper(), url, json=body)
                assert r.status_code < 500, f"{method.upper()} {url} {body!r:.300} -> {r.status_code} {r.text[:300]}"
                if r.status_code >= 400:
                    assert "errorDetails" in r.json(), f"{method.upper()} {url} -> {r.text[:200]}"
    # Whatever the fuzzing did, the API it started from still works through the management API.
    assert (await node.admin.get(f"/apis/{api['id']}")).status_code in (200, 404)
