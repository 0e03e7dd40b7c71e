"""Purging stored runtime data: ``DELETE /apitransactions`` starts a job (202 with its ``jobId``),
``GET /apitransactions/jobs`` lists jobs, ``GET /apitransactions/jobs/{jobId}`` tells one's status.

The range is ``from`` and/or ``until`` (dates as ``transactionalEvents/_search`` takes them, plus
the reference's ``YYYY-MM-DD HH:MM:SS``), or ``olderThan`` (``2d``, ``1M``, ``1y``): rows created
before that age. The jobs themselves live in ``events/purge.py``."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response
from portico.admin.context import context_of
from portico.admin.errors import bad_request, not_found
from portico.admin.events import older_than, parse_date
from portico.events.purge import (
    COMPLETED,
    EVENT_TYPES,
    FAILED,
    IN_PROGRESS,
    Purge,
    PurgeJobs,
    find_job,
    kinds_of,
    list_jobs,
)
from portico.store.db import now_ms as current_ms

JOBS = "purgeJobs"  # AdminContext.extras key of this node's PurgeJobs
_STATUSES = (IN_PROGRESS, COMPLETED, FAILED)


def purge_of(params: Mapping[str, str], now_ms: int | None = None) -> Purge:
    """The purge the query parameters ask for; 400 naming what is missing or wrong."""
    event_type = params.get("eventType", "").strip()
    if not event_type:
        raise bad_request(f"eventType is required: one of {list(EVENT_TYPES)}")
    try:
        kinds = kinds_of(event_type)
    except ValueError:
        raise bad_request(f"eventType must be one of {list(EVENT_TYPES)}, got {event_type!r}") from None
    action = params.get("action", "").strip()
    if action and action != "purge":
        if action == "archiveAndPurge":
            raise bad_request("action archiveAndPurge is not supported: Portico does not archive runtime data; "
                              "download audit logs first (GET /apitransactions?eventType=auditlogs), then purge")
        raise bad_request(f"action must be purge or archiveAndPurge, got {action!r}")
    start, until, older = (params.get(k, "").strip() for k in ("from", "until", "olderThan"))
    now = now_ms if now_ms is not None else current_ms()
    if older:
        if start or until:
            raise bad_request("give either from and/or until, or olderThan, not both")
        return Purge(kinds, None, older_than("olderThan", older, now))
    if not (start or until):
        raise bad_request("from, until or olderThan is required: which runtime data to purge")
    from_ms = parse_date("from", start) if start else None
    until_ms = parse_date("until", until, end_of_day=True) if until else now
    if from_ms is not None and from_ms > until_ms:
        raise bad_request("from must not be after until")
    return Purge(kinds, from_ms, until_ms)


def _jobs(request: Request) -> PurgeJobs:
    jobs: PurgeJobs = context_of(request).extras[JOBS]
    return jobs


async def purge(request: Request) -> Response:
    job_id = await _jobs(request).start(purge_of(request.query_params))
    return json_response({"jobId": job_id}, status=202)


async def get_jobs(request: Request) -> Response:
    status = request.query_params.get("status", "").strip() or None
    if status is not None and status not in _STATUSES:
        raise bad_request(f"status must be one of {list(_STATUSES)}, got {status!r}")
    action = request.query_params.get("action", "").strip() or None
    jobs = await list_jobs(context_of(request).store, status, action)
    return json_response({"jobs": list(jobs)})


async def get_job(request: Request) -> Response:
    job_id = request.path_params["jobId"]
    job = await find_job(context_of(request).store, job_id)
    if job is None:
        raise not_found("job", job_id)
    return json_response(job)


routes = [
    Route("/apitransactions", purge, methods=["DELETE"]),
    Route("/apitransactions/jobs", get_jobs, methods=["GET"]),
    Route("/apitransactions/jobs/{jobId}", get_job, methods=["GET"]),
]
