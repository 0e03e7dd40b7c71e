"""Snapshot part: the groups and teams (access profiles) of each active Portico user, for
``authorizeUser``: ``snap.extras["userGroups"][loginId] = (groups, accessProfiles)``.

Membership is read from the group assets (``userIds``) and team assets (``userIds``,
``groupIds``), resolved as for management requests (:func:`portico.security.principal.resolve`).
Each set holds both the ids and the names of the groups/teams, so a policy may list either."""

from __future__ import annotations

from portico.gateway.snapshot import Snapshot, snapshot_part
from portico.policies.authorize_user import USER_GROUPS
from portico.security.principal import GROUP, TEAM, USER, resolve
from portico.store import StoreTransaction
from portico.store.db import AssetRow


def _labels(ids: frozenset[str], rows: dict[str, AssetRow]) -> frozenset[str]:
    names = {rows[i].body.get("name") for i in ids if i in rows}
    return ids | frozenset(n for n in names if isinstance(n, str))


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    groups = await tx.list(GROUP)
    teams = await tx.list(TEAM)
    group_rows = {g.id: g for g in groups}
    team_rows = {t.id: t for t in teams}
    index: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for row in await tx.list(USER):
        login = row.body.get("loginId")
        if isinstance(login, str) and row.body.get("active", True):
            principal = resolve(row.id, login, groups, teams)
            index[login] = (_labels(principal.groups, group_rows), _labels(principal.teams, team_rows))
    snap.extras[USER_GROUPS] = index
