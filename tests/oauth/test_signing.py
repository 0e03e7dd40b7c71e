"""The built-in signing key: made once, imported once per process, the same kid every time."""

from __future__ import annotations

import os

from portico.oauth.config import default_local
from portico.oauth.signing import ensure_builtin_key, signing_key
from portico.security.secrets import SecretBox
from portico.store import Store


async def test_builtin_key_is_made_once_and_imported_once(store: Store) -> None:
    box = SecretBox(os.urandom(32))
    await ensure_builtin_key(store, box)
    await ensure_builtin_key(store, box)  # a second start keeps the key
    async with store.read() as tx:
        first = await signing_key(tx, box, default_local())
        again = await signing_key(tx, box, default_local())
    assert first.kid == again.kid and first.source == "builtin"
    assert again.key is first.key  # not imported again (each import checks the RSA key: tens of ms)
