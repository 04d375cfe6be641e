"""Name resolution with the native client: ``PYRONAME:`` and ``PYROMETA:`` URIs.

The name server is an ordinary Pyro4 object (``Pyro.NameServer``), so it is called with a
:class:`~pyro.client.proxy.DeferredProxy` like any other. Finding it follows Pyro4 4.82's
``locateNS`` step by step (direct connection to a local name server, then a UDP broadcast
query, then ``Pyro4.config.NS_HOST``), but every wait is on the reactor: the broadcast query
is a Twisted ``DatagramProtocol`` whose timeouts are ``callLater`` calls, not a blocking
``recvfrom``. Patience (waiting for a name server that is not up yet) is a retry loop on the
reactor's clock, not a sleeping thread.

Both generations: with ``codec=PYRO5`` (what a ``DeferredProxy(..., pyro_version=5)``
passes) the name server is reached through Pyro5 proxies, ``Pyro5.config`` is read instead
of ``Pyro4.config``, URIs and errors are Pyro5's, and ``PYROMETA:`` asks ``yplookup`` as
Pyro5's ``resolve`` does (Pyro4's asks ``list(metadata_all=...)``). The steps of
``locate_ns`` are the same in Pyro4 4.82 and Pyro5 5.17.
"""

from __future__ import annotations

import itertools
import os
import random
import sys
from collections.abc import Callable
from typing import Any

from Pyro4 import constants
from Pyro4.configuration import config
from Pyro4.core import URI
from twisted.application.internet import backoffPolicy
from twisted.internet import defer, task
from twisted.internet.abstract import isIPAddress
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorUDP
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from .._reactor import default_reactor
from ..wire.pyro4 import PYRO4

__all__ = ["BROADCAST_TRIES", "BROADCAST_WAIT", "default_backoff", "locate_ns", "resolve"]

log = Logger(namespace="pyro.client.naming")

#: The class name server proxies are made of: :class:`pyro.client.proxy.DeferredProxy`, which
#: puts itself here when its module is imported. (The proxy resolves ``PYRONAME:`` URIs with
#: this module, so this module must not import it: the import points one way.)
proxy_class: Callable[..., Any] | None = None

#: Rounds of the broadcast query (``GET_NSURI`` to every ``Pyro4.config.BROADCAST_ADDRS``)
#: and the seconds each round waits for an answer: Pyro4's ``locateNS`` values (3 x 0.7 s).
#: Read at every lookup, so tests and impatient programs may change them.
BROADCAST_TRIES = 3
BROADCAST_WAIT = 0.7

#: Pyro4 also tries 127.0.1.1 (Debian maps the host name there) when that address has a name.
_DEBIAN_HOST_ADDRESS = "127.0.1.1"

if sys.platform == "win32":  # pragma: no cover -- the path Twisted's own hosts resolver uses
    _HOSTS_FILE = os.path.join(os.environ.get("SystemRoot", r"C:\Windows"),
                               "System32", "drivers", "etc", "hosts")
else:
    _HOSTS_FILE = "/etc/hosts"


def default_backoff() -> Callable[[int], float]:
    # Twisted's ClientService policy, a little quicker to start: the usual reason a Pyro4
    # server is gone is a restart, which takes a second or two.
    return backoffPolicy(initialDelay=0.5, factor=1.5, maxDelay=30.0)


def _ns_uri_for(host: str | None, port: int | None, config: Any = config) -> str:
    host = host or config.NS_HOST
    if URI.isUnixsockLocation(host):
        return "PYRO:%s@%s" % (constants.NAMESERVER_NAME, host)
    if ":" in host:
        host = "[%s]" % host
    return "PYRO:%s@%s:%d" % (constants.NAMESERVER_NAME, host, port or config.NS_PORT)


def _has_host_name(address: str, hosts_file: str | None = None) -> bool:
    """Whether the hosts file gives ``address`` a name.

    Pyro4 asks ``socket.gethostbyaddr("127.0.1.1")``, which may block on DNS; the hosts file
    is where Debian-like systems put that address, and reading a small local file does not
    stall the reactor the way a resolver round trip could.
    """
    try:
        with open(hosts_file or _HOSTS_FILE, encoding="utf-8", errors="replace") as file:
            for line in file:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and fields[0] == address:
                    return True
    except OSError:
        pass
    return False


