"""Pyro4's name server, served from the reactor, to Pyro4 and Pyro5 clients from one registry.

Pyro4's ``NameServer`` is an ordinary servant: :func:`register_name_server` puts one on a
:class:`~pyro.protocol.Pyro4ProtocolFactory` as Pyro4's ``NameServerDaemon`` puts it on its
daemon (well-known object id ``Pyro.NameServer``, listed in itself). :class:`BroadcastResponder`
answers the UDP ``GET_NSURI`` queries with which ``Pyro4.locateNS()`` (and
:func:`pyro.client.locate_ns`) look for a name server when none is at ``NS_HOST``, as Pyro4's
``BroadcastServer`` does, but on the reactor instead of in a thread of its own.

Pyro5 clients of the same factory get Pyro5's ``NameServer`` under the same object id, over
the same storage (see :func:`register_name_server`): a name registered by either generation
resolves for both, and the broadcast answer suits both.

``NS_AUTOCLEAN`` (:mod:`pyro.nameserver.autoclean`) removes the registrations whose servers
are gone, on the reactor's clock, and :func:`keep_registered`
(:mod:`pyro.nameserver.registration`) keeps a name registered through name server restarts.
"""

from __future__ import annotations

from typing import Any

import Pyro4.naming
from Pyro4 import constants, socketutil
from Pyro4.configuration import config
from Pyro4.core import URI
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from .. import wire
from .._reactor import default_reactor
from ..storage import StorageError, check_storage_url
from ..storage import open_storage as open_storage_url
from .autoclean import AutoCleaner, check_autoclean
from .registration import KeptRegistration, keep_registered

__all__ = ["REQUEST_NSURI", "AutoCleaner", "BroadcastResponder", "KeptRegistration",
           "keep_registered", "listen_broadcast", "open_storage", "register_name_server",
           "serve_name_server"]

log = Logger(namespace="pyro.nameserver")

#: What a client broadcasts to find a name server (Pyro4's ``BroadcastServer.REQUEST_NSURI``).
REQUEST_NSURI = b"GET_NSURI"


def open_storage(storage: Any = None) -> Any:
    """A name server storage: ``storage`` itself, or one made from Pyro4's spelling of it.

    As ``Pyro4.naming.NameServerDaemon(storage=...)`` (and ``python -m Pyro4.naming -s``)
    takes it: ``None`` or ``"memory"`` (in memory), ``"sql:FILE"`` (``SqlStorage``),
    ``"dbm:FILE"`` (``DbmStorage``, which drops metadata: a warning is logged), opened by
    :func:`pyro.storage.open_storage`; any other string is Pyro4's ``ValueError("invalid
    storage type ...")``.
    """
    if storage is None:  # (not ``storage or``: an empty storage is falsy)
        storage = "memory"
    if not isinstance(storage, str):
        return storage
    try:
        check_storage_url(storage)
    except StorageError:
        raise ValueError("invalid storage type '%s'" % storage) from None
    return open_storage_url(storage)


