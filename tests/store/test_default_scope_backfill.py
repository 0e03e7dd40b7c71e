"""Migration 0009: APIs given a default scope (``pg_oauth2_createDefaultScopes``) before the
``defaultScope`` record existed get one, so deleting them removes the scope they added to ``local``
and nothing the user made. Run on both backends, through real nodes on the same database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import delete, func, select

from portico.store import Store
from portico.store.migrate import alembic_config
from portico.store.tables import assets
from tests.policies.test_token_scopes import _default_scopes_on, _delete_api, _local_scopes, set_local_scopes
from tests.support.node import running_node
from tests.support.upstream import spec_for

UPSTREAM = "http://127.0.0.1:9"


async def _to_0008_without_records(db_url: str, keep: str) -> None:
    """The database as revision 0008 left it for APIs made before the records (all but ``keep``'s)."""
    store = Store(db_url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(delete(assets).where(assets.c.kind == "defaultScope", assets.c.id != keep))
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0008"))
            count = select(func.count()).select_from(assets).where(assets.c.kind == "defaultScope")
            assert (await conn.execute(count)).scalar_one() == 1
    finally:
        await store.close()


async def test_0009_backfills_default_scope_records(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_node(db_url, data) as node:
        await set_local_scopes(node, "Shared_1.0")  # the user's, before the API named like it
        await _default_scopes_on(node)
        echo = await node.create_api(spec_for(UPSTREAM))
        shared = await node.create_api(spec_for(UPSTREAM, title="Shared"))
        recorded = await node.create_api(spec_for(UPSTREAM, title="Recorded"))
        edited = await node.create_api(spec_for(UPSTREAM, title="Edited"))
        mapping = next(m for m in (await node.admin.get("/scopes")).json()["scopes"]
                       if m["apiScopes"] == [edited["id"]])
        # the user made the default mapping their own: not the default one any more
        r = await node.admin.put(f"/scopes/{mapping['id']}", json={
            **mapping, "apiScopes": [edited["id"], recorded["id"]]})
        assert r.status_code == 200, r.text
        assert await _local_scopes(node) == ["Shared_1.0", "Echo_1.0", "Recorded_1.0", "Edited_1.0"]
    await _to_0008_without_records(db_url, keep=recorded["id"])
    async with running_node(db_url, data) as node:  # migrates to head at start
        for api in (echo, shared, recorded, edited):
            await _delete_api(node, api["id"])
        # Echo's and Recorded's went with them; Shared_1.0 was the user's; Edited's mapping was changed
        assert await _local_scopes(node) == ["Shared_1.0", "Edited_1.0"]
