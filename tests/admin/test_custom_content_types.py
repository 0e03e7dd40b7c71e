"""GET|PUT /configurations/customContentTypes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.node import Node


async def test_put_and_get(node: Node) -> None:
    assert (await node.admin.get("/configurations/customContentTypes")).json() == {}
    mapping = {"application/myorg+json": "application/json", "Application/MyOrg+XML": "text/xml"}
    r = await node.admin.put("/configurations/customContentTypes", json=mapping)
    assert r.status_code == 200, r.text
    expected = {"application/myorg+json": "application/json", "application/myorg+xml": "text/xml"}
    assert r.json() == expected
    assert (await node.admin.get("/configurations/customContentTypes")).json() == expected
    # PUT replaces the whole mapping.
    r = await node.admin.put("/configurations/customContentTypes", json={"text/x-log": "text/plain"})
    assert (await node.admin.get("/configurations/customContentTypes")).json() == {"text/x-log": "text/plain"}


@pytest.mark.parametrize(("body", "detail"), [
    ({"application/x": "application/yaml"}, "base type must be one of"),
    ({"not a type": "application/json"}, "not a content type"),
    ({"application/json": "application/xml"}, "a base type cannot be mapped"),
    ({"application/x": 5}, "base type must be one of"),
    ([1, 2], "JSON object"),
])
async def test_bad_inputs_leave_the_mapping(sqlite_node: Node, body: Any, detail: str) -> None:
    node = sqlite_node
    await node.admin.put("/configurations/customContentTypes", json={"application/a+json": "application/json"})
    r = await node.admin.put("/configurations/customContentTypes", json=body)
    assert r.status_code == 400 and detail in r.json()["errorDetails"], r.text
    assert (await node.admin.get("/configurations/customContentTypes")).json() == {
        "application/a+json": "application/json"}
    r = await node.admin.put("/configurations/customContentTypes", content=b"{oops",
                             headers={"Content-Type": "application/json"})
    assert r.status_code == 400