def register_name_server(factory: Any, storage: Any = None, autoclean: float | None = None,
                         hmac_key: bytes | str | None = None, *,
                         clock: Any = None) -> tuple[Pyro4.naming.NameServer, URI]:
    """Serve a Pyro4 name server on ``factory``: ``(nameserver, uri)``.

    ``storage`` is one of Pyro4's name server storages (default: in memory, as
    ``NameServerDaemon`` has it; ``Pyro4.naming_storage.SqlStorage(path)`` persists), or
    Pyro4's name for one (``"memory"``, ``"sql:FILE"``, ``"dbm:FILE"``: see
    :func:`open_storage`). The name
    server is listed in itself under ``Pyro.NameServer`` with the metadata
    ``class:Pyro4.naming.NameServer``, as Pyro4 does. Its methods run in the reactor thread
    (or the factory's thread pool); they only touch the storage, under its own lock.
    ``factory.close()`` closes the storage (``storage.close()``) once the connections are
    gone, as ``NameServerDaemon.close()`` does.

    ``autoclean`` is ``NS_AUTOCLEAN``: every that many seconds, registrations whose servers
    no longer accept connections (for 20 seconds) are removed, by an
    :class:`~pyro.nameserver.autoclean.AutoCleaner` on the factory's reactor (``clock``, if
    given, runs its timer instead), stopped when the factory closes; it is the name server's
    attribute ``cleaner`` (``None`` without cleaning). ``None`` (the default) reads
    ``Pyro4.config.NS_AUTOCLEAN`` now, as Pyro4's name server daemon reads it when created;
    0 (Pyro4's default) or less: no cleaning; below 3: ``ValueError``, as in Pyro4.

    ``hmac_key`` sets the factory's HMAC key (that of every object it serves; Pyro4's
    ``startNS(hmac=...)``); ``ValueError`` if the factory already has another one.

    Pyro5 clients of the factory (see its ``pyro_versions``) are served Pyro5's own
    ``Pyro5.nameserver.NameServer`` under the same object id, over the same storage: a name
    registered by either generation resolves for both, each getting URIs of its own
    generation (``nameserver.pyro5`` is that object).
    """
    interval = config.NS_AUTOCLEAN if autoclean is None else autoclean
    check_autoclean(interval)  # before anything is registered, as Pyro4 fails
    key = wire.hmac_key_bytes(hmac_key)
    if key is not None and factory._pyroHmacKey not in (None, key):
        raise ValueError("the factory already has a different HMAC key")
    storage = open_storage(storage)
    if key is not None:
        factory._pyroHmacKey = key
    nameserver = Pyro4.naming.NameServer(storage)
    uri = factory.register(nameserver, constants.NAMESERVER_NAME)
    nameserver.register(constants.NAMESERVER_NAME, uri,
                        metadata={"class:Pyro4.naming.NameServer"})
    _serve_to_pyro5(factory, nameserver)

    def close_storage() -> None:  # the storage it has then, as Pyro4's close() looks it up
        nameserver.storage.close()

    factory.add_close_hook(close_storage)
    cleaner = None
    if interval > 0:
        cleaner = AutoCleaner(nameserver, interval, reactor=factory.reactor, clock=clock)
        cleaner.start()
        factory.add_close_hook(cleaner.stop)  # hooks run last added first: before the storage
    else:
        log.debug("autoclean not enabled")
    nameserver.cleaner = cleaner
    return nameserver, uri


def _serve_to_pyro5(factory: Any, nameserver: Pyro4.naming.NameServer) -> Any:
    """Pyro5 clients of ``factory`` get Pyro5's ``NameServer`` under ``Pyro.NameServer``:
    the same storage and lock as the Pyro4 one, so both generations see one registry, each
    with its own API (Pyro5's ``list(prefix, regex, return_metadata)``, ``yplookup``) and
    its own URI class in answers. Nothing (None) when the factory serves no Pyro5 clients
    or Pyro5 is not installed."""
    if 5 not in getattr(factory, "pyro_versions", ()):
        return None
    try:
        import Pyro5.nameserver
    except (ImportError, ValueError):  # (ValueError: Pyro5 refuses Pyro4's PYRO_* variables)
        return None
    face = Pyro5.nameserver.NameServer(nameserver.storage)
    face.lock = nameserver.lock  # one registry: one lock (safe=True means the same to both)
    factory.pyro5_faces[constants.NAMESERVER_NAME] = face
    nameserver.pyro5 = face  # type: ignore[attr-defined]
    return face