def _local_ns_hosts(config: Any = config) -> list[str]:
    """The hosts Pyro4's ``locateNS`` tries directly first, when ``NS_HOST`` looks local."""
    ns_host = config.NS_HOST
    if not (ns_host in ("localhost", "::1") or ns_host.startswith("127.")):
        return []
    if ":" in ns_host or ns_host == _DEBIAN_HOST_ADDRESS:
        return [ns_host]
    if _has_host_name(_DEBIAN_HOST_ADDRESS):
        return [ns_host, _DEBIAN_HOST_ADDRESS]
    return [ns_host]


def _broadcast_addresses(config: Any = config) -> list[str]:
    """``Pyro4.config.BROADCAST_ADDRS`` as addresses an IPv4 Twisted UDP port can send to.

    Python's ``sendto`` takes ``""`` for INADDR_ANY and resolves host names (blocking);
    Twisted's UDP transport takes IP literals and ``"<broadcast>"`` only. So ``""`` becomes
    ``0.0.0.0`` and anything else that is not an IPv4 literal is left out, with a warning.
    (``Pyro5.config.BROADCAST_ADDRS`` is a list already; Pyro4's a comma-separated string.)
    """
    addresses = []
    configured = config.BROADCAST_ADDRS
    if isinstance(configured, str):
        configured = config.parseAddressesString(configured)
    for address in configured:
        address = address or "0.0.0.0"
        if address == "<broadcast>" or isIPAddress(address):
            addresses.append(address)
        else:
            log.warn("name server broadcast: skipping {address!r} in BROADCAST_ADDRS, not an "
                     "IPv4 address", address=address)
    return addresses


class _NameServerQuery(DatagramProtocol):
    """One broadcast lookup: send ``GET_NSURI``, wait for a Pyro4 ``BroadcastServer``'s answer.

    ``answer`` fires with the first reply that is a ``PYRO:`` URI, or ``None`` after
    ``tries`` rounds of ``wait`` seconds without one. Like Pyro4, a reply to an earlier
    round still counts in a later one (it is one socket throughout). Unlike Pyro4, a reply
    that is not a ``PYRO:`` URI with a host and a valid port is ignored rather than fatal:
    anything on the network may answer a broadcast. The owner closes the port; :meth:`stop` only ends the timer.
    """

    noisy = False

    def __init__(self, clock: Any, addresses: list[str], port: int, tries: int,
                 wait: float, codec: Any = PYRO4) -> None:
        self.answer: defer.Deferred[URI | None] = defer.Deferred()
        self._codec = codec
        self._clock = clock
        self._addresses = addresses
        self._port = port
        self._tries_left = max(1, tries)
        self._wait = wait
        self._timer: Any = None

    def startProtocol(self) -> None:
        # Twisted's UDP ports do not broadcast unless told (Pyro4's createBroadcastSocket
        # sets SO_BROADCAST too)
        assert self.transport is not None
        self.transport.setBroadcastAllowed(True)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        for address in self._addresses:
            try:
                self.transport.write(b"GET_NSURI", (address, self._port))
            except OSError as exc:
                # e.g. ENETUNREACH for <broadcast> without a route; Pyro4 would give up on
                # the whole lookup for most errno values, one bad address should not
                log.debug("name server broadcast to {address}:{port} failed: {error}",
                          address=address, port=self._port, error=exc)
        self._timer = self._clock.callLater(self._wait, self._round_over)

    def _round_over(self) -> None:
        self._timer = None
        self._tries_left -= 1
        if self._tries_left > 0:
            self._send()
        elif not self.answer.called:
            self.answer.callback(None)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        if self.answer.called:
            return
        try:  # Pyro's encoding of the reply (both generations)
            uri = self._codec.uri_class(datagram.decode("iso-8859-1"))
        except self._codec.errors.PyroError:
            uri = None
        if uri is None or uri.protocol != "PYRO" or not uri.host or not 0 < uri.port < 65536:
            log.debug("name server broadcast: ignoring a reply from {sender} that is not a "
                      "PYRO: URI with a network location: {reply!r}", sender=addr,
                      reply=datagram[:100])
            return
        log.debug("name server broadcast: {uri} (from {sender})", uri=str(uri), sender=addr)
        self.stop()
        self.answer.callback(uri)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def _broadcast_lookup(clock: Any, port: int, codec: Any = PYRO4) -> URI | None:
    """The name server's URI from a broadcast query to ``port``, or ``None`` if none answered.

    The UDP port is closed in every outcome (answer, silence, error, cancellation) and the
    lookup waits until it is gone, so that trial finds a clean reactor.
    """
    if not IReactorUDP.providedBy(clock):
        log.debug("name server broadcast skipped: {reactor!r} has no UDP", reactor=clock)
        return None
    addresses = _broadcast_addresses(codec.config)
    if not addresses:
        return None
    query = _NameServerQuery(clock, addresses, port, BROADCAST_TRIES, BROADCAST_WAIT, codec)
    try:
        # an ephemeral port on every interface, as Pyro4's unbound broadcast socket
        udp = clock.listenUDP(0, query, interface="", maxPacketSize=8192)
    except CannotListenError as exc:
        log.warn("name server broadcast skipped: {error}", error=exc)
        return None
    try:
        return await query.answer
    finally:
        query.stop()
        stopped = udp.stopListening()
        if stopped is not None:
            await stopped


