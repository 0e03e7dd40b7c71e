"""``inboundAuthTransport`` (IAM): the caller must authenticate as a Portico user with HTTP
basic credentials. Success sets ``ex.user`` (``${user}``); missing or wrong credentials are a
401 "The request cannot be authenticated." with ``WWW-Authenticate: Basic``."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from portico.policies.base import PolicyConfig, PolicyHandler, Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

CHALLENGE = ((b"www-authenticate", b'Basic realm="Portico"'),)
UNAUTHENTICATED = Violation(401, "AUTHENTICATION_FAILED", "The request cannot be authenticated.", CHALLENGE)


def basic_credentials(ex: Exchange) -> tuple[str, str] | None:
    """``(user, password)`` of an ``Authorization: Basic`` header; None when there is none,
    ``("", "")`` when it is malformed."""
    raw = ex.request.header(b"authorization")
    if raw is None or raw[:6].lower() != b"basic ":
        return None
    try:
        user, sep, password = base64.b64decode(raw[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return ("", "")
    return (user, password) if sep else ("", "")


async def authenticate(ex: Exchange) -> Violation | None:
    """Verify the basic credentials against the Portico users (cached; the slow hash runs off the
    event loop) and set ``ex.user``."""
    creds = basic_credentials(ex)
    if creds is None or not creds[0] or not await ex.snapshot.users.verify_async(*creds):
        return UNAUTHENTICATED
    ex.user = creds[0]
    return None


class InboundAuthTransportConfig(PolicyConfig):
    authType: Literal["HTTP_BASIC_AUTH"] = Field(
        default="HTTP_BASIC_AUTH", description="How callers authenticate: HTTP basic against Portico users.")


class InboundAuthTransport(PolicyHandler):
    template_key = "inboundAuthTransport"
    stage = "IAM"
    title = "Inbound Authentication - Transport"
    Config = InboundAuthTransportConfig

    async def run(self, ex: Exchange) -> Violation | None:
        if ex.user is not None:  # already authenticated by an earlier IAM action
            return None
        return await authenticate(ex)
