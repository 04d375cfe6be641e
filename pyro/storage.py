"""Pyro4's name server storage URLs, as ``python -m Pyro4.naming -s`` takes them.

``memory`` (the default: volatile), ``dbm:PATH`` (Pyro4's ``DbmStorage``: no metadata) and
``sql:PATH`` (Pyro4's ``SqlStorage``, sqlite), opened with Pyro4's own storage classes, so a
name server here and a Pyro4 name server can share a store.
"""

from __future__ import annotations

from typing import Any

import Pyro4.naming
from twisted.logger import Logger

__all__ = ["StorageError", "check_storage_url", "open_storage"]

log = Logger(namespace="pyro.nameserver")


class StorageError(ValueError):
    """A storage URL that is wrong, or a store that cannot be opened."""


def check_storage_url(url: str) -> tuple[str, str]:
    """``(kind, path)`` of a storage URL; :class:`StorageError` if it is not one."""
    if url == "memory":
        return "memory", ""
    kind, _, path = url.partition(":")
    if kind in ("dbm", "sql") and path:
        return kind, path
    raise StorageError("invalid storage URL %r: use memory, dbm:PATH or sql:PATH" % (url,))


def open_storage(url: str) -> Any:
    """The Pyro4 storage a URL names, opened (created if need be)."""
    kind, path = check_storage_url(url)
    if kind == "memory":
        log.debug("using volatile in-memory dict storage")
        return Pyro4.naming.MemoryStorage()
    from Pyro4.naming_storage import DbmStorage, SqlStorage

    try:
        if kind == "sql":
            return SqlStorage(path)
        storage = DbmStorage(path)
    except Exception as exc:  # sqlite3.Error, dbm.error, OSError, ValueError: all say why
        raise StorageError("cannot open storage %r: %s" % (url, exc)) from exc
    log.warn("Warning: the DbmStorage doesn't support metadata.")  # Pyro4's words
    return storage
