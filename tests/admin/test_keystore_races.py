"""A store in use is never deleted or replaced under a user written at the same moment: two nodes on
one database (SQLite file or PostgreSQL) race a delete (or a replacement) of a store against a
write that starts using it, many times, and afterwards no stored configuration names a store that
is gone, or a key alias the store no longer holds."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.admin.test_keystores import pem_trust, upload
from tests.policies.test_routing_ssl_config import client_keys, straight
from tests.support.keystores import P12_PASS, Fixtures, keystore_fixtures
from tests.support.node import Node, running_node

ROUNDS = 12


@pytest.fixture(scope="module")
def fx() -> Fixtures:
    return keystore_fixtures()


@pytest.fixture
async def nodes(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Node, Node]]:
    monkeypatch.setenv("PORTICO_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())  # nodes of one store
    async with running_node(db_url, tmp_path / "a") as a, running_node(db_url, tmp_path / "b") as b:
        yield a, b


def _action(**ssl: str) -> dict[str, Any]:
    return {"policyAction": {"names": [{"value": "r", "locale": "English"}], "templateKey": "straightThroughRouting",
                             "parameters": straight("https://127.0.0.1:9", **ssl)}}


def _ok(r: httpx.Response) -> bool:
    assert r.status_code in (200, 201, 400), r.text  # a lost race is a 400 naming the store, never a 500
    return r.status_code != 400


async def test_delete_and_a_new_user_never_both_win(nodes: tuple[Node, Node], fx: Fixtures) -> None:
    a, b = nodes
    for i in range(ROUNDS):
        keys, trust = f"Keys{i}", f"CAs{i}"
        await client_keys(a, fx, keys)
        await pem_trust(a, fx, trust)
        deleted, used = await asyncio.gather(  # a routing action's sslConfig
            a.admin.delete(f"/is/keystore/{keys}"),
            b.admin.post("/policyActions", json=_action(keyStoreAlias=keys, keyAlias="client")))
        assert not (_ok(deleted) and _ok(used)), f"round {i}: keystore deleted under a new routing action"
        deleted, used = await asyncio.gather(  # an endpoint alias
            a.admin.delete(f"/is/truststore/{trust}"),
            b.admin.post("/alias", json={"name": f"backend{i}", "type": "endpoint",
                                         "endPointURI": "https://127.0.0.1:9/", "truststoreAlias": trust}))
        assert not (_ok(deleted) and _ok(used)), f"round {i}: truststore deleted under a new endpoint alias"
        if _ok(used):
            await b.admin.delete(f"/alias/{used.json()['alias']['id']}")
        await pem_trust(a, fx, f"ServerCAs{i}")
        deleted, used = await asyncio.gather(  # an authorization server's sslConfig
            a.admin.delete(f"/is/truststore/ServerCAs{i}"),
            b.admin.post("/alias", json={
                "name": f"ext{i}", "type": "authServerAlias", "authServerType": "EXTERNAL",
                "localIntrospectionConfig": {"issuer": f"https://issuer{i}.test", "jwksuri": "https://127.0.0.1:9/jwks"},
                "sslConfig": {"trustStoreAlias": f"ServerCAs{i}"}}))
        assert not (_ok(deleted) and _ok(used)), f"round {i}: truststore deleted under a new authorization server"
        await pem_trust(a, fx, f"Defaults{i}")
        deleted, used = await asyncio.gather(  # the defaults document
            a.admin.delete(f"/is/truststore/Defaults{i}"),
            b.admin.put("/configurations/keystore", json={"outboundTruststoreName": f"Defaults{i}"}))
        assert not (_ok(deleted) and _ok(used)), f"round {i}: truststore deleted under the new defaults"
        await b.admin.put("/configurations/keystore", json={"outboundTruststoreName": None})
    # the invariant, read back: every store a stored configuration names exists
    actions = (await a.admin.get("/policyActions")).json()["policyAction"]
    named = {p["values"][0] for act in actions for param in act["parameters"] if param["templateKey"] == "sslConfig"
             for p in param["parameters"] if p["templateKey"] == "keyStoreAlias"}
    stores = {k["keyStoreName"] for k in (await a.admin.get("/is/keystore")).json()["keystores"]}
    assert named <= stores


async def test_replacement_and_a_new_user_of_the_key_never_both_win(nodes: tuple[Node, Node], fx: Fixtures) -> None:
    """Replacing a keystore by a file without the key alias a new routing action names."""
    a, b = nodes
    for i in range(ROUNDS):
        keys = f"Keys{i}"
        await client_keys(a, fx, keys)
        replaced, used = await asyncio.gather(
            upload(a, "keystore", "", fx.read("server.p12"), path=f"/is/keystore/{keys}", keyStoreType="PKCS12",
                   keyStorePassword=P12_PASS, pkAliasesList="server", pkPasswordsList=P12_PASS),
            b.admin.post("/policyActions", json=_action(keyStoreAlias=keys, keyAlias="client")))
        assert not (_ok(replaced) and _ok(used)), f"round {i}: key alias replaced away under a new routing action"
        stored = (await a.admin.get(f"/is/keystore/{keys}")).json()["keystores"][0]
        assert _ok(replaced) == (stored["keyAliases"] == ["server"])