def locate_ns(host: str | None = None, port: int | None = None, *, broadcast: bool = True,
              ns_uri: str | URI | None = None, reactor: Any = None,
              hmac_key: bytes | str | None = None,
              timeout: float | None = None, codec: Any = PYRO4) -> defer.Deferred[Any]:
    """A connected :class:`DeferredProxy` for the name server (close it when done).

    It looks where Pyro4 4.82's ``locateNS(host, port, broadcast, hmac_key)`` looks, in
    the same order, so that a program moving to the native client finds the same name
    server; only the waiting is done on the reactor instead of in blocking sockets:

    - ``ns_uri`` given: that name server, nothing else (not a Pyro4 argument).
    - ``host`` given: ``host:port`` (``port`` defaults to ``Pyro4.config.NS_PORT``).
    - no ``host``:

      1. if ``Pyro4.config.NS_HOST`` looks local (``localhost``, ``::1``, ``127.*``), a
         direct connection to it on ``port or NS_PORT`` (then to ``127.0.1.1`` too when the
         hosts file names that address, where Pyro4 asks ``gethostbyaddr``);
      2. unless ``broadcast`` is false or ``Pyro4.config.PREFER_IP_VERSION`` is 6, a UDP
         query: ``b"GET_NSURI"`` to each of ``BROADCAST_ADDRS`` on ``port or NS_BCPORT``
         (yes, Pyro4 uses ``port`` as the UDP port here), :data:`BROADCAST_TRIES` rounds of
         :data:`BROADCAST_WAIT` seconds; the first ``PYRO:`` URI that comes back is the name
         server, and a failure to connect to it is final, as in Pyro4;
      3. ``NS_HOST:NS_PORT`` (``port`` is not used here, as in Pyro4), unless step 1 just
         tried that very address.

    ``Pyro4.config`` is read when the lookup runs. A reactor without UDP (e.g.
    ``MemoryReactor``) skips step 2. Fails with ``NamingError("Failed to locate the
    nameserver")`` like Pyro4; cancelling the Deferred stops the lookup and closes what it
    opened. ``timeout`` is the proxy's call timeout (see :class:`DeferredProxy`).
    ``codec=pyro.wire.pyro5.PYRO5``: Pyro5's name server, found the same way through
    ``Pyro5.config`` (its ``locate_ns`` takes the same steps), as a Pyro5 proxy.
    """
    make_proxy = proxy_class
    assert make_proxy is not None, "pyro.client.proxy was not imported"
    clock = default_reactor(reactor)
    config, errors = codec.config, codec.errors  # the generation's

    async def connect(uri: str | URI) -> Any:
        log.debug("locating the name server: {uri}", uri=str(uri))
        proxy = make_proxy(uri, reactor=clock, hmac_key=hmac_key, max_connections=1,
                           timeout=timeout, backoff=lambda attempt: 0.0,
                           pyro_version=codec.pyro_version)
        try:
            await proxy.connect()
        except errors.PyroError as exc:
            await proxy.close()
            raise errors.NamingError("Failed to locate the nameserver") from exc
        except BaseException:
            await proxy.close()
            raise
        return proxy

    async def locate() -> Any:
        if ns_uri is not None:
            return await connect(ns_uri)
        if host is not None:
            return await connect(_ns_uri_for(host, port, config))
        tried: set[str] = set()
        last_error: Exception | None = None
        for local_host in _local_ns_hosts(config):
            uri = _ns_uri_for(local_host, port, config)
            tried.add(uri)
            try:
                return await connect(uri)
            except errors.NamingError as exc:
                last_error = exc
        if broadcast and config.PREFER_IP_VERSION == 6:
            log.debug("name server broadcast skipped: IPv6 has no broadcast")
        elif broadcast:
            found = await _broadcast_lookup(clock, port or config.NS_BCPORT, codec)
            if found is not None:
                return await connect(found)
            log.debug("name server broadcast: no answer")
        fallback = _ns_uri_for(config.NS_HOST, config.NS_PORT, config)
        if fallback in tried and last_error is not None:
            raise last_error
        return await connect(fallback)

    return defer.Deferred.fromCoroutine(locate())


