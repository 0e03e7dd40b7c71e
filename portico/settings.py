"""Extended settings and watt keys: names, defaults, and the typed view the gateway reads.

Settings travel as strings (that is how the reference stores and exchanges them);
:func:`portico.gateway.snapshot.runtime_settings` parses them once per configuration snapshot."""

from __future__ import annotations

import re
from typing import Any

# Extended settings Portico knows, with the reference defaults.
EXTENDED_DEFAULTS: dict[str, str] = {
    "apiKeyHeader": "x-Gateway-APIKey",
    "apiKeyExpirationPeriod": "",
    "customCertificateHeader": "X-Client-Cert",
    "return408ForConnectionTimeout": "true",
    "strictResourceMatching": "true",
    "pg.endpoint.connectionTimeout": "30",
    "pg.endpoint.readTimeout": "30",
    "pg.default.enable.oldVersion": "false",
    "forwardQueryParams": "false",
    "decodeAllDelimitersInURI": "false",
    "openAPIImporterValidation": "false",
    "apiMaturityStatePossibleValues": "Beta,Deprecated,Experimental,Production,Test",
    "apiGroupingPossibleValues": "Internal,External",
    "defaultSearchResultSize": "1000",
    "enableHotdeploy": "true",
    "pg.lb.failoverOnDowntimeErrorOnly": "true",
    "startDayOfTheWeek": "MONDAY",
    "xmlToJSONConversion_keepString": "true",
    # Portico: when the rate-limit counter store (Redis) is unreachable, let calls through (true)
    # or answer 503 (false).
    "rateLimitFailOpen": "true",
    # Seconds between saves of quota counters to the database (restored on start).
    "pgmen.quotaSurvival.interval": "60",
    # Team support: APIs, applications, packages and plans visible only to their teams (admin/teams.py).
    "enableTeamWork": "false",
    # Management sessions (security/sessions.py): idle timeout in minutes, maximum lifetime in hours.
    "sessionIdleTimeoutMinutes": "30",
    "sessionMaxLifetimeHours": "12",
    # A new API gets a scope of the local authorization server and a scope mapping to it (admin/scopes.py).
    "pg_oauth2_createDefaultScopes": "false",
}

WATT_DEFAULTS: dict[str, str] = {
    "watt.server.enterprisegateway.ignoreXForwardedForHeader": "true",
}

BOOLEAN_SETTINGS = {
    "return408ForConnectionTimeout",
    "strictResourceMatching",
    "pg.default.enable.oldVersion",
    "forwardQueryParams",
    "decodeAllDelimitersInURI",
    "openAPIImporterValidation",
    "enableHotdeploy",
    "pg.lb.failoverOnDowntimeErrorOnly",
    "xmlToJSONConversion_keepString",
    "rateLimitFailOpen",
    "enableTeamWork",
    "pg_oauth2_createDefaultScopes",
    "watt.server.enterprisegateway.ignoreXForwardedForHeader",
}
POSITIVE_NUMBER_SETTINGS = {"pg.endpoint.connectionTimeout", "pg.endpoint.readTimeout", "defaultSearchResultSize",
                            "pgmen.quotaSurvival.interval", "sessionIdleTimeoutMinutes", "sessionMaxLifetimeHours"}

DEFAULT_ERROR_TEMPLATE = (
    "API Gateway encountered an error. Error Message: $ERROR_MESSAGE. Request Details: Service - $SERVICE, "
    "Operation - $OPERATION, Invocation Time:$TIME, Date:$DATE, Client IP - $CLIENT_IP, User - $USER and "
    "Application:$CONSUMER_APPLICATION"
)

ERROR_PROCESSING_DEFAULTS: dict[str, Any] = {
    "sendNativeProviderFault": False,
    "defaultErrorMessage": DEFAULT_ERROR_TEMPLATE,
    "fallbackErrorMessage": "",
}

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    # The reference reads a bare "m" as months ("10 months, 10m"); a month is 30 days here.
    "m": 2592000, "month": 2592000, "months": 2592000,
    "y": 31536000, "year": 31536000, "years": 31536000,
}
# startDayOfTheWeek: weekly counting windows (rate limits, quotas) begin at 00:00 UTC on this day.
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")

_PERIOD = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")


def parse_period(text: str) -> int | None:
    """Seconds in an ``apiKeyExpirationPeriod`` value; None for "never expires"; ValueError if malformed."""
    if not text.strip():
        return None
    m = _PERIOD.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(
            f"invalid period {text!r}: expected a number and a unit such as 8s, 15min, 2 days, 10 months"
        )
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def validate_setting(key: str, value: Any) -> str:
    """Return the value as stored (a string) or raise ValueError naming the problem."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"setting {key!r} must be a string, got {type(value).__name__}")
    if len(value) > 10_000:
        raise ValueError(f"setting {key!r} is longer than 10000 characters")
    if key in BOOLEAN_SETTINGS and value.lower() not in ("true", "false"):
        raise ValueError(f"setting {key!r} must be 'true' or 'false', got {value!r}")
    if key in POSITIVE_NUMBER_SETTINGS:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"setting {key!r} must be a number, got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"setting {key!r} must be a finite number, got {value!r}")
        if number < 0 and not (key == "defaultSearchResultSize" and number == -1):
            raise ValueError(f"setting {key!r} must not be negative")
    if key == "apiKeyExpirationPeriod":
        parse_period(value)
    if key == "startDayOfTheWeek":
        if value.strip().upper() not in WEEKDAYS:
            raise ValueError(f"setting 'startDayOfTheWeek' must be a day of the week (MONDAY ... SUNDAY), "
                             f"got {value!r}")
        value = value.strip().upper()  # stored as every reader compares it
    if key == "apiKeyHeader" and not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", value):
        raise ValueError(f"setting 'apiKeyHeader' must be a valid header name, got {value!r}")
    if key == "customCertificateHeader" and not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]*", value.strip()):
        raise ValueError(f"setting 'customCertificateHeader' must be a valid header name (or empty), got {value!r}")
    return value


def is_true(value: str) -> bool:
    return value.strip().lower() == "true"
