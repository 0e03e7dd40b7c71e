"""The ``destination`` groups of logInvocation, monitorServicePerformance and monitorSLA.

Portico delivers GATEWAY (the gateway's own events) and localLog (the server log at
``logLevel``). The reference's other destinations are accepted so its configurations load, and
a warning says, when the policy is compiled, that they are not delivered yet."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from portico.policies.base import PolicyConfig

log = logging.getLogger("portico.policies")
LEVELS = {"Error": logging.ERROR, "Warn": logging.WARNING, "Info": logging.INFO, "Debug": logging.DEBUG,
          "Trace": logging.DEBUG}
DELIVERED = ("GATEWAY", "localLog")


class Destination(PolicyConfig):
    destinationType: Literal["GATEWAY", "localLog", "SMTP", "CUSTOM", "DES", "ELASTICSEARCH", "APIPORTAL",
                             "CENTRASITE", "SNMP", "AUDITLOG", "DIGITALEVENTS"] = Field(
        description="Where it goes; Portico delivers GATEWAY and localLog.")
    logLevel: Literal["Error", "Warn", "Info", "Debug", "Trace"] = Field(
        default="Info", description="Level of localLog entries.")
    emailTo: list[str] = Field(default_factory=list, description="SMTP recipients (not delivered yet).")
    ids: list[str] = Field(default_factory=list, description="Custom destination ids (not delivered yet).")


def gateway_destination() -> list[Destination]:
    return [Destination(destinationType="GATEWAY")]


def local_log_level(destinations: Sequence[Destination]) -> int | None:
    return next((LEVELS[d.logLevel] for d in destinations if d.destinationType == "localLog"), None)


def warn_undelivered(destinations: Sequence[Destination], policy: str) -> None:
    for d in destinations:
        if d.destinationType not in DELIVERED:
            log.warning("%s: destination %s is not delivered by Portico yet", policy, d.destinationType)