class BroadcastResponder(DatagramProtocol):
    """Answers ``GET_NSURI`` datagrams with the name server's URI; ignores anything else.

    Pyro5's ``locate_ns()`` asks the same question and reads the answer the same way (a
    ``PYRO:`` URI as text, which both generations parse): one responder serves both.

    As in Pyro4, a URI whose host is ``0.0.0.0`` (a server listening on every interface) is
    answered with the address of the interface that reaches the asking client.

    :ivar requests: how many ``GET_NSURI`` queries were answered.
    """

    def __init__(self, ns_uri: URI | str) -> None:
        self.ns_uri = URI(ns_uri)
        self.requests = 0

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        if datagram != REQUEST_NSURI:
            log.debug("ignored a datagram from {host} that is not a name server query",
                      host=addr[0])
            return
        answer = URI(self.ns_uri)  # a copy: the host may be filled in per client
        if answer.host == "0.0.0.0":
            try:
                answer.host = socketutil.getInterfaceAddress(addr[0])
            except OSError:
                pass
        self.requests += 1
        log.debug("answering a name server query from {host}: {uri}", host=addr[0],
                  uri=str(answer))
        transport = self.transport
        if transport is not None:  # (None only once the port stopped listening)
            transport.write(str(answer).encode("iso-8859-1"), addr)


def listen_broadcast(ns_uri: URI | str, reactor: Any = None, interface: str | None = None,
                     port: int | None = None) -> Any:
    """Answer name server queries on UDP: the listening port (``stopListening()`` ends it).

    ``port`` defaults to ``Pyro4.config.NS_BCPORT`` and ``interface`` to
    ``Pyro4.config.NS_BCHOST``, else every interface (``""``, or ``"::"`` for an IPv6 name
    server), which a socket needs to hear broadcasts at all. Its ``protocol`` attribute is the
    :class:`BroadcastResponder`.
    """
    reactor = default_reactor(reactor)
    responder = BroadcastResponder(ns_uri)
    if interface is None:
        interface = config.NS_BCHOST or ("::" if ":" in responder.ns_uri.host else "")
    return reactor.listenUDP(config.NS_BCPORT if port is None else port, responder,
                             interface=interface)


async def serve_name_server(reactor: Any, host: str | None = None, port: int | None = None,
                            broadcast: bool = True, bchost: str | None = None,
                            bcport: int | None = None, hmac_key: bytes | None = None,
                            out: Any = None, storage: Any = None,
                            autoclean: float | None = None) -> Any:
    """``python -m pyro ns``: a name server on the reactor, as ``python -m Pyro4.naming``.

    Listens on ``host:port`` (default ``Pyro4.config.HOST`` and ``NS_PORT``) and, unless
    ``broadcast`` is false, answers broadcast queries on ``bchost:bcport`` (default
    ``NS_BCHOST``/``NS_BCPORT``); prints where, as Pyro4 does; returns the factory (its
    ``close()`` stops the name server; the broadcast port is in ``factory.ports`` too).
    ``storage`` and ``autoclean`` go to :func:`register_name_server`.
    """
    from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint

    from ..server.factory import DEFAULT_BACKLOG, Pyro4ProtocolFactory

    check_autoclean(config.NS_AUTOCLEAN if autoclean is None else autoclean)  # before listening
    host = config.HOST if host is None else host
    port = config.NS_PORT if port is None else port
    endpoint_type = TCP6ServerEndpoint if ":" in host else TCP4ServerEndpoint
    factory = Pyro4ProtocolFactory(reactor=reactor, hmac_key=hmac_key or None)
    await factory.listen(endpoint_type(reactor, port, backlog=DEFAULT_BACKLOG, interface=host))
    nameserver, uri = register_name_server(factory, storage, autoclean=autoclean,
                                           hmac_key=hmac_key)
    bound = factory.ports[0].getHost()
    shown = "[%s]" % host if ":" in host else host
    lines = ["NS running on %s:%d (%s)" % (shown, bound.port, bound.host)]  # Pyro4's wording
    if broadcast:
        # the internal URI, as Pyro4 (a NAT address is useless to those who hear broadcasts)
        udp = listen_broadcast(factory.uriFor(nameserver, nat=False), reactor,
                               interface=bchost, port=bcport)
        factory.ports.append(udp)
        address = udp.getHost()
        lines.append("Broadcast server running on %s:%d" % (address.host, address.port))
    else:
        lines.append("Not starting broadcast server.")
    lines.append("URI = %s" % uri)
    print("\n".join(lines), file=out, flush=True)
    return factory
