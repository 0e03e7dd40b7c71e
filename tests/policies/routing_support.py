"""Helpers for the routing-policy tests: parameter groups and config-validation checks."""

from __future__ import annotations

from typing import Any

from tests.support.node import Node


def values(**fields: Any) -> list[dict[str, Any]]:
    """``{templateKey, values}`` parameters from keyword arguments (lists kept as lists)."""
    return [{"templateKey": k, "values": v if isinstance(v, list) else [v]} for k, v in fields.items()]


def group(key: str, *parameters: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    flat: list[dict[str, Any]] = []
    for p in parameters:
        flat.extend(p if isinstance(p, list) else [p])
    return {"templateKey": key, "parameters": flat}


def route_to(uri: str, key: str = "routeTo", **fields: Any) -> dict[str, Any]:
    return group(key, values(endpointUri=uri, **fields))


async def assert_rejected(node: Node, template: str, parameters: list[Any], field: str) -> None:
    r = await node.admin.post("/policyActions", json={"policyAction": {
        "names": [{"value": template, "locale": "English"}], "templateKey": template, "parameters": parameters}})
    assert r.status_code == 400, r.text
    detail = r.json()["errorDetails"]
    assert template in detail and field in detail, detail
