"""Shared payload machinery of the transformation and data-masking policies (issue 3).

* :mod:`.documents`: JSON and XML bodies: media kind, secure XML parsing (no network, no DTD,
  no entity expansion), JSONPath and XPath compiled once and applied (read, set, remove),
  XSLT compiled once under a deny-all access control.
* :mod:`.convert`: XML <-> JSON conversion (``xmlToJSONConversion_keepString``).
* :mod:`.expressions`: ``${...}`` references of the transformation policies, including
  ``${request.payload.jsonPath[...]}``, ``${response.headers.X}`` and friends, resolved per request.
* :mod:`.conditions`: the ``transformationConditions`` group (AND/OR of operator checks).
* :mod:`.masking`: JSONPath/XPath/regex masking and :func:`.masking.mask_for_log`.

Everything that can fail on a message raises :class:`PayloadError`; the policies turn it into a
Violation with their own stable key."""

from __future__ import annotations


class PayloadError(ValueError):
    """A message body does not fit what a policy wants to do with it (not JSON, not XML, ...)."""
