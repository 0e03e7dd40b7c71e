"""Discovery previews and ingestion jobs, run through an integration's primary agent link.

``POST /integrations/{id}/discover`` sends DISCOVER (a listing, no definitions) and marks each API
NEW or UPDATE. ``POST /integrations/{id}/ingest`` starts an :class:`IngestJob`: START_INGEST is
answered once the agent has listed the provider's APIs (with whether that listing is complete),
then the agent exports and sends the APIs in INGEST batches, each written in one transaction by
:mod:`portico.federation.ingest`. Jobs live on the node holding the agent link that runs them;
another node relays the start and the job's state (:mod:`portico.federation.relay`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portico.federation import ingest, keys
from portico.federation import protocol as p

if TYPE_CHECKING:
    from portico.federation.controller import Controller, Link

log = logging.getLogger("portico.federation.jobs")
INGEST_DEADLINE = 300.0  # a job with no INGEST batch for this long fails
_KEEP_FINISHED = 100


@dataclass(eq=False)
class IngestJob:
    """One ingestion. It is *complete* only when it ingests everything (no ``apiIds``) and the
    agent's discovery had no error: only then may APIs missing from the listing be marked removed
    from their provider and plans missing from it be removed. Otherwise what was found is updated
    and nothing is removed (status ``PARTIAL`` when the discovery was incomplete)."""

    id: str
    integration_id: str
    api_ids: list[str]
    status: str = "RUNNING"  # RUNNING, SUCCEEDED, PARTIAL (discovery incomplete: nothing removed), FAILED
    total: int = 0
    received: int = 0
    started: int = field(default_factory=lambda: int(time.time() * 1000))
    finished: int | None = None
    tally: ingest.Tally = field(default_factory=ingest.Tally)
    removed_from_provider: list[str] = field(default_factory=list)
    plans_removed: list[str] = field(default_factory=list)
    error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    deadline: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    link_id: str = ""
    partial: bool = True  # until START_INGEST's answer says the discovery was complete
    complete: bool = False
    listed_apis: set[str] = field(default_factory=set)  # ids of every API the discovery listed
    listed_plans: set[str] = field(default_factory=set)  # ids of every plan the discovery listed
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # START_INGEST's answer is in

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "integrationId": self.integration_id, "status": self.status,
                "apiIds": self.api_ids, "total": self.total, "received": self.received,
                "created": self.tally.created, "updated": self.tally.updated,
                "isPartialDiscovery": self.partial, "complete": self.complete,
                "removedFromProvider": self.removed_from_provider, "plansRemoved": self.plans_removed,
                "errors": self.tally.errors + ([self.error] if self.error else []),
                "started": self.started, "finished": self.finished}

    def take_answer(self, answer: p.Payload) -> None:
        """START_INGEST's answer: the total, whether the discovery was complete, what it listed."""
        self.total = int(answer.get("total") or 0)
        errors = [str(e) for e in answer.get("errors") or []]
        self.tally.errors.extend(f"discovery: {e}" for e in errors)
        listed = answer.get("listed")
        # an answer that does not say the discovery was complete, or without its listing, removes nothing
        self.partial = answer.get("isPartialDiscovery") is not False or bool(errors) or not isinstance(listed, list)
        for item in listed if isinstance(listed, list) else []:
            if isinstance(item, dict) and isinstance(item.get("uniqueId"), str):
                self.listed_apis.add(ingest.api_id_for(self.integration_id, item["uniqueId"]))
                for plan in item.get("planIds") or []:
                    self.listed_plans.add(ingest.plan_id_for(self.integration_id, str(plan)))
        self.answered.set()


