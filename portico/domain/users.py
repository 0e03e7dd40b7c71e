"""Local users and groups: the stored bodies and the checks on what a client sends.

A user asset (kind ``user``, row name = login id) stores ``id``, ``loginId``, ``firstName``,
``lastName``, ``type`` (``local``), ``allowDigestAuth``, ``language``, ``emailAddresses``,
``active``, ``passwordHash``, ``passwordChanged`` (epoch ms), ``passwordHistory`` (earlier hashes,
newest first) and ``created``. Group membership lives on the group (``userIds``), team membership
on the team: see :mod:`portico.security.principal`."""

from __future__ import annotations

from typing import Any

from portico.store.db import AssetRow

ADMINISTRATOR = "Administrator"      # the user created on first start (portico.app.seed_administrator)
MASK = "*" * 32                      # what the reference shows in place of a password
LOGIN_MARKER = "userLogin"           # kind of the rows that keep login ids unique (id = login id)
HISTORY_KEEP = 12                    # the reference's largest historyLength

_USER_TEXT = {"firstName": 256, "lastName": 256, "language": 32}
_USER_FIELDS = {"loginId", "password", "type", "allowDigestAuth", "emailAddresses", "active", *_USER_TEXT}
_READ_ONLY = {"id", "systemDefined"}
_GROUP_FIELDS = {"name", "description", "userIds"}


class UserInputError(ValueError):
    """A user or group body that does not fit; the message names the field."""


def is_predefined(row: AssetRow) -> bool:
    return row.id == ADMINISTRATOR or bool(row.body.get("predefined"))


def login_of(row: AssetRow) -> str:
    login = row.body.get("loginId")
    return login if isinstance(login, str) else row.id


def check_login_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserInputError("field 'loginId' is required and must be a non-empty string")
    if len(value) > 128:
        raise UserInputError("field 'loginId' must be at most 128 characters")
    if value != value.strip() or ":" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise UserInputError("field 'loginId' must not contain ':', control characters or surrounding spaces")
    return value


def new_password(data: dict[str, Any]) -> str | None:
    """The password ``data`` sets: None when absent or the reference's mask (unchanged)."""
    value = data.get("password")
    if value is None or (isinstance(value, str) and value and set(value) == {"*"}):
        return None
    if not isinstance(value, str) or not value:
        raise UserInputError("field 'password' must be a non-empty string")
    if len(value) > 1024:
        raise UserInputError("field 'password' must be at most 1024 characters")
    return value


def user_fields(data: dict[str, Any], creating: bool) -> dict[str, Any]:
    """The stored fields that ``data`` sets (password excluded: see :func:`new_password`)."""
    unknown = sorted(set(data) - _USER_FIELDS - _READ_ONLY)
    if unknown:
        raise UserInputError(f"unexpected field(s) {unknown}; a user has {sorted(_USER_FIELDS)}")
    out: dict[str, Any] = {}
    if creating or "loginId" in data:
        out["loginId"] = check_login_id(data.get("loginId"))
    for key, limit in _USER_TEXT.items():
        if key in data and data[key] is not None:
            if not isinstance(data[key], str) or len(data[key]) > limit:
                raise UserInputError(f"field '{key}' must be a string of at most {limit} characters")
            out[key] = data[key]
    for key in ("allowDigestAuth", "active"):
        if key in data and data[key] is not None:
            if not isinstance(data[key], bool):
                raise UserInputError(f"field '{key}' must be true or false")
            out[key] = data[key]
    if "type" in data and data["type"] is not None and data["type"] != "local":
        raise UserInputError(f"field 'type': only 'local' users are supported, got {data['type']!r}")
    if "emailAddresses" in data and data["emailAddresses"] is not None:
        emails = data["emailAddresses"]
        if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e and len(e) <= 320
                                                   for e in emails):
            raise UserInputError("field 'emailAddresses' must be a list of e-mail addresses")
        out["emailAddresses"] = emails
    return out


def group_fields(data: dict[str, Any], creating: bool) -> dict[str, Any]:
    """The stored fields ``data`` sets; ``userIds`` are returned as given (resolved by the caller)."""
    unknown = sorted(set(data) - _GROUP_FIELDS - _READ_ONLY - {"type"})
    if unknown:
        raise UserInputError(f"unexpected field(s) {unknown}; a group has {sorted(_GROUP_FIELDS)}")
    if "type" in data and data["type"] not in (None, "local"):
        raise UserInputError(f"field 'type': only 'local' groups are supported, got {data['type']!r}")
    out: dict[str, Any] = {}
    if creating or "name" in data:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise UserInputError("field 'name' is required and must be a non-empty string of at most 256 characters")
        out["name"] = name
    if "description" in data and data["description"] is not None:
        if not isinstance(data["description"], str) or len(data["description"]) > 4096:
            raise UserInputError("field 'description' must be a string of at most 4096 characters")
        out["description"] = data["description"]
    if "userIds" in data and data["userIds"] is not None:
        ids = data["userIds"]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise UserInputError("field 'userIds' must be a list of user ids")
        out["userIds"] = ids
    return out
