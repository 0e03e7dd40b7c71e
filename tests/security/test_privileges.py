from __future__ import annotations

import pytest

from portico.security import privileges as priv
from portico.security.principal import resolve
from portico.store.db import AssetRow


def test_catalogue_has_the_guides_28_privileges_in_order() -> None:
    assert len(priv.PRIVILEGES) == 28
    assert priv.PRIVILEGES[0] == "Manage APIs"
    assert priv.PRIVILEGES[-1] == "Manage Custom dashboards"
    assert len(set(priv.PRIVILEGES)) == 28


def test_bits_round_trip() -> None:
    held = {priv.MANAGE_APIS, priv.MANAGE_USERS, priv.MANAGE_DASHBOARDS}
    bits = priv.to_bits(held)
    assert len(bits) == 28 and bits[0] == "1" and bits[-1] == "1" and bits.count("1") == 3
    assert priv.from_bits(bits) == held
    assert priv.parse(bits) == held
    assert priv.parse("1") == {priv.MANAGE_APIS}


def test_parse_accepts_names_case_and_space_insensitively() -> None:
    assert priv.parse(["manage apis", "Manage  Aliases"]) == {priv.MANAGE_APIS, priv.MANAGE_ALIASES}


@pytest.mark.parametrize("value", ["10201", "1" * 29, ["Manage everything"], 12, [3]])
def test_parse_rejects_bad_values(value: object) -> None:
    with pytest.raises(ValueError):
        priv.parse(value)


def _row(kind: str, asset_id: str, body: dict[str, object]) -> AssetRow:
    return AssetRow(kind, asset_id, body, 1, 0, 0)


def test_resolution_is_the_union_over_teams_reached_directly_or_through_groups() -> None:
    groups = [_row("group", "g1", {"userIds": ["u"]}), _row("group", "g2", {"userIds": ["other"]})]
    teams = [
        _row("accessProfile", "via-group", {"groupIds": ["g1"], "privilege": priv.to_bits([priv.MANAGE_APIS])}),
        _row("accessProfile", "direct", {"userIds": ["u"], "privilege": priv.to_bits([priv.MANAGE_ALIASES])}),
        _row("accessProfile", "not-mine", {"groupIds": ["g2"], "privilege": priv.to_bits(priv.ALL)}),
        _row("accessProfile", priv.DEFAULT_TEAM, {"privilege": priv.to_bits([])}),
    ]
    p = resolve("u", "user", groups, teams)
    assert p.groups == {"g1"}
    assert p.teams == {"via-group", "direct", priv.DEFAULT_TEAM}
    assert p.privileges == {priv.MANAGE_APIS, priv.MANAGE_ALIASES}
    assert not p.holds(priv.MANAGE_USERS)
