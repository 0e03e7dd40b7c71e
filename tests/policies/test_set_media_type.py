"""setMediaType: defaults for requests without Content-Type / Accept, kept when present."""

from __future__ import annotations

from tests.gateway.test_runtime import add_action
from tests.policies.payload_support import bad_action, echo_spec, wire
from tests.support.node import Node
from tests.support.upstream import Upstream


async def test_defaults_only_when_absent(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    await add_action(node, api, "setMediaType", "transport",
                     wire({"defaultContentType": "application/json", "defaultAccept": "application/xml"}))
    bare = await node.gw.post("/Echo/1.0/echo", content=b"{}", headers={"Accept": ""})
    seen = bare.json()["headers"]
    assert seen["content-type"] == "application/json" and seen["accept"] == "application/xml"
    own = await node.gw.post("/Echo/1.0/echo", content=b"x", headers={"Content-Type": "text/plain",
                                                                      "Accept": "text/csv"})
    assert own.json()["headers"]["content-type"] == "text/plain" and own.json()["headers"]["accept"] == "text/csv"


async def test_config_validation(sqlite_node: Node) -> None:
    bad_type = await bad_action(sqlite_node, "setMediaType", wire({"defaultContentType": "json"}))
    assert bad_type.startswith("setMediaType: parameter 'defaultContentType'") and "not a media type" in bad_type
    bad_accept = await bad_action(sqlite_node, "setMediaType", wire({"defaultAccept": "text/html, nope"}))
    assert bad_accept.startswith("setMediaType: parameter 'defaultAccept'")
    empty = await bad_action(sqlite_node, "setMediaType", [])
    assert "defaultContentType or defaultAccept is required" in empty
