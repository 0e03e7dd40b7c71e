"""The three settings documents that govern local passwords and logins.

``/configurations/passwordRestrictions``, ``/configurations/passwordExpiry`` and
``/configurations/accountLockSettings`` (APIGatewayAdministration.json). The reference sends every
value as a string (``"10"``, ``"true"``); both strings and JSON numbers/booleans are accepted, and
answers use the reference's strings. A PUT changes the fields it names and keeps the others."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

_UNIT_MS = {"Minutes": 60_000, "Hours": 3_600_000, "Days": 86_400_000}
DAY_MS = _UNIT_MS["Days"]


class SettingsError(ValueError):
    """A settings document that does not fit; the message names the field."""


class PasswordRuleError(ValueError):
    """A password that breaks a rule; the message names the rule (``passwordRestrictions.<field>``)."""


def _int(doc: str, key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{doc}.{key} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise SettingsError(f"{doc}.{key} must be between {lo} and {hi}, got {value}")
    return value


def _bool(doc: str, key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SettingsError(f"{doc}.{key} must be true or false, got {value!r}")


def _choice(doc: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise SettingsError(f"{doc}.{key} must be one of {list(allowed)}, got {value!r}")
    return value


def _text(doc: str, key: str, value: Any, limit: int = 10_000) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise SettingsError(f"{doc}.{key} must be a string of at most {limit} characters")
    return value


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Document:
    """Shared parse/merge/render for the settings dataclasses below."""

    NAME: ClassVar[str]

    def to_wire(self) -> dict[str, str]:
        return {f.name: _wire(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_store(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def _field(self, key: str, value: Any) -> Any:
        raise NotImplementedError

    def merged(self, data: dict[str, Any]) -> Any:
        """A copy with the fields of ``data`` applied; SettingsError naming the first bad field."""
        known = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"{self.NAME}: unexpected field(s) {unknown}; expected {sorted(known)}")
        changes = {key: self._field(key, value) for key, value in data.items()}
        result = dataclasses.replace(self, **changes)  # type: ignore[type-var]
        result.check()
        return result

    def check(self) -> None:
        return None

    @classmethod
    def from_store(cls, body: dict[str, Any] | None) -> Any:
        base = cls()
        if not body:
            return base
        known = {f.name for f in dataclasses.fields(base)}  # type: ignore[arg-type]
        return dataclasses.replace(base, **{k: v for k, v in body.items() if k in known})  # type: ignore[type-var]


@dataclass(frozen=True, slots=True)
class PasswordRestrictions(_Document):
    NAME: ClassVar[str] = "passwordRestrictions"

    mode: str = "lax"
    minLength: int = 8
    maxLength: int = 64
    minUpperChars: int = 0
    minLowerChars: int = 0
    minDigits: int = 0
    minSpecialChars: int = 0
    maxIdenticalCharsInARow: int = 3
    historyLength: int = 0
    enablePasswordChange: bool = True

    def _field(self, key: str, value: Any) -> Any:
        if key == "mode":
            return _choice(self.NAME, key, value, ("lax", "strict"))
        if key == "enablePasswordChange":
            return _bool(self.NAME, key, value)
        limits = {"maxLength": (1, 128), "historyLength": (0, 12), "minLength": (0, 128)}
        lo, hi = limits.get(key, (0, 128))
        return _int(self.NAME, key, value, lo, hi)

    def check(self) -> None:
        if self.minLength > self.maxLength:
            raise SettingsError(f"{self.NAME}.minLength ({self.minLength}) exceeds maxLength ({self.maxLength})")
        least = self.minUpperChars + self.minLowerChars + self.minDigits + self.minSpecialChars
        if least > self.maxLength:
            raise SettingsError(f"{self.NAME}: the minimum character counts add up to {least}, "
                                f"more than maxLength ({self.maxLength})")

    def check_password(self, password: str) -> None:
        """PasswordRuleError naming the first rule ``password`` breaks."""
        def rule(name: str, text: str) -> PasswordRuleError:
            return PasswordRuleError(f"the password {text} ({self.NAME}.{name})")

        if len(password) < self.minLength:
            raise rule("minLength", f"must be at least {self.minLength} characters long")
        if len(password) > self.maxLength:
            raise rule("maxLength", f"must be at most {self.maxLength} characters long")
        counts = (
            ("minUpperChars", sum(c.isupper() for c in password), "uppercase letter(s)"),
            ("minLowerChars", sum(c.islower() for c in password), "lowercase letter(s)"),
            ("minDigits", sum(c.isdigit() for c in password), "digit(s)"),
            ("minSpecialChars", sum(not c.isalnum() for c in password), "special character(s)"),
        )
        for name, found, what in counts:
            needed = getattr(self, name)
            if found < needed:
                raise rule(name, f"must contain at least {needed} {what}")
        if self.maxIdenticalCharsInARow and _longest_run(password) > self.maxIdenticalCharsInARow:
            raise rule("maxIdenticalCharsInARow",
                       f"must not repeat a character more than {self.maxIdenticalCharsInARow} times in a row")


def _longest_run(text: str) -> int:
    best = run = 0
    previous = None
    for ch in text:
        run = run + 1 if ch == previous else 1
        previous = ch
        best = max(best, run)
    return best


@dataclass(frozen=True, slots=True)
class PasswordExpiry(_Document):
    """``applicableUsers`` lists login ids separated by ``;``; empty means every local user."""

    NAME: ClassVar[str] = "passwordExpiry"

    isEnabled: bool = False
    expirationInterval: int = 90
    expiryEmailBefore: int = 3
    applicableUsers: str = ""
    emailIds: str = ""

    def _field(self, key: str, value: Any) -> Any:
        if key == "isEnabled":
            return _bool(self.NAME, key, value)
        if key == "expirationInterval":
            return _int(self.NAME, key, value, 1, 36_500)
        if key == "expiryEmailBefore":
            return _int(self.NAME, key, value, 0, 36_500)
        return _text(self.NAME, key, value)

    def users(self) -> frozenset[str]:
        return frozenset(u.strip() for u in self.applicableUsers.split(";") if u.strip())

    def applies_to(self, login_id: str) -> bool:
        listed = self.users()
        return self.isEnabled and (not listed or login_id in listed)

    def expired(self, login_id: str, changed_ms: int, now_ms: int) -> bool:
        return self.applies_to(login_id) and now_ms >= changed_ms + self.expirationInterval * DAY_MS


ALL_USERS = "allUsers"
ALL_BUT_PREDEFINED = "allUsersExceptPredefinedUsers"


@dataclass(frozen=True, slots=True)
class AccountLockSettings(_Document):
    NAME: ClassVar[str] = "accountLockSettings"

    isEnabled: bool = True
    maximumLoginAttempts: int = 5
    timeInterval: int = 5
    timeIntervalUnit: str = "Minutes"
    blockDuration: int = 15
    blockDurationUnit: str = "Minutes"
    appliesToUsers: str = ALL_BUT_PREDEFINED
    restrictLoginForUsersInDefaultTeam: bool = False

    def _field(self, key: str, value: Any) -> Any:
        if key in ("isEnabled", "restrictLoginForUsersInDefaultTeam"):
            return _bool(self.NAME, key, value)
        if key in ("timeIntervalUnit", "blockDurationUnit"):
            return _choice(self.NAME, key, value, tuple(_UNIT_MS))
        if key == "appliesToUsers":
            return _choice(self.NAME, key, value, (ALL_BUT_PREDEFINED, ALL_USERS))
        return _int(self.NAME, key, value, 1, 100_000)

    def applies_to(self, predefined: bool) -> bool:
        return self.isEnabled and (self.appliesToUsers == ALL_USERS or not predefined)

    @property
    def window_ms(self) -> int:
        return self.timeInterval * _UNIT_MS[self.timeIntervalUnit]

    @property
    def block_ms(self) -> int:
        return self.blockDuration * _UNIT_MS[self.blockDurationUnit]
