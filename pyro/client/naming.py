"""Name resolution with the native client: ``PYRONAME:`` and ``PYROMETA:`` URIs.

The name server is an ordinary Pyro4 object (``Pyro.NameServer``), so it is called with a
:class:`~pyro.client.proxy.DeferredProxy` like any other. Patience (waiting for a name
server that is not up yet) is a retry loop on the reactor's clock, not a sleeping thread.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from Pyro4 import constants, errors
from Pyro4.configuration import config
from Pyro4.core import URI
from twisted.application.internet import backoffPolicy
from twisted.internet import defer, task
from twisted.logger import Logger

if TYPE_CHECKING:
    from .proxy import DeferredProxy

__all__ = ["default_backoff", "locate_ns", "resolve"]

log = Logger()


def default_backoff() -> Callable[[int], float]:
    # Twisted's ClientService policy, a little quicker to start: the usual reason a Pyro4
    # server is gone is a restart, which takes a second or two.
    return backoffPolicy(initialDelay=0.5, factor=1.5, maxDelay=30.0)


def _ns_uri_for(host: str | None, port: int | None) -> str:
    host = host or config.NS_HOST
    if URI.isUnixsockLocation(host):
        return "PYRO:%s@%s" % (constants.NAMESERVER_NAME, host)
    if ":" in host:
        host = "[%s]" % host
    return "PYRO:%s@%s:%d" % (constants.NAMESERVER_NAME, host, port or config.NS_PORT)


def locate_ns(host: str | None = None, port: int | None = None, *,
              ns_uri: str | URI | None = None, reactor: Any = None,
              hmac_key: bytes | str | None = None,
              timeout: float | None = None) -> defer.Deferred[DeferredProxy]:
    """A connected :class:`DeferredProxy` for the name server (close it when done).

    The name server is at ``ns_uri`` if given, else at ``host:port`` (defaults
    ``Pyro4.config.NS_HOST`` / ``NS_PORT``). Fails with ``NamingError`` like Pyro4's
    ``locateNS``; broadcast lookup is not offered.
    """
    from .proxy import DeferredProxy  # the proxy module imports this one

    async def locate() -> DeferredProxy:
        proxy = DeferredProxy(ns_uri or _ns_uri_for(host, port), reactor=reactor,
                              hmac_key=hmac_key, max_connections=1, timeout=timeout,
                              backoff=lambda attempt: 0.0)
        try:
            await proxy.connect()
        except errors.PyroError as exc:
            await proxy.close()
            raise errors.NamingError("Failed to locate the nameserver") from exc
        except BaseException:
            await proxy.close()
            raise
        return proxy

    return defer.Deferred.fromCoroutine(locate())


def resolve(uri: str | URI, *, reactor: Any = None, hmac_key: bytes | str | None = None,
            ns_uri: str | URI | None = None, patient: bool = False, max_tries: int = 20,
            backoff: Callable[[int], float] | None = None,
            timeout: float | None = None) -> defer.Deferred[URI]:
    """Resolve a ``PYRONAME:``/``PYROMETA:`` URI to a ``PYRO:`` URI (a ``PYRO:`` URI as is).

    With ``patient=True`` a name server that is not there yet, or a name not registered yet,
    is retried after ``backoff(attempt)`` seconds on the reactor's clock, up to
    ``max_tries`` attempts in all; the last error is the one reported.
    """
    uri = uri if isinstance(uri, URI) else URI(uri)
    if uri.protocol == "PYRO":
        return defer.succeed(uri)
    if uri.protocol not in ("PYRONAME", "PYROMETA"):
        return defer.fail(errors.PyroError("invalid uri protocol"))
    policy = backoff or default_backoff()
    if ns_uri is None:  # the name server named in the URI, else Pyro4's configured one
        ns_uri = _ns_uri_for("./u:" + uri.sockname if uri.sockname else uri.host, uri.port)

    async def lookup() -> URI:
        for attempt in itertools.count(1):
            try:
                ns = await locate_ns(ns_uri=ns_uri, reactor=reactor, hmac_key=hmac_key,
                                     timeout=timeout)
                try:
                    if uri.protocol == "PYRONAME":
                        found = await ns.lookup(uri.object)
                    else:
                        candidates = await ns.list(metadata_all=uri.object)
                        if not candidates:
                            raise errors.NamingError("no registrations available with desired "
                                                     "metadata properties %s" % uri.object)
                        found = random.choice(list(candidates.values()))
                finally:
                    await ns.close()
                return found if isinstance(found, URI) else URI(found)
            except (errors.CommunicationError, errors.NamingError) as exc:
                if not patient or attempt >= max_tries:
                    raise
                delay = policy(attempt)
                log.info("resolving {uri}: {error}; attempt {attempt} of {tries}, next in "
                         "{delay:.2f} s", uri=str(uri), error=str(exc), attempt=attempt,
                         tries=max_tries, delay=delay)
                clock = reactor
                if clock is None:
                    from twisted.internet import reactor as clock
                await task.deferLater(clock, delay, lambda: None)
        raise AssertionError("unreachable")

    return defer.Deferred.fromCoroutine(lookup())
