"""Who a management caller is and what they hold.

Privileges reach a user through teams (access profiles): a team lists member groups (``groupIds``,
as in the reference) and member users (``userIds``); a group lists its users (``userIds``). The
predefined teams ``Administrators``, ``API-Gateway-Administrators`` and ``API-Gateway-Providers``
have the group of the same name as member; every user is in the ``Default`` team."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from portico.security import privileges as priv
from portico.store import StoreTransaction
from portico.store.db import AssetRow

USER, GROUP, TEAM = "user", "group", "accessProfile"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    login_id: str
    groups: frozenset[str]
    teams: frozenset[str]
    privileges: frozenset[str]

    def holds(self, privilege: str) -> bool:
        return privilege in self.privileges


def _ids(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))


def team_members(team: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """(user ids, group ids) a team lists."""
    return _ids(team.get("userIds")), _ids(team.get("groupIds"))


def resolve(user_id: str, login_id: str, groups: Iterable[AssetRow], teams: Iterable[AssetRow]) -> Principal:
    group_ids = frozenset(g.id for g in groups if user_id in _ids(g.body.get("userIds")))
    team_ids: set[str] = set()
    held: set[str] = set()
    for team in teams:
        users, team_groups = team_members(team.body)
        if team.id == priv.DEFAULT_TEAM or user_id in users or team_groups & group_ids:
            team_ids.add(team.id)
            bits = team.body.get("privilege")
            if isinstance(bits, str):
                held |= priv.from_bits(bits)
    return Principal(user_id, login_id, group_ids, frozenset(team_ids), frozenset(held))


async def load_principal(tx: StoreTransaction, user: AssetRow) -> Principal:
    login = user.body.get("loginId")
    return resolve(user.id, login if isinstance(login, str) else user.id, await tx.list(GROUP), await tx.list(TEAM))


async def seed_predefined(tx: StoreTransaction, admin_user_id: str) -> None:
    """Create the predefined groups and teams that are missing (first start, or an older store)."""
    for name, held in priv.PREDEFINED_GROUPS.items():
        if await tx.get(GROUP, name) is None:
            members = [admin_user_id] if name != priv.PROVIDERS else []
            await tx.insert(GROUP, name, {"id": name, "name": name, "description": f"Predefined group {name}",
                                          "userIds": members, "predefined": True}, name=name)
        if await tx.get(TEAM, name) is None:
            await tx.insert(TEAM, name, {"id": name, "name": name, "description": f"Predefined team {name}",
                                         "privilege": priv.to_bits(held), "groupIds": [name], "userIds": [],
                                         "predefined": True}, name=name)
    if await tx.get(TEAM, priv.DEFAULT_TEAM) is None:
        await tx.insert(TEAM, priv.DEFAULT_TEAM, {
            "id": priv.DEFAULT_TEAM, "name": priv.DEFAULT_TEAM,
            "description": "Every user is a member; assets present when teams were enabled belong to it",
            "privilege": priv.to_bits(()), "groupIds": [], "userIds": [], "predefined": True,
        }, name=priv.DEFAULT_TEAM)
