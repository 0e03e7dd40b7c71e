"""Password restrictions and expiry: the rules, the settings documents, and their enforcement on
create, update and change of a password."""

from __future__ import annotations

from typing import Any

import pytest

from portico.domain.password_policy import PasswordExpiry, PasswordRestrictions, PasswordRuleError, SettingsError
from portico.security.principal import USER
from portico.store.db import now_ms
from tests.admin.test_users import PASSWORD, client, create_user
from tests.support.node import Node

STRICT = {"minLength": "10", "minUpperChars": "1", "minLowerChars": "1", "minDigits": "2",
          "minSpecialChars": "1", "maxIdenticalCharsInARow": "2", "historyLength": "2", "maxLength": "20"}


@pytest.mark.parametrize(("password", "rule"), [
    ("Ab1!x", "minLength"),
    ("Abcdefgh12!xyzABCDEFG", "maxLength"),
    ("abcdefgh12!", "minUpperChars"),
    ("ABCDEFGH12!", "minLowerChars"),
    ("Abcdefgh1!x", "minDigits"),
    ("Abcdefgh12x", "minSpecialChars"),
    ("Abcccdef12!", "maxIdenticalCharsInARow"),
])
def test_each_rule_is_named(password: str, rule: str) -> None:
    rules = PasswordRestrictions().merged(STRICT)
    with pytest.raises(PasswordRuleError, match=rule):
        rules.check_password(password)


def test_a_password_that_fits_passes() -> None:
    PasswordRestrictions().merged(STRICT).check_password("Abccdef12!x")
    PasswordRestrictions().check_password("eight ch")   # defaults: 8 characters, at most 3 alike in a row