class Ingestions:
    """The discovery previews and ingestion jobs of one node's controller."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.jobs: dict[str, IngestJob] = {}

    async def discover(self, integration_id: str) -> dict[str, Any]:
        """DISCOVER through the primary link; each API marked NEW or UPDATE against the catalogue."""
        found = await self.controller.request(integration_id, p.DISCOVER, {})
        apis = [a for a in found.get("apis") or [] if isinstance(a, dict) and isinstance(a.get("uniqueId"), str)]
        async with self.controller.store.read() as tx:
            for api in apis:
                api_id = ingest.api_id_for(integration_id, api["uniqueId"])
                api["apiId"] = api_id
                api["state"] = "UPDATE" if await tx.get("api", api_id) is not None else "NEW"
        errors = [str(e) for e in found.get("errors") or []]
        summary = {"total": len(apis), "new": sum(a["state"] == "NEW" for a in apis),
                   "update": sum(a["state"] == "UPDATE" for a in apis),
                   "isPartialDiscovery": bool(found.get("isPartialDiscovery")), "errors": errors}
        with contextlib.suppress(Exception):
            await self.controller.board.discovered(integration_id, summary)
            await self.controller.board.provider_error(integration_id, "; ".join(errors) or None)
        return {**summary, "apis": apis}

    async def start(self, integration_id: str, api_ids: list[str]) -> IngestJob:
        job = IngestJob(str(uuid.uuid4()), integration_id, list(api_ids))
        job.deadline = time.monotonic() + INGEST_DEADLINE
        self.jobs[job.id] = job
        self._forget_old_jobs()
        with contextlib.suppress(p.LinkUnavailable):
            job.link_id = self.controller.primary(integration_id).id
        try:
            # this node's link: its INGEST batches come back here (another node relays the whole job)
            answer = await self.controller.request(integration_id, p.START_INGEST,
                                                   {"ingestJobId": job.id, "apiIds": api_ids}, local_only=True)
        except (p.LinkUnavailable, p.CommandFailed) as exc:
            self.jobs.pop(job.id, None)
            if type(exc) is p.CommandFailed:  # the agent's answer: its provider's failure
                with contextlib.suppress(Exception):
                    await self.controller.board.provider_error(integration_id, str(exc))
            raise
        async with job.lock:
            job.take_answer(answer)
        with contextlib.suppress(Exception):
            errors = "; ".join(map(str, answer.get("errors") or []))
            await self.controller.board.provider_error(integration_id, errors or None)
        self.controller.spawn(self._watch(job))
        return job

    def _forget_old_jobs(self) -> None:
        finished = [j for j in self.jobs.values() if j.status != "RUNNING"]
        for job in sorted(finished, key=lambda j: j.started)[:-_KEEP_FINISHED]:
            self.jobs.pop(job.id, None)

    async def _watch(self, job: IngestJob) -> None:
        while not job.done.is_set():
            left = job.deadline - time.monotonic()
            if left <= 0:
                job.status, job.error = "FAILED", f"no INGEST batch within {INGEST_DEADLINE:.0f} s"
                job.finished = int(time.time() * 1000)
                job.done.set()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.done.wait(), left)

    async def on_batch(self, link: Link, payload: p.Payload) -> p.Payload:
        """An INGEST batch from the agent: written in one transaction; the last one finishes the job."""
        job = self.jobs.get(str(payload.get("ingestJobId")))
        if job is None or job.integration_id != link.integration_id:
            raise p.CommandFailed(f"unknown ingest job {payload.get('ingestJobId')!r}")
        if job.status != "RUNNING":
            raise p.CommandFailed(f"ingest job {job.id} is {job.status}")
        apis = payload.get("apis") or []
        if not isinstance(apis, list):
            raise p.CommandFailed("INGEST 'apis' must be a list")
        items, errors = await ingest.prepare(apis)
        async with job.lock:
            job.deadline = time.monotonic() + INGEST_DEADLINE
            job.tally.errors.extend(str(e) for e in payload.get("errors") or [])  # e.g. an export that failed
            job.tally.errors.extend(errors)
            async with self.controller.store.transaction() as tx:
                integration = await tx.get(ingest.INTEGRATION, job.integration_id)
                if integration is None:
                    job.status, job.error = "FAILED", "the integration was deleted"
                    job.done.set()
                    raise p.CommandFailed(job.error)
                await ingest.write_batch(tx, integration.body, items, job.tally)
            job.received += len(apis)
            self.controller.on_change()
            if payload.get("done"):
                self.controller.spawn(self._finish(job))
        return {}

    async def _finish(self, job: IngestJob) -> None:
        """The last batch is in. A complete ingestion marks the APIs the discovery no longer listed
        as removed from their provider and removes the plans it no longer listed (closing their
        subscriptions); any other removes nothing."""
        try:
            with contextlib.suppress(TimeoutError):  # the last batch may overtake START_INGEST's answer
                await asyncio.wait_for(job.answered.wait(), self.controller.reply_timeout)
            job.complete = not job.api_ids and not job.partial and job.answered.is_set()
            if job.complete:
                await self._remove_vanished(job)
            job.status = "PARTIAL" if job.partial else "SUCCEEDED"
        except Exception as exc:
            log.exception("ingest job %s failed", job.id)
            job.status, job.error = "FAILED", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished = int(time.time() * 1000)
            self.controller.on_change()
            summary = {k: v for k, v in job.view().items() if k not in ("apiIds", "integrationId")}
            with contextlib.suppress(Exception):
                await self.controller.board.ingested(job.integration_id, summary)
            job.done.set()

    async def _remove_vanished(self, job: IngestJob) -> None:
        """Mark the unlisted APIs, revoke the keys of the unlisted plans' subscriptions (those that
        cannot be revoked now are scheduled), then delete those plans and subscriptions."""
        async with self.controller.store.transaction() as tx:
            job.removed_from_provider = await ingest.mark_removed(tx, job.integration_id, job.listed_apis)
            busy = await keys.claimed_plans(tx)  # a subscription being written: that plan waits for next time
            gone = [pid for pid in await ingest.gone_plans(tx, job.integration_id, job.listed_plans)
                    if pid not in busy]
            grants = await ingest.grants_on(tx, gone)
        unrevoked: dict[str, str] = {}  # subscriptionId -> why its key is still in the provider
        for grant in grants:
            try:
                await self.controller.unsubscribe(grant)
            except (p.LinkUnavailable, p.CommandFailed) as exc:
                unrevoked[str(grant.get("subscriptionId"))] = str(exc)
                job.tally.errors.append(f"subscription of application {grant.get('applicationId')}: the provider "
                                        f"key could not be revoked now ({exc}); it is retried later")
        async with self.controller.store.transaction() as tx:
            for grant in await ingest.grants_on(tx, gone):
                if str(grant.get("subscriptionId")) in unrevoked:
                    await keys.schedule(tx, grant, unrevoked[str(grant.get("subscriptionId"))])
                elif grant not in grants:  # subscribed after the revocations above: revoke it later
                    await keys.schedule(tx, grant, "subscribed while its plan was being removed")
            await ingest.remove_plans(tx, job.integration_id, gone)
        job.plans_removed = gone

    def link_closed(self, link_id: str) -> None:
        """Fail the running jobs whose batches were to come through that link."""
        for job in self.jobs.values():
            if job.link_id == link_id and job.status == "RUNNING":
                job.status, job.error = "FAILED", "the agent link closed during the ingestion"
                job.finished = int(time.time() * 1000)
                job.done.set()

    def shutdown(self) -> None:
        for job in self.jobs.values():
            if job.status == "RUNNING":
                job.status, job.error = "FAILED", "the management API shut down"
                job.done.set()
