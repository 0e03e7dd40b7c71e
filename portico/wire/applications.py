"""Application <-> the reference's application JSON (§17.2 of the endpoint digest)."""

from __future__ import annotations

import time
from typing import Any

from portico.domain.application import Application
from portico.wire.common import gmt


def application_body(app: Application) -> dict[str, Any]:
    expired = app.apiKeyExpirationDate is not None and app.apiKeyExpirationDate <= time.time() * 1000
    return {
        "id": app.id,
        "name": app.name,
        "description": app.description,
        "version": app.version,
        "owner": app.owner,
        "teams": app.teams,
        "contactEmails": app.contactEmails,
        "siteURLs": app.siteURLs,
        "jsOrigins": app.jsOrigins,
        "authStrategyIds": app.authStrategyIds,
        "identifiers": [i.model_dump() for i in app.identifiers],
        "consumingAPIs": app.apiIds,
        "isSuspended": app.isSuspended,
        "subscription": app.subscription,
        "accessTokens": {
            "apiAccessKey_credentials": {
                "apiAccessKey": app.apiKey,
                "expirationInterval": app.apiKeyExpirationInterval,
                "expirationDate": gmt(app.apiKeyExpirationDate),
                "expired": expired,
            }
        },
        "created": gmt(app.created),
        "lastupdated": gmt(app.lastupdated),
    }


def applications_response(apps: list[Application]) -> dict[str, Any]:
    return {"applications": [application_body(a) for a in apps]}
