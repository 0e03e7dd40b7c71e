"""Snapshot part: applications by id and by their ``jwtClaims`` identifiers (issue 5), as
``snap.extras["jwtClaims"]``, for the token rules of ``evaluatePolicy``
(``policies/_identify/tokens.py``).

A ``jwtClaims`` identifier value is a JSON object as a string (``{"sub": "abc", "tenant": "t1"}``,
the reference's shape); a token matches it when it carries every one of those claims with an equal
value (a list-valued claim in the token matches when it contains the value). Values that are not a
JSON object are skipped (the management API stores what it is given)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from portico.gateway.snapshot import AppView, Snapshot, snapshot_part
from portico.policies._identify.tokens import JWT_CLAIMS
from portico.store import StoreTransaction


def _same(expected: Any, actual: Any) -> bool:
    # JSON's true is not the number 1 (Python's == says it is)
    return expected == actual and isinstance(expected, bool) == isinstance(actual, bool)


def _claim_matches(expected: Any, actual: Any) -> bool:
    if _same(expected, actual):
        return True
    return isinstance(actual, list) and not isinstance(expected, list) and any(_same(expected, a) for a in actual)


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


@dataclass
class ClaimIndex:
    """Claim sets indexed by their first scalar claim (name, value), so a token is compared only
    with the sets that can match it (a thousand applications keyed by ``sub`` cost one lookup)."""

    by_id: dict[str, AppView] = field(default_factory=dict)
    keyed: dict[tuple[str, Any], list[tuple[dict[str, Any], AppView]]] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    unkeyed: list[tuple[dict[str, Any], AppView]] = field(default_factory=list)

    def add(self, expected: dict[str, Any], app: AppView) -> None:
        for name, value in expected.items():
            if _hashable(value):
                self.keyed.setdefault((name, value), []).append((expected, app))
                self.names.add(name)
                return
        self.unkeyed.append((expected, app))

    def _candidates(self, claims: dict[str, Any]) -> list[tuple[dict[str, Any], AppView]]:
        out: list[tuple[dict[str, Any], AppView]] = []
        for name in self.names:
            if name not in claims:
                continue
            actual = claims[name]
            for value in (actual if isinstance(actual, list) else [actual]):
                if _hashable(value):
                    out += self.keyed.get((name, value), ())
        return out + self.unkeyed

    def matching(self, claims: dict[str, Any]) -> list[AppView]:
        found: dict[str, AppView] = {}
        for expected, app in self._candidates(claims):
            if all(name in claims and _claim_matches(value, claims[name]) for name, value in expected.items()):
                found.setdefault(app.id, app)
        return list(found.values())


def parse_claim_set(value: str) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) and parsed else None


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    index = ClaimIndex(by_id={app.id: app for app in snap.apps_by_key.values()})
    for row in await tx.list("application"):
        body = row.body
        app = index.by_id.get(row.id)
        if app is None:
            app = index.by_id[row.id] = AppView(
                id=row.id, name=str(body.get("name", "")), api_key="", key_expires_at=None,
                suspended=bool(body.get("isSuspended")), api_ids=frozenset(body.get("apiIds") or ()))
        for ident in body.get("identifiers") or ():
            if not isinstance(ident, dict) or ident.get("key") != "jwtClaims":
                continue
            for value in ident.get("value") or ():
                claims = parse_claim_set(value) if isinstance(value, str) else None
                if claims is not None:
                    index.add(claims, app)
    snap.extras[JWT_CLAIMS] = index
