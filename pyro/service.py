"""Twisted services: a Pyro4 server and a Pyro4 name server for ``.tac`` files and ``twistd``.

Both are ``IService`` providers, so they go into a ``MultiService`` or an ``Application``
like any Twisted service::

    from twisted.application import service
    from pyro.protocol import Pyro4ProtocolFactory
    from pyro.service import NameServerService, ServerService

    application = service.Application("pyro")
    factory = Pyro4ProtocolFactory()
    ServerService(factory, "tcp:9090:interface=127.0.0.1").setServiceParent(application)
    NameServerService("tcp:9091").setServiceParent(application)

:class:`ServerService` binds in ``privilegedStartService`` (before ``twistd`` drops its
privileges), as ``twisted.application.internet.StreamServerEndpointService`` does, and a
port that cannot be bound there raises at once. Stopping it drains its factory
(:meth:`~pyro.server.factory.Pyro4ProtocolFactory.drain`): no new connections, calls in
progress answered (for up to ``grace`` seconds), then closed; ``stopService`` fires when that
is done, and ``twistd`` (or the reactor's shutdown) waits for it.
"""

from __future__ import annotations

from typing import Any

from Pyro4.core import URI
from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.address import IPv6Address, UNIXAddress
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.failure import Failure

from .nameserver import listen_broadcast, register_name_server
from .server.factory import Pyro4ProtocolFactory
from .storage import open_storage

__all__ = ["BroadcastListenError", "DEFAULT_GRACE", "NameServerService", "ServerService",
           "describe_address"]

log = Logger(namespace="pyro.service")

#: Seconds calls in progress may take to finish when a service stops.
DEFAULT_GRACE = 10.0


def describe_address(address: Any) -> str:
    """``127.0.0.1:9090``, ``[::1]:9090`` or a UNIX socket's path, for messages."""
    if isinstance(address, UNIXAddress):
        name = address.name
        return name.decode() if isinstance(name, bytes) else str(name)
    host = getattr(address, "host", None)
    if host is None:
        return str(address)
    if isinstance(address, IPv6Address):
        return "[%s]:%d" % (host, address.port)
    return "%s:%d" % (host, address.port)


class BroadcastListenError(CannotListenError):
    """The UDP port for the name server's broadcast responder cannot be bound."""


class ServerService(Service):
    """Serve ``factory`` on ``endpoint`` (an ``IStreamServerEndpoint`` or an endpoint string
    such as ``"tcp:9090:interface=127.0.0.1"`` or ``"systemd:domain=INET:index=0"``).

    Several services may share one factory (one per port); stopping any of them drains the
    factory, so they stop together. :meth:`whenListening` fires with the listening port.
    """

    def __init__(self, factory: Pyro4ProtocolFactory, endpoint: Any,
                 grace: float | None = DEFAULT_GRACE) -> None:
        self.factory = factory
        self.endpoint = endpoint
        self.grace = grace
        self.port: Any = None
        self._listening: defer.Deferred[Any] | None = None
        self._failure: Failure | None = None
        self._waiters: list[defer.Deferred[Any]] = []
        self._binding = False

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        self._listen()

    def startService(self) -> None:
        Service.startService(self)
        self._listen()

    def _listen(self) -> None:
        if self._listening is not None:
            return
        self._binding = True
        try:
            self._listening = self.factory.listen(self.endpoint)
            self._listening.addCallbacks(self._listened, self._not_listening)
        finally:
            self._binding = False
        if self._failure is not None:  # failed at once: raise, as twistd's services do
            self._failure.raiseException()

    def _listened(self, port: Any) -> None:
        self.port = port
        log.info("listening on {address}", address=describe_address(port.getHost()),
                 endpoint=self.endpoint)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(port)

    def _not_listening(self, failure: Failure) -> None:
        self._failure = failure
        if not self._binding and not failure.check(defer.CancelledError):
            log.failure("cannot listen on {endpoint}", failure, endpoint=self.endpoint)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(failure)

    def whenListening(self) -> defer.Deferred[Any]:
        """A Deferred of the listening port (or of the reason there is none)."""
        if self.port is not None:
            return defer.succeed(self.port)
        if self._failure is not None:
            return defer.fail(self._failure)
        waiter: defer.Deferred[Any] = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        if self._listening is not None and not self._listening.called:
            self._listening.cancel()
        return self.factory.drain(self.grace)


