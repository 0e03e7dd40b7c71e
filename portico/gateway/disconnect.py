"""``ClientDisconnected``, in a module of its own: it subclasses ``ConnectionError`` (so that code
catching connection errors catches it too), and the data plane's compiled modules (see
``setup.py``) can define subclasses of ``Exception`` only. This module stays interpreted."""

from __future__ import annotations


class ClientDisconnected(ConnectionError):
    """The peer went away (or the connection was aborted) while a body was read or written."""
