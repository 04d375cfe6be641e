"""``serve --ns``: a name registered in the name server at startup, removed at shutdown.

A stand-in for ``pyro.nameserver.keep_registered(name, uri, *, ns_host=None, ns_port=None,
hmac_key=None, reactor=None)`` (which also re-registers when the name server comes back),
with its shape: the same arguments, and a handle whose ``stop()`` returns a Deferred. Unlike
it, :func:`register_once` waits for the registration, so that a name server that cannot be
reached stops the command at startup; swapping it is one line in :mod:`pyro.cli.startup`.
"""

from __future__ import annotations

from typing import Any

from Pyro4 import errors
from Pyro4.core import URI
from twisted.internet import defer
from twisted.logger import Logger

from ..client import locate_ns

__all__ = ["NameServerError", "register_once"]

log = Logger(namespace="pyro.cli")


class NameServerError(Exception):
    """No name server could be found, or it refused a registration."""


def _where(ns_host: str | None, ns_port: int | None) -> str:
    if ns_host is None and ns_port is None:
        return "where Pyro4.locateNS looks"
    from Pyro4.configuration import config

    return "at %s:%d" % (ns_host or config.NS_HOST, ns_port or config.NS_PORT)


async def _name_server(ns_host: str | None, ns_port: int | None,
                       hmac_key: bytes | None, reactor: Any) -> Any:
    try:
        return await locate_ns(ns_host, ns_port, hmac_key=hmac_key, reactor=reactor)
    except errors.NamingError as exc:
        cause = exc.__cause__
        raise NameServerError("no name server %s (%s)" % (
            _where(ns_host, ns_port), cause or exc)) from exc


class _Registered:
    def __init__(self, name: str, uri: URI, ns_host: str | None, ns_port: int | None,
                 hmac_key: bytes | None, reactor: Any) -> None:
        self.name, self.uri = name, uri
        self._where = (ns_host, ns_port, hmac_key, reactor)

    def stop(self) -> defer.Deferred[None]:
        """Remove the name, if it still names our object; a failure is logged, not raised."""
        return defer.Deferred.fromCoroutine(self._remove())

    async def _remove(self) -> None:
        try:
            ns = await _name_server(*self._where)
            try:
                if str(await ns.lookup(self.name)) == str(self.uri):
                    await ns.remove(self.name)
                    log.info("removed {name} from the name server", name=self.name)
                else:
                    log.info("left {name} in the name server: it names another object now",
                             name=self.name)
            finally:
                await ns.close()
        except (errors.PyroError, NameServerError) as exc:
            log.warn("could not remove {name} from the name server: {error}",
                     name=self.name, error=exc)


async def register_once(name: str, uri: URI, *, ns_host: str | None = None,
                        ns_port: int | None = None, hmac_key: bytes | None = None,
                        reactor: Any = None) -> _Registered:
    """Register ``name`` → ``uri``; a handle whose ``stop()`` removes it again."""
    try:
        ns = await _name_server(ns_host, ns_port, hmac_key, reactor)
    except NameServerError as exc:
        raise NameServerError("cannot register %r: %s" % (name, exc)) from exc
    try:
        await ns.register(name, uri)
        log.info("registered {name} in the name server {ns}", name=name, ns=str(ns.uri))
    except errors.PyroError as exc:
        raise NameServerError("the name server refused %s: %s" % (name, exc)) from exc
    finally:
        await ns.close()
    return _Registered(name, uri, ns_host, ns_port, hmac_key, reactor)