def resolve(uri: str | URI, *, reactor: Any = None, hmac_key: bytes | str | None = None,
            ns_uri: str | URI | None = None, patient: bool = False, max_tries: int = 20,
            backoff: Callable[[int], float] | None = None,
            timeout: float | None = None, broadcast: bool = True,
            codec: Any = PYRO4) -> defer.Deferred[URI]:
    """Resolve a ``PYRONAME:``/``PYROMETA:`` URI to a ``PYRO:`` URI (a ``PYRO:`` URI as is).

    The name server is ``ns_uri`` if given, else the one the URI names, else the one
    :func:`locate_ns` finds as Pyro4's ``resolve`` would (local, ``broadcast``, ``NS_HOST``).
    With ``patient=True`` a name server that is not there yet, or a name not registered yet,
    is retried after ``backoff(attempt)`` seconds on the reactor's clock, up to
    ``max_tries`` attempts in all, each a full lookup; the last error is the one reported.
    With ``codec=PYRO5``: through a Pyro5 name server, to a ``Pyro5.core.URI``.
    """
    uri_class, errors = codec.uri_class, codec.errors
    uri = uri if isinstance(uri, uri_class) else uri_class(str(uri))
    if uri.protocol == "PYRO":
        return defer.succeed(uri)
    if uri.protocol not in ("PYRONAME", "PYROMETA"):
        return defer.fail(errors.PyroError("invalid uri protocol"))
    policy = backoff or default_backoff()
    # Pyro4 passes the URI's host and port to locateNS; a UNIX socket location is kept too
    ns_host = "./u:" + uri.sockname if uri.sockname else uri.host

    async def lookup() -> URI:
        for attempt in itertools.count(1):
            try:
                ns = await locate_ns(ns_host, uri.port, broadcast=broadcast, ns_uri=ns_uri,
                                     reactor=reactor, hmac_key=hmac_key, timeout=timeout,
                                     codec=codec)
                try:
                    if uri.protocol == "PYRONAME":
                        found = await ns.lookup(uri.object)
                    else:
                        if codec.pyro_version == 4:
                            candidates = await ns.list(metadata_all=uri.object)
                        else:  # as Pyro5's resolve asks
                            candidates = await ns.yplookup(uri.object, None, False)
                        if not candidates:
                            raise errors.NamingError("no registrations available with desired "
                                                     "metadata properties %s" % uri.object)
                        found = random.choice(list(candidates.values()))
                finally:
                    await ns.close()
                return found if isinstance(found, uri_class) else uri_class(found)
            except (errors.CommunicationError, errors.NamingError) as exc:
                if not patient or attempt >= max_tries:
                    raise
                delay = policy(attempt)
                log.info("resolving {uri}: {error}; attempt {attempt} of {tries}, next in "
                         "{delay:.2f} s", uri=str(uri), error=str(exc), attempt=attempt,
                         tries=max_tries, delay=delay)
                await task.deferLater(default_reactor(reactor), delay, lambda: None)
        raise AssertionError("unreachable")

    return defer.Deferred.fromCoroutine(lookup())
