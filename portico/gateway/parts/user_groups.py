"""Snapshot part: the groups and teams (access profiles) of each active Portico user, for
``authorizeUser``: ``snap.extras["userGroups"][loginId] = (groups, accessProfiles)``.

Portico has no group management yet: a user asset (kind ``user``) may carry ``groups`` and
``accessProfiles`` lists of names; the users issue brings the ``/groups`` and
``/accessProfiles`` resources that maintain them."""

from __future__ import annotations

from typing import Any

from portico.gateway.snapshot import Snapshot, snapshot_part
from portico.policies.authorize_user import USER_GROUPS
from portico.store import StoreTransaction


def _names(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    index: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for row in await tx.list("user"):
        body = row.body
        login = body.get("loginId")
        if isinstance(login, str) and body.get("active", True):
            index[login] = (_names(body.get("groups")), _names(body.get("accessProfiles")))
    snap.extras[USER_GROUPS] = index
