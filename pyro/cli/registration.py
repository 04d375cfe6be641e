"""``serve --ns``: names kept in the name server while the command serves.

Each name is kept by :func:`pyro.nameserver.keep_registered` (registered again when a name
server restarted without it, removed on shutdown if it still names our object). What the
command adds is its startup rule: the *first* registration must succeed, or ``serve`` stops
with one line naming the name server it could not reach, or what it refused
(:class:`NameServerError`).
"""

from __future__ import annotations

from typing import Any

from Pyro4 import errors
from Pyro4.core import URI
from twisted.internet import defer

from ..nameserver import KeptRegistration, keep_registered

__all__ = ["NameServerError", "keep_name"]


class NameServerError(Exception):
    """No name server could be found, or it refused a registration."""


def _where(ns_host: str | None, ns_port: int | None) -> str:
    if ns_host is None and ns_port is None:
        return "where Pyro4.locateNS looks"
    from Pyro4.configuration import config

    return "at %s:%d" % (ns_host or config.NS_HOST, ns_port or config.NS_PORT)


def _error(name: str, exc: BaseException, ns_host: str | None,
           ns_port: int | None) -> NameServerError:
    """The first registration's failure, said as a person needs it."""
    if isinstance(exc, errors.NamingError) and str(exc) == "Failed to locate the nameserver":
        return NameServerError("cannot register %r: no name server %s (%s)" % (
            name, _where(ns_host, ns_port), exc.__cause__ or exc))
    return NameServerError("cannot register %r in the name server: %s: %s" % (
        name, type(exc).__name__, exc))


async def keep_name(name: str, uri: URI, kept: list[KeptRegistration], *,
                    ns_host: str | None = None, ns_port: int | None = None,
                    hmac_key: bytes | None = None, interval: float | None = None,
                    reactor: Any = None) -> KeptRegistration:
    """Keep ``name`` → ``uri`` registered; returns once it is registered the first time.

    The keeper is appended to ``kept`` at once, so that whoever stops the command while
    this waits stops it too (and it removes the name if it got that far). Raises
    :class:`NameServerError` if the first registration fails (the keeper is in ``kept``,
    to be stopped by the caller).
    """
    options: dict[str, Any] = {} if interval is None else {"interval": interval}
    keeper = keep_registered(name, uri, ns_host=ns_host, ns_port=ns_port, hmac_key=hmac_key,
                             reactor=reactor, **options)
    kept.append(keeper)
    try:
        await keeper.when_registered(fail_fast=True)
    except defer.CancelledError:
        raise
    except Exception as exc:  # (a name server may raise anything)
        raise _error(name, exc, ns_host, ns_port) from exc
    return keeper