class NameServerService(MultiService):
    """A Pyro4 name server on ``endpoint``, as ``python -m Pyro4.naming`` runs one.

    :param broadcast: answer ``Pyro4.locateNS()``'s UDP queries, on ``bchost:bcport``
        (default ``Pyro4.config.NS_BCHOST``/``NS_BCPORT``). As in Pyro4, not for a name server
        on a loopback address or on IPv6 (unless ``bchost`` is given, for loopback).
    :param storage: a storage URL (``memory``, ``dbm:PATH``, ``sql:PATH``) or one of Pyro4's
        storage objects; opened in ``privilegedStartService`` and closed when stopped.
    :param autoclean: Pyro4's ``NS_AUTOCLEAN`` (seconds), passed to
        :func:`pyro.nameserver.register_name_server`.
    :param hmac_key: the HMAC key clients must use.
    :param host: the host that URIs name (Pyro4 names the host it was given, e.g.
        ``localhost``); default: the address the port is bound to.
    :param nathost: the host (and ``natport``, default: the bound port) that URIs name when
        the name server is reached through NAT, as Pyro4's ``--nathost``/``--natport``.

    ``ready`` fires with the name server's URI once it serves; ``nameserver``, ``uri``,
    ``internal_uri`` and ``broadcast_port`` (or ``broadcast_note``: why there is none) are
    set then.
    """

    def __init__(self, endpoint: Any, broadcast: bool = True, storage: Any = None,
                 autoclean: float | None = None, hmac_key: bytes | str | None = None, *,
                 bchost: str | None = None, bcport: int | None = None,
                 host: str | None = None, nathost: str | None = None,
                 natport: int | None = None, grace: float | None = DEFAULT_GRACE,
                 reactor: Any = None) -> None:
        MultiService.__init__(self)
        self.factory = Pyro4ProtocolFactory(reactor=reactor)
        self.factory.noisy = False  # no "Starting factory" lines: the service says more
        self.server = ServerService(self.factory, endpoint, grace)
        self.server.setServiceParent(self)
        self.broadcast = broadcast
        self.storage = storage
        self.autoclean = autoclean
        self.hmac_key = hmac_key
        self.bchost, self.bcport = bchost, bcport
        self.host = host
        self.nathost, self.natport = nathost, natport
        self.ready: defer.Deferred[URI] = defer.Deferred()
        self.nameserver: Any = None
        self.uri: URI | None = None
        self.internal_uri: URI | None = None
        self.broadcast_port: Any = None
        self.broadcast_note: str | None = None
        self._store: Any = None
        self._starting: defer.Deferred[Any] | None = None

    def privilegedStartService(self) -> None:
        self._open_storage()
        MultiService.privilegedStartService(self)

    def _open_storage(self) -> None:
        if self._store is None:
            storage = "memory" if self.storage is None else self.storage  # (may be empty)
            self._store = open_storage(storage) if isinstance(storage, str) else storage

    def startService(self) -> None:
        self._open_storage()
        MultiService.startService(self)
        self._starting = self.server.whenListening().addCallback(self._serve)
        self._starting.chainDeferred(self.ready)

    def _serve(self, port: Any) -> URI:
        self._starting = None
        address = port.getHost()
        if self.host and not isinstance(address, UNIXAddress):
            self.factory.setAddress(self.host, address.port)
        if self.nathost:
            natport = self.natport or address.port
            self.factory.natLocationStr = "%s:%d" % (self.nathost, natport)
        self.nameserver, self.uri = register_name_server(
            self.factory, self._store, autoclean=self.autoclean, hmac_key=self.hmac_key)
        self.internal_uri = self.factory.uriFor(self.nameserver, nat=False)
        self.broadcast_note = self._broadcast_refused(address)
        if self.broadcast_note is None:
            interface = self.bchost
            if interface is None and isinstance(address, UNIXAddress):
                interface = ""  # every interface, as Pyro4's BroadcastServer binds by default
            try:
                self.broadcast_port = listen_broadcast(
                    self.internal_uri, self.factory.reactor, interface=interface,
                    port=self.bcport)
            except CannotListenError as exc:
                raise BroadcastListenError(exc.interface, exc.port, exc.socketError) from exc
            log.info("answering name server queries (broadcast) on {address}",
                     address=describe_address(self.broadcast_port.getHost()))
        else:
            log.info("{note}", note=self.broadcast_note)
        log.info("name server {uri} serving", uri=str(self.uri))
        return self.uri

    def _broadcast_refused(self, address: Any) -> str | None:
        """Why no broadcast responder is started (Pyro4's words), or None."""
        if not self.broadcast:
            return "Not starting broadcast server."
        if isinstance(address, IPv6Address):
            return "Not starting broadcast server for IPv6."
        host = getattr(address, "host", "")
        if self.bchost is None and (host.startswith("127.") or host == "::1"):
            return "Not starting broadcast server for localhost."
        return None

    def stopService(self) -> defer.Deferred[None]:
        if self.uri is not None and self.running:
            log.info("name server {uri} shutting down", uri=str(self.uri))
        if self._starting is not None:
            self._starting.cancel()
        waits = []
        if self.broadcast_port is not None:
            waits.append(defer.maybeDeferred(self.broadcast_port.stopListening))
            self.broadcast_port = None
        waits.append(MultiService.stopService(self))
        return defer.gatherResults(waits, consumeErrors=True).addBoth(self._close_storage)

    def _close_storage(self, result: Any) -> Any:
        store, self._store = self._store, None
        close = getattr(store, "close", None)
        if close is not None:
            close()
        return None if not isinstance(result, Failure) else result