@pytest.mark.parametrize(("data", "named"), [
    ({"minLength": "ten"}, "minLength"),
    ({"minLength": -1}, "minLength"),
    ({"historyLength": 13}, "historyLength"),
    ({"maxLength": 129}, "maxLength"),
    ({"mode": "loose"}, "mode"),
    ({"enablePasswordChange": "maybe"}, "enablePasswordChange"),
    ({"minLength": 30, "maxLength": 20}, "minLength"),
    ({"minUpperChars": 40, "minDigits": 40}, "maxLength"),
    ({"minDigit": 1}, "minDigit"),
    ({"minDigits": True}, "minDigits"),
])
def test_bad_restrictions(data: dict[str, Any], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        PasswordRestrictions().merged(data)


def test_expiry_applies_to_listed_users_or_everyone() -> None:
    day = 86_400_000
    everyone = PasswordExpiry().merged({"isEnabled": "true", "expirationInterval": "2"})
    assert everyone.expired("anyone", 0, 2 * day) and not everyone.expired("anyone", 0, 2 * day - 1)
    listed = everyone.merged({"applicableUsers": "a;b"})
    assert listed.expired("a", 0, 3 * day) and not listed.expired("c", 0, 3 * day)
    assert not PasswordExpiry().expired("a", 0, 10_000 * day)   # disabled by default
    with pytest.raises(SettingsError, match="expirationInterval"):
        everyone.merged({"expirationInterval": "0"})


async def test_restrictions_document_round_trip(node: Node) -> None:
    r = await node.admin.get("/configurations/passwordRestrictions")
    assert r.status_code == 200
    assert r.json()["minLength"] == "8" and r.json()["mode"] == "lax" and r.json()["enablePasswordChange"] == "true"
    r = await node.admin.put("/configurations/passwordRestrictions", json=STRICT)
    assert r.status_code == 200, r.text
    assert r.json()["minDigits"] == "2" and r.json()["historyLength"] == "2"
    r = await node.admin.put("/configurations/passwordRestrictions", json={"minLength": "x", "minDigits": "3"})
    assert r.status_code == 400 and "minLength" in r.json()["errorDetails"]
    assert (await node.admin.get("/configurations/passwordRestrictions")).json()["minDigits"] == "2"
    r = await node.admin.put("/configurations/passwordRestrictions", content=b"[",
                             headers={"content-type": "application/json"})
    assert r.status_code == 400


async def test_rules_apply_on_create_update_and_own_change(node: Node) -> None:
    r = await node.admin.put("/configurations/passwordRestrictions", json=STRICT)
    assert r.status_code == 200
    r = await node.admin.post("/users", json={"loginId": "weak", "password": "short"})
    assert r.status_code == 400 and "minLength" in r.json()["errorDetails"]
    r = await node.admin.post("/users", json={"loginId": "weak", "password": "nodigitsHere!"})
    assert r.status_code == 400 and "minDigits" in r.json()["errorDetails"]
    assert (await node.admin.get("/users/weak")).status_code == 404

    user = await create_user(node, "strong", "Abccdef12!x")
    r = await node.admin.put(f"/users/{user['id']}", json={"password": "abccdef12!x"})
    assert r.status_code == 400 and "minUpperChars" in r.json()["errorDetails"]
    # history: the current and the last two passwords may not come back
    r = await node.admin.put(f"/users/{user['id']}", json={"password": "Abccdef12!x"})
    assert r.status_code == 400 and "historyLength" in r.json()["errorDetails"]
    async with client(node, "strong", "Abccdef12!x") as c:   # the user's own change obeys the same rules
        r = await c.put("/users/strong", json={"password": "Second-pw-22", "oldPassword": "Abccdef12!x"})
        assert r.status_code == 200, r.text
    async with client(node, "strong", "Second-pw-22") as c:
        r = await c.put("/users/strong", json={"password": "Third-pw-33", "oldPassword": "Second-pw-22"})
        assert r.status_code == 200
    async with client(node, "strong", "Third-pw-33") as c:
        r = await c.put("/users/strong", json={"password": "Abccdef12!x", "oldPassword": "Third-pw-33"})
        assert r.status_code == 400 and "historyLength" in r.json()["errorDetails"]
        r = await c.put("/users/strong", json={"password": "Fourth-pw-44", "oldPassword": "Third-pw-33"})
        assert r.status_code == 200
    async with client(node, "strong", "Fourth-pw-44") as c:
        r = await c.put("/users/strong", json={"password": "Abccdef12!x",   # three changes ago: allowed
                                               "oldPassword": "Fourth-pw-44"})
        assert r.status_code == 200, r.text
        assert (await c.post("/users/authenticate")).status_code == 401
    async with client(node, "strong", "Abccdef12!x") as c:
        assert (await c.post("/users/authenticate")).status_code == 200


async def test_own_password_change_can_be_disabled(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "pat")
    r = await sqlite_node.admin.put("/configurations/passwordRestrictions", json={"enablePasswordChange": False})
    assert r.status_code == 200
    async with client(sqlite_node, "pat") as c:
        r = await c.put("/users/pat", json={"password": "Pat-new-pass-1"})
        assert r.status_code == 403 and "enablePasswordChange" in r.json()["errorDetails"]
    r = await sqlite_node.admin.put("/users/pat", json={"password": "Pat-new-pass-1"})   # an administrator may
    assert r.status_code == 200


async def test_lax_mode_spares_administrators_strict_does_not(sqlite_node: Node) -> None:
    r = await sqlite_node.admin.put("/configurations/passwordRestrictions", json={"minLength": 20})
    assert r.status_code == 200
    r = await sqlite_node.admin.put("/users/Administrator", json={"password": "test-secret-2",
                                                                   "oldPassword": "test-secret"})
    assert r.status_code == 200, r.text
    r = await sqlite_node.admin.put("/configurations/passwordRestrictions", json={"mode": "strict"},
                                    auth=("Administrator", "test-secret-2"))
    assert r.status_code == 200
    r = await sqlite_node.admin.put("/users/Administrator", json={"password": "test-secret-3",
                                                                   "oldPassword": "test-secret-2"},
                                    auth=("Administrator", "test-secret-2"))
    assert r.status_code == 400 and "minLength" in r.json()["errorDetails"]


async def _age_password(node: Node, login: str, days: int) -> None:
    async with node.portico.store.transaction() as tx:
        row = (await tx.list(USER, name=login))[0]
        body = {**row.body, "passwordChanged": now_ms() - days * 86_400_000}
        await tx.update(USER, row.id, body, row.revision, name=login)


async def test_expired_password_is_refused_except_to_change_it(node: Node) -> None:
    user = await create_user(node, "quinn")
    r = await node.admin.put("/configurations/passwordExpiry", json={"isEnabled": "true", "expirationInterval": "30"})
    assert r.status_code == 200 and r.json()["expirationInterval"] == "30" and r.json()["isEnabled"] == "true"
    async with client(node, "quinn") as c:
        assert (await c.post("/users/authenticate")).status_code == 200
    await _age_password(node, "quinn", 31)
    async with client(node, "quinn") as c:
        r = await c.post("/users/authenticate")
        assert r.status_code == 401 and "expired" in r.json()["errorDetails"]
        assert (await c.get("/apis")).status_code == 401
        r = await c.put(f"/users/{user['id']}", json={"firstName": "Q"})   # must change the password
        assert r.status_code == 401 and "password" in r.json()["errorDetails"]
        r = await c.put("/users/quinn", json={"password": PASSWORD, "oldPassword": PASSWORD})
        assert r.status_code == 400 and "differ" in r.json()["errorDetails"]
        r = await c.put("/users/Administrator", json={"password": "Quinn-new-pw-1"})
        assert r.status_code == 401
        r = await c.put("/users/quinn", json={"password": "Quinn-new-pw-1"})
        assert r.status_code == 400 and "oldPassword" in r.json()["errorDetails"]
        r = await c.put("/users/quinn", json={"password": "Quinn-new-pw-1", "oldPassword": PASSWORD})
        assert r.status_code == 200, r.text
    async with client(node, "quinn", "Quinn-new-pw-1") as c:
        assert (await c.post("/users/authenticate")).status_code == 200
    # only the listed users' passwords expire when a list is given
    await _age_password(node, "quinn", 31)
    r = await node.admin.put("/configurations/passwordExpiry", json={"applicableUsers": "someone-else"})
    assert r.status_code == 200 and "quinn" in r.json()["remainingUsers"].split(";")
    async with client(node, "quinn", "Quinn-new-pw-1") as c:
        assert (await c.post("/users/authenticate")).status_code == 200


async def test_bad_expiry_settings_are_400(sqlite_node: Node) -> None:
    for body in ({"expirationInterval": "0"}, {"isEnabled": "sometimes"}, {"expiresAfter": 3}):
        r = await sqlite_node.admin.put("/configurations/passwordExpiry", json=body)
        assert r.status_code == 400, body
    assert (await sqlite_node.admin.get("/configurations/passwordExpiry")).json()["isEnabled"] == "false"
