"""``defaultScope`` records for the APIs that got a default scope before the record existed.

``admin/scopes.create_default_scope`` (``pg_oauth2_createDefaultScopes``) now notes what it made for
an API (kind ``defaultScope``, id = the API's id), and ``forget_api`` undoes only that when the API
is deleted. APIs given their scope earlier have no record, so deleting them left their scope on the
``local`` server, for a later API of the same name to take over. This backfills the record where the
default mapping is still there as create_default_scope made it: a ``scopeMapping`` whose
``apiScopes`` is exactly ``[api id]`` and whose ``requiredAuthScopes`` is one scope of ``local``,
named as create_default_scope names it (``<apiName>_<apiVersion>`` normalised, or that with the
start of the API's id when the plain name was taken). ``addedToLocal`` is true only if ``local``
lists that scope with the description create_default_scope gives it: a scope the user had made
under that name (another description) is not removed with the API. A data migration only (JSON
bodies read and written through SQLAlchemy, so SQLite and PostgreSQL alike); the naming is copied
here so that a later change to create_default_scope does not change what this revision does.

Revision ID: 0009
Revises: 0008
"""

import re
import time
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

LOCAL_ID = "local"
DEFAULT_KIND = "defaultScope"

assets = sa.table(
    "assets",
    sa.column("kind", sa.String),
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("version", sa.String),
    sa.column("body", sa.JSON),
    sa.column("revision", sa.Integer),
    sa.column("created_at", sa.BigInteger),
    sa.column("updated_at", sa.BigInteger),
)


def default_names(api_id: str, api_name: str, api_version: str) -> tuple[str, str]:
    """The names create_default_scope gives an API's scope: plain, and when that was taken."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{api_name}_{api_version}").strip("_") or api_id
    return name, f"{name}_{api_id[:8]}"


def default_scope_of(api_id: str, body: dict[str, Any], mappings: list[dict[str, Any]]) -> str | None:
    """The local scope of ``api_id``'s default mapping, if one is there as it was made."""
    names = default_names(api_id, str(body.get("apiName") or ""), str(body.get("apiVersion") or ""))
    for mapping in mappings:
        required = mapping.get("requiredAuthScopes")
        if mapping.get("apiScopes") != [api_id] or not isinstance(required, list) or len(required) != 1:
            continue
        entry = required[0]
        if isinstance(entry, dict) and entry.get("authServerAlias") == LOCAL_ID and entry.get("scopeName") in names:
            return str(entry["scopeName"])
    return None


def _bodies(conn: sa.Connection, kind: str) -> list[tuple[str, Any]]:
    rows = conn.execute(sa.select(assets.c.id, assets.c.body).where(assets.c.kind == kind)).all()
    return [(r.id, r.body) for r in rows]


def upgrade() -> None:
    conn = op.get_bind()
    recorded = {api_id for api_id, _ in _bodies(conn, DEFAULT_KIND)}
    mappings = [b for _, b in _bodies(conn, "scopeMapping") if isinstance(b, dict)]
    local = conn.execute(sa.select(assets.c.body).where(
        sa.and_(assets.c.kind == "alias", assets.c.id == LOCAL_ID))).scalar()
    local_scopes = {s.get("name"): s.get("description") for s in (local or {}).get("scopes") or ()
                    if isinstance(s, dict)}
    now = int(time.time() * 1000)
    for api_id, body in _bodies(conn, "api"):
        if api_id in recorded or not isinstance(body, dict):
            continue
        scope = default_scope_of(api_id, body, mappings)
        if scope is None:
            continue
        made_here = f"Default scope of API {body.get('apiName')} {body.get('apiVersion')}"
        conn.execute(sa.insert(assets).values(
            kind=DEFAULT_KIND, id=api_id, name=None, version=None, revision=1, created_at=now, updated_at=now,
            body={"scopeName": scope, "addedToLocal": local_scopes.get(scope, None) == made_here}))


def downgrade() -> None:
    # revision 0008's code reads the records as well; the backfilled ones cannot be told apart
    pass
