"""An application (a consumer of APIs) and the identifiers the gateway recognises it by."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field

# Identifier keys the reference defines for applications.
IDENTIFIER_KEYS = {
    "apiKey", "ipAddressRange", "hostNameAddress", "httpBasicAuth", "partnerId", "httpsCertificate",
    "jwtClaims", "token", "wssecUsernameToken", "payloadElement", "headers",
}


class Identifier(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = ""
    key: str
    name: str = ""
    value: list[str] = Field(default_factory=list)


class Application(BaseModel):
    """Stored under kind ``application``; ``apiIds`` are the APIs it is registered to."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    description: str = ""
    version: str = "1.0"
    owner: str = "Administrator"
    teams: list[str] = Field(default_factory=list)  # team ids (admin/teams.py); empty: not assigned yet
    contactEmails: list[str] = Field(default_factory=list)
    siteURLs: list[str] = Field(default_factory=list)
    jsOrigins: list[str] = Field(default_factory=list)
    authStrategyIds: list[str] = Field(default_factory=list)
    identifiers: list[Identifier] = Field(default_factory=list)
    apiKey: str
    apiKeyExpirationDate: int | None = None
    apiKeyExpirationInterval: str | None = None
    isSuspended: bool = False
    apiIds: list[str] = Field(default_factory=list)
    subscription: bool = False
    created: int = 0
    lastupdated: int | None = None


def parse_ip_range(text: str) -> tuple[int, int] | None:
    """``10.0.0.1-10.0.0.9``, a CIDR block or one address -> (low, high) as integers; None if invalid."""
    text = text.strip()
    try:
        if "-" in text:
            first, second = (ipaddress.ip_address(p.strip()) for p in text.split("-", 1))
            if first.version != second.version:
                return None
            low, high = int(first), int(second)
            return (low, high) if low <= high else (high, low)
        net = ipaddress.ip_network(text, strict=False)
        return int(net.network_address), int(net.broadcast_address)
    except ValueError:
        return None
