"""Runtime events: the transactional event model, its batch writer and its search.

The gateway builds one :class:`TransactionEvent` per request and hands it to
:meth:`EventRecorder.record`; the management API reads events back with
:func:`search` / :func:`count`."""

from portico.events.model import TransactionEvent
from portico.events.recorder import EventRecorder
from portico.events.search import ApiCount, EventFilter, count, count_by_api, search

__all__ = ["ApiCount", "EventFilter", "EventRecorder", "TransactionEvent", "count", "count_by_api", "search"]
