"""Personal access tokens: the secret, its stored digest, and the stored record.

A token is 256 random bits; only its SHA-256 digest is stored (a slow KDF adds nothing for a
secret that cannot be guessed), as the asset row's ``name`` so a lookup is one indexed query.
The secret is shown once, in the response that creates it."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

KIND = "personalAccessToken"
PREFIX = "ptk_"
MAX_DAYS = 3650
DEFAULT_DAYS = 90
DAY_MS = 86_400_000


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    return value.startswith(PREFIX) and 20 < len(value) < 200


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    user_id: str
    name: str
    created: int
    expires: int | None

    def expired(self, now_ms: int) -> bool:
        return self.expires is not None and now_ms >= self.expires

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "userId": self.user_id, "name": self.name, "created": self.created,
                "expires": self.expires}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> TokenRecord:
        expires = body.get("expires")
        return cls(str(body["id"]), str(body["userId"]), str(body.get("name", "")), int(body.get("created", 0)),
                   int(expires) if isinstance(expires, int) else None)


def issue(user_id: str, name: str, days: int, now_ms: int) -> tuple[str, TokenRecord]:
    """A new secret and the record to store (under the secret's digest)."""
    record = TokenRecord(str(uuid.uuid4()), user_id, name, now_ms, now_ms + days * DAY_MS)
    return new_secret(), record
