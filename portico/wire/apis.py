"""API <-> ``{"apiResponse": ...}`` shapes."""

from __future__ import annotations

from typing import Any

from portico.domain.api import Api
from portico.wire.common import gmt


def api_body(api: Api) -> dict[str, Any]:
    body = api.model_dump(mode="json", exclude={"creationDate", "lastModified", "sourceFormat"})
    body["creationDate"] = gmt(api.creationDate)
    body["lastModified"] = gmt(api.lastModified)
    body["gatewayEndpoints"] = {}
    body["publishedPortals"] = []
    return body


def versions_list(versions: list[Api]) -> list[dict[str, str]]:
    return [{"versionNumber": v.apiVersion, "apiId": v.id} for v in versions]


def api_response(api: Api, versions: list[Api] | None = None) -> dict[str, Any]:
    inner: dict[str, Any] = {"api": api_body(api), "responseStatus": "SUCCESS"}
    if versions is not None:
        inner["versions"] = versions_list(versions)
    return {"apiResponse": inner}


def api_list(apis: list[Api]) -> dict[str, Any]:
    return {"apiResponse": [{"api": api_body(a), "responseStatus": "SUCCESS"} for a in apis]}
