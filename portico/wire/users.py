"""The reference's JSON shapes of users and groups (APIGatewayUserManagementSwagger.json)."""

from __future__ import annotations

from typing import Any

from portico.domain.users import MASK, is_predefined, login_of
from portico.store.db import AssetRow


def user_wire(row: AssetRow) -> dict[str, Any]:
    """The reference's shape of one user; the password is always masked."""
    body = row.body
    return {
        "id": row.id,
        "loginId": login_of(row),
        "firstName": body.get("firstName", ""),
        "lastName": body.get("lastName", ""),
        "password": MASK,
        "type": "local",
        "allowDigestAuth": bool(body.get("allowDigestAuth", False)),
        "active": bool(body.get("active", True)),
        "systemDefined": is_predefined(row),
        "language": body.get("language", "en"),
        "emailAddresses": list(body.get("emailAddresses", [])),
    }


def group_wire(row: AssetRow) -> dict[str, Any]:
    body = row.body
    return {
        "id": row.id,
        "name": body.get("name", row.id),
        "description": body.get("description", ""),
        "type": "local",
        "systemDefined": bool(body.get("predefined", False)),
        "userIds": list(body.get("userIds", [])),
    }
