"""The daemon: :class:`Pyro4ProtocolFactory`, a registry of objects and a factory of connections.

A Twisted ``ServerFactory`` that behaves like a ``Pyro4.Daemon``: register objects (or
classes) on it, hand out ``PYRO:`` URIs, and listen on as many ports, interfaces and
transports as you like::

    factory = Pyro4ProtocolFactory()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1", backlog=DEFAULT_BACKLOG)
    factory.setAddress("127.0.0.1", port.getHost().port)
    uri = factory.register(Foo())          # PYRO:obj_...@127.0.0.1:<port>

Every connection is a :class:`~pyro.server.protocol.Pyro4Protocol`; what a request means and
which servant runs is :class:`~pyro.server.dispatch.Dispatcher`'s job.

Pyro4 and Pyro5 clients share the ports. What a servant returns reaches each as its own
generation's classes: a registered object as a proxy of the client's generation, a URI of
either generation (``uriFor``'s are Pyro4's) as the client's URI of the same text, a proxy
the servant holds to another server as the client's proxy for that URI
(:mod:`pyro.server.references`, which says what carries over and what cannot).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Collection
from typing import Any

from Pyro4 import constants, errors
from Pyro4.configuration import config
from Pyro4.core import URI, Daemon
from twisted.internet import defer, endpoints
from twisted.internet.protocol import ServerFactory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from .. import wire
from .._reactor import default_reactor
from ..wire.generations import Generation
from ..wire.messages import PYRO4
from .connection import PyroConnection
from .daemonobject import TwistedDaemonObject
from .dispatch import Dispatcher
from .protocol import Pyro4Protocol
from .streams import ItemStreams

__all__ = ["DEFAULT_BACKLOG", "Pyro4ClientFactory", "Pyro4ProtocolFactory", "Pyro4ServerFactory"]

#: Listen backlog for our helpers. Twisted's default of 50 overflows when a thousand Pyro4
#: clients connect at once (each Pyro4 proxy opens its own connection), and the kernel then
#: drops SYNs, costing the client a one-second retransmit. Pass it to ``listenTCP`` too.
DEFAULT_BACKLOG = 4096

log = Logger(namespace="pyro.protocol")


class Pyro4ProtocolFactory(ServerFactory):
    """A Pyro4 daemon for Twisted: a registry of objects and a factory of connections.

    It serves Pyro4 and Pyro5 clients alike, on the same ports: each connection's first
    bytes say which generation it speaks (see ``pyro_versions``), and a registered object is
    reachable by both under the one URI ``register`` returns. Pyro5 clients get Pyro5's
    semantics where the generations differ: exposure as with ``REQUIRE_EXPOSE=True``, oneway
    calls in a thread of their own, ``Pyro5.config``'s ``ITER_STREAMING``, stream lifetime and
    linger, ``MAX_MESSAGE_SIZE`` and ``DETAILED_TRACEBACK``, ``Pyro5.api.current_context``
    (filled together with ``Pyro4.current_context``), Pyro5's exception classes, and
    ``Pyro5.api.Proxy`` autoproxies.

    It offers the ``Pyro4.Daemon`` API that servants and tools use (``register``,
    ``unregister``, ``uriFor``, ``proxyFor``, ``objectsById``, ``locationStr``,
    ``validateHandshake``, ``clientDisconnect``, ``annotations``, ``_pyroHmacKey``), and
    serves the same ``Pyro.Daemon`` object.

    :param reactor: the reactor to use (default: the global one, looked up when needed).
    :param threadpool: a started ``twisted.python.threadpool.ThreadPool``. Servant calls run
        in it, one at a time per connection, so blocking servants do not stall the reactor.
        Without it, calls run in the reactor thread. You own the pool (start and stop it).
    :param threads: instead of ``threadpool``: the factory makes a pool of up to this many
        threads, starts it when it starts listening (its first port) and stops it in
        :meth:`close`. Its threads are daemon threads, stopped without waiting: a servant
        still running in one when the factory closes (after :meth:`drain`'s timeout, say)
        holds up neither the reactor nor the end of the process.
    :param max_message_size: refuse messages larger than this; default
        ``Pyro4.config.MAX_MESSAGE_SIZE`` (read per message; 0 means no limit).
    :param interface: the class serving the ``Pyro.Daemon`` object, as for Pyro4's Daemon.
    :param idle_timeout: seconds a connection may sit idle (handshake pending, or between
        requests, or stalled in the middle of one) before the server closes it; ``None``
        (the default) keeps idle connections open, as Pyro4's multiplex server does. Pyro4's
        thread server drops them after ``COMMTIMEOUT``: ``idle_timeout=config.COMMTIMEOUT``
        does the same. A call being served, however long, is not idleness. A client that
        reads none of the replies waiting for it for as long is cut off too (Pyro's servers
        time out on the send), a large reply that a slow client does read is not. One timer
        checks every connection four times per ``idle_timeout`` (no timer per connection:
        idle connections stay cheap), so an idle one goes after 1 to 1.25 times
        ``idle_timeout``, a stalled one after 1 to 1.5 times (counted from the first check
        that finds it stalled).
    :param hmac_key: the shared secret every message must be signed with (Pyro4's
        ``_pyroHmacKey``, which may also be set later, as on a ``Pyro4.Daemon``); ``None``:
        none. Pyro5 has no HMAC: while the factory has a key, Pyro5 clients are refused
        (their CONNECTFAIL says so), as they could not prove they know it.
    :param pyro_versions: the Pyro generations served on every port: ``(4, 5)``, ``(4,)``
        or ``(5,)``. Each connection's first bytes say which one it speaks; nothing else
        needs choosing. ``None`` (the default) serves both, Pyro5 if its package is
        installed (else a Pyro5 client's connection is refused, with one log line). A
        generation left out is refused as the other generation's daemon refuses it: a
        Pyro5 client gets Pyro4's CONNECTFAIL, a Pyro4 client Pyro5's ("invalid protocol
        version: 48"). Naming 5 without Pyro5 installed raises ``ImportError`` here.
    """

    protocol = Pyro4Protocol  # type: ignore[assignment]

    def __init__(self, reactor: Any = None, threadpool: Any = None,
                 max_message_size: int | None = None,
                 interface: Callable[[Any], Any] = TwistedDaemonObject,
                 idle_timeout: float | None = None, hmac_key: bytes | str | None = None,
                 threads: int | None = None, pyro_versions: Collection[int] | None = None):
        self.pyro_versions = _check_versions(pyro_versions)
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive (or None), not %r" % (idle_timeout,))
        if threads is not None and (threadpool is not None or threads < 1):
            raise ValueError("threads must be a positive number of threads, and not given "
                             "together with threadpool; not %r" % (threads,))
        self.threads = threads
        self._own_pool: ThreadPool | None = None
        self._pool_stopper: threading.Thread | None = None
        self._drain_waiters: list[defer.Deferred[None]] | None = None
        self.idle_timeout = idle_timeout
        self._idle_sweeper: LoopingCall | None = None
        self._reactor = reactor
        self.threadpool = threadpool
        self.max_message_size = max_message_size
        self.dispatcher = Dispatcher(self)
        # every connection's reader asks these (made once here, not once per connection)
        self.reader_options: dict[str, Any] = {
            "hmac_key": self.hmacKey, "max_message_size": self._message_size_limit}
        self.streams = ItemStreams(lambda: self.reactor)
        self.streaming_responses = self.streams.responses  # the name Pyro4's DaemonObject uses
        # Pyro4 reads the accepted serializers once, when a daemon is created:
        self.accepted_serializer_ids = PYRO4.serializer_ids(config.SERIALIZERS_ACCEPTED)
        #: the accepted serializer ids of each codec served (Pyro5 has no allow-list: all
        #: of Pyro5's serializers, none of which can run code)
        self.accepted_serializers: dict[Any, frozenset[int]] = {
            PYRO4: self.accepted_serializer_ids}
        if 5 in self.pyro_versions and _PYRO5_REQUIRED in self.pyro_versions:
            self._served_codec(Generation.PYRO5)  # named explicitly: Pyro5 must be there
        #: what Pyro5 clients are served instead of the object registered under the same id
        #: (the name server's Pyro5 face: Pyro5's ``NameServer`` over the same storage)
        self.pyro5_faces: dict[str, Any] = {}
        self.__pyroHmacKey: bytes | None = wire.hmac_key_bytes(hmac_key)
        self._close_hooks: list[Callable[[], Any]] = []
        self._pyroInstances: dict[type, Any] = {}  # instance_mode="single" servants
        self.create_single_instance_lock = threading.Lock()
        self._location: str | None = None
        self.natLocationStr: str | None = None
        self.transportServer = "twisted"
        self.protocols: set[Pyro4Protocol] = set()
        self._housekeeper: LoopingCall | None = None
        self._lost_waiters: dict[Pyro4Protocol, list[defer.Deferred[None]]] = {}
        self.ports: list[Any] = []
        daemon_object = interface(self)
        daemon_object._pyroId = constants.DAEMON_NAME
        self.objectsById: dict[str, Any] = {constants.DAEMON_NAME: daemon_object}

    @property
    def reactor(self) -> Any:
        return default_reactor(self._reactor)

    def hmacKey(self) -> bytes | None:
        """The HMAC key in force now (read per message: it may be set at any time)."""
        return self.__pyroHmacKey

    def maxMessageSize(self) -> int:
        """The message size limit in force now (the factory's, else Pyro4's config)."""
        if self.max_message_size is not None:
            return self.max_message_size
        return config.MAX_MESSAGE_SIZE

    def _message_size_limit(self) -> int | None:
        """The readers' limit: the factory's, else (None) the generation's own config."""
        return self.max_message_size

    # -- protocol generations -------------------------------------------------------------

    @property
    def first_generation(self) -> Generation:
        """The generation whose reader (and refusal) gets bytes that are no Pyro message."""
        return Generation.PYRO4 if 4 in self.pyro_versions else Generation.PYRO5

    def codec_for(self, generation: Generation) -> Any:
        """The codec a connection whose first bytes named ``generation`` speaks; else the
        :class:`~pyro.wire.WireError` that refuses it (its ``codec`` attribute is the codec
        the refusal is written in, its ``log_text`` says why in the server's log)."""
        if generation is Generation.PYRO4:
            if 4 in self.pyro_versions:
                return PYRO4
            codec = self._served_codec(Generation.PYRO5)
            raise _Refusal(codec, codec.errors.ProtocolError("invalid protocol version: 48"),
                           "a Pyro4 client, and this server serves Pyro5 only")
        if 5 not in self.pyro_versions:
            raise _Refusal(PYRO4, _PYRO4_REFUSAL(), "a Pyro5 client, and this server serves "
                           "Pyro4 only (pyro_versions=(4,))")
        try:
            codec = self._served_codec(generation)
        except (ImportError, ValueError) as missing:  # (GenerationUnavailable is one)
            raise _Refusal(PYRO4, _PYRO4_REFUSAL(),
                           "a Pyro5 client: %s" % _pyro5_missing(missing)) from None
        if self.hmacKey() is not None:
            raise _Refusal(codec, codec.errors.SecurityError(
                "this server requires Pyro4's HMAC key, which Pyro5 does not have"),
                "a Pyro5 client, and the server has an HMAC key (Pyro5 cannot sign)")
        return codec

    def _served_codec(self, generation: Generation) -> Any:
        """``generation``'s codec, its accepted serializers noted the first time."""
        codec = generation.codec
        if codec not in self.accepted_serializers:  # (only Pyro5's is not there from the start)
            from .pyro5 import serializer_names

            self.accepted_serializers[codec] = codec.serializer_ids(serializer_names())
        return codec

    # -- address --------------------------------------------------------------------------

    @property
    def locationStr(self) -> str:
        """``host:port`` (or ``./u:path``) that goes into URIs, like Pyro4's Daemon."""
        if self._location is None:
            raise errors.DaemonError(
                "the factory has no address yet: call setAddress(host, port) or listen() first")
        return self._location

    @locationStr.setter
    def locationStr(self, value: str) -> None:
        self._location = value

    def setAddress(self, host: str, port: int) -> None:
        """Set the address that URIs name (the factory may listen on many)."""
        self._location = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)

    def setUnixAddress(self, path: str) -> None:
        """Name a UNIX socket in URIs: ``PYRO:id@./u:path``."""
        self._location = "./u:" + path

    def _address_from(self, address: Any) -> None:
        """Derive the URI address from a port, when the user did not set one."""
        if self._location is not None:
            return
        name = getattr(address, "name", None)
        if name is not None:
            self.setUnixAddress(name.decode() if isinstance(name, bytes) else name)
        elif getattr(address, "host", None) is not None:
            self.setAddress(address.host, address.port)

    def listen(self, endpoint: Any) -> defer.Deferred[Any]:
        """Listen on an ``IStreamServerEndpoint``; the first port names the URIs by default.

        ``endpoint`` may also be an endpoint description string, as ``twistd`` and
        ``serverFromString`` take them (``"tcp:9090:interface=127.0.0.1"``,
        ``"unix:/run/pyro.sock"``, ``"ssl:9443:privateKey=key.pem:certKey=cert.pem"``),
        resolved on this factory's reactor. The factory remembers its ports so
        :meth:`close` can stop them.
        """
        if isinstance(endpoint, str):
            endpoint = endpoints.serverFromString(self.reactor, endpoint)

        def listening(port: Any) -> Any:
            self.ports.append(port)
            self._address_from(port.getHost())
            return port

        return endpoint.listen(self).addCallback(listening)

    # -- the Daemon API (Pyro4's own implementations; they only need objectsById & uriFor) --

    def register(self, obj_or_class: Any, objectId: str | None = None,
                 force: bool = False) -> URI:
        """Pyro4's ``Daemon.register``: the object (or class) is reachable under the URI it
        returns, by Pyro4 and Pyro5 clients alike (the same text). Returned from a call, it
        travels as a proxy of the caller's generation (Pyro4: with ``AUTOPROXY``; Pyro5
        always, as Pyro5's daemon does)."""
        uri = Daemon.register(self, obj_or_class, objectId, force)
        if 5 in self.pyro_versions:
            try:
                from .pyro5 import register_autoproxy
            except (ImportError, ValueError):
                pass  # Pyro5 cannot be imported: no Pyro5 clients either (see codec_for)
            else:
                register_autoproxy(obj_or_class)
        elif "Pyro5.core" in sys.modules:  # a Pyro4-only server whose servants may hold
            from .references import install  # Pyro5 URIs or proxies, for Pyro4 clients

            install()
        return uri

    def pyro5_proxy_for(self, objectOrId: Any, nat: bool = True) -> Any:
        """A ``Pyro5.api.Proxy`` of a registered object (what a Pyro5 client receives for
        it), its metadata filled in as Pyro5's ``Daemon.proxyFor`` fills it."""
        from .pyro5 import proxy_for

        return proxy_for(self, objectOrId, nat)

    unregister = Daemon.unregister
    uriFor = Daemon.uriFor
    proxyFor = Daemon.proxyFor
    resetMetadataCache = Daemon.resetMetadataCache

    @property
    def _pyroHmacKey(self) -> bytes | None:
        return self.__pyroHmacKey

    @_pyroHmacKey.setter
    def _pyroHmacKey(self, value: bytes | str | None) -> None:
        self.__pyroHmacKey = wire.hmac_key_bytes(value)

    def validateHandshake(self, conn: PyroConnection, data: Any) -> Any:
        """Override to vet new connections: return a value for the client, raise to refuse.

        Unlike Pyro4's, this may return a Deferred (or be a coroutine).
        """
        return "hello"

    def clientDisconnect(self, conn: PyroConnection) -> None:
        """Override to learn that a client (one that passed the handshake) went away."""

    def annotations(self) -> dict[str, bytes]:
        """Override to add custom annotations to every response."""
        return {}

    def housekeeping(self) -> None:
        """Override to run periodic cleanup, every ``Pyro4.config.POLLTIMEOUT`` seconds.

        As in Pyro4, this runs while the factory is listening. The timer exists only when a
        subclass overrides this method. (Item-stream expiry has its own timer.)
        """

    def startFactory(self) -> None:
        """The first port started listening: start the factory's own thread pool (``threads``)
        and the housekeeping timer if it is used."""
        if self.threads is not None and self._own_pool is None:
            self._own_pool = _DaemonThreadPool(minthreads=0, maxthreads=self.threads,
                                               name="pyro.protocol servants")
            self._own_pool.start()
            self.threadpool = self._own_pool
        if type(self).housekeeping is not Pyro4ProtocolFactory.housekeeping:
            self._housekeeper = LoopingCall(self.housekeeping)
            self._housekeeper.clock = self.reactor
            self._housekeeper.start(config.POLLTIMEOUT or 2.0, now=False).addErrback(
                lambda f: log.failure("housekeeping() raised; it will not run again", f))
        if self.idle_timeout:
            self._idle_sweeper = LoopingCall(self._close_idle_connections)
            self._idle_sweeper.clock = self.reactor
            self._idle_sweeper.start(self.idle_timeout / 4, now=False).addErrback(
                lambda f: log.failure("closing idle connections failed; no longer done", f))

    def stopFactory(self) -> None:
        """The last port stopped listening."""
        for timer in (self._housekeeper, self._idle_sweeper):
            if timer is not None and timer.running:
                timer.stop()
        self._housekeeper = self._idle_sweeper = None

    def _close_idle_connections(self) -> None:
        """Close the connections idle for ``idle_timeout`` seconds or more (gracefully:
        a Pyro4 client then gets ``ConnectionClosedError`` on its next call, as from Pyro4's
        thread server)."""
        assert self.idle_timeout is not None
        now = self.reactor.seconds()
        deadline = now - self.idle_timeout
        for protocol in list(self.protocols):
            stalled = protocol.stalled_since(now)
            if stalled is not None and stalled <= deadline:
                # (its replies cannot be delivered: closing gracefully would wait for ever)
                log.info("closing connection from {peer}: it has read none of its replies "
                         "for {seconds:.1f} s", peer=protocol.peer_address,
                         seconds=now - stalled)
                protocol.abort()
            elif protocol.last_active <= deadline and protocol.idle:
                log.info("closing connection from {peer}: idle for {seconds:.1f} s",
                         peer=protocol.peer_address, seconds=now - protocol.last_active)
                protocol._hang_up()

    # -- connections ----------------------------------------------------------------------

    def connectionOpened(self, protocol: Pyro4Protocol) -> None:
        """A client connected (called by the protocol)."""
        self.protocols.add(protocol)
        self._address_from(protocol.transport.getHost())

    def connectionClosed(self, protocol: Pyro4Protocol, reason: Failure | None) -> None:
        """A client went away: release its session, streams and tracked resources."""
        self.protocols.discard(protocol)
        for waiter in self._lost_waiters.pop(protocol, ()):
            waiter.callback(None)
        self.streams.client_gone(protocol)
        try:
            if protocol.handshaken:
                self.clientDisconnect(protocol)
        except Exception:
            log.failure("clientDisconnect({conn}) raised", conn=protocol)
        finally:
            protocol.release()

    def add_close_hook(self, hook: Callable[[], Any]) -> None:
        """Have :meth:`close` call ``hook()`` once the ports are closed and the connections gone.

        For what lives as long as the daemon does: a name server's storage is closed this way,
        as Pyro4's ``NameServerDaemon.close()`` closes it. Hooks run once, the last added
        first; a Deferred a hook returns is waited for before the next hook runs, and an
        exception is logged, not raised (the other hooks still run).
        """
        self._close_hooks.append(hook)

    async def _run_close_hooks(self) -> None:
        hooks, self._close_hooks = self._close_hooks, []
        for hook in reversed(hooks):
            try:
                await defer.maybeDeferred(hook)
            except Exception:
                log.failure("close hook {hook!r} raised", hook=hook)

    def close(self) -> defer.Deferred[None]:
        """Stop listening, drop every connection, and forget open item streams.

        The Deferred fires when the ports are closed, every connection is gone and the
        close hooks (:meth:`add_close_hook`) have run; the factory's own thread pool
        (``threads``), if it made one, is then stopped.
        """
        waits = [defer.maybeDeferred(port.stopListening) for port in self.ports]
        self.ports = []
        for protocol in list(self.protocols):
            waiter: defer.Deferred[None] = defer.Deferred()
            self._lost_waiters.setdefault(protocol, []).append(waiter)
            waits.append(waiter)
            protocol.abort()  # unsent replies too: nobody may hold up the shutdown
        self.streams.clear()

        def hooks(result: Any) -> Any:
            return defer.Deferred.fromCoroutine(self._run_close_hooks()).addCallback(
                lambda _: result)

        return defer.gatherResults(waits).addBoth(hooks).addCallback(self._stop_own_pool)

    def _stop_own_pool(self, _: object = None) -> None:
        pool, self._own_pool = self._own_pool, None
        if pool is not None:
            self.threadpool = None
            # ThreadPool.stop() joins the threads: not in the reactor thread
            self._pool_stopper = threading.Thread(target=pool.stop, daemon=True,
                                                  name="pyro.protocol servants: stopping")
            self._pool_stopper.start()

    #: Seconds between two looks at the connections while draining.
    drain_interval = 0.1

    def drain(self, timeout: float | None = None) -> defer.Deferred[None]:
        """Shut down gracefully: stop listening, let the calls in progress finish, close.

        New connections are refused at once. Every connection is closed as soon as it is
        idle (nothing being served, queued or unsent: the protocol's ``idle``), so a client
        between two calls sees its connection closed, and one waiting for a reply gets it
        first. After ``timeout`` seconds (``None``: no limit) the connections still busy are
        closed anyway. Then :meth:`close`; the Deferred fires when that is done. Calling
        ``drain`` again meanwhile returns another Deferred of the same end. (The state of
        the connections is looked at every :attr:`drain_interval` seconds.)
        """
        waiter: defer.Deferred[None] = defer.Deferred()
        if self._drain_waiters is not None:
            self._drain_waiters.append(waiter)
            return waiter
        self._drain_waiters = [waiter]
        ports = [defer.maybeDeferred(port.stopListening) for port in self.ports]
        self.ports = []
        stopped = defer.gatherResults(ports, consumeErrors=True)
        deadline = None if timeout is None else self.reactor.seconds() + timeout
        busy = self._close_idle_for_drain()
        if busy:
            log.info("draining: waiting for {count} connection(s) with calls in progress"
                     "{limit}", count=len(busy),
                     limit="" if timeout is None else " (up to %g s)" % (timeout,))
        self._drain_step(stopped, deadline)
        return waiter

    def _close_idle_for_drain(self) -> list[Pyro4Protocol]:
        """Close the idle connections; the busy ones."""
        for protocol in list(self.protocols):
            if protocol.idle:
                protocol._hang_up()
        return [protocol for protocol in self.protocols if not protocol.closing]

    def _drain_step(self, stopped: defer.Deferred[Any], deadline: float | None) -> None:
        busy = self._close_idle_for_drain()
        if busy and (deadline is None or self.reactor.seconds() < deadline):
            self.reactor.callLater(self.drain_interval, self._drain_step, stopped, deadline)
            return
        if busy:
            log.warn("draining: time is up; closing {count} connection(s) with calls in "
                     "progress", count=len(busy))
        closed = defer.gatherResults([stopped, self.close()], consumeErrors=True)
        closed.addBoth(self._drain_done)

    def _drain_done(self, result: Any) -> None:
        waiters, self._drain_waiters = self._drain_waiters or [], None
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)

    shutdown = close

    def __repr__(self) -> str:
        return "<%s.%s at 0x%x; %s; %d objects>" % (
            type(self).__module__, type(self).__name__, id(self), self._location,
            len(self.objectsById))

    # Objects registered here keep a reference to their daemon; Pyro4's serializers must
    # never try to send the daemon itself (it has no meaningful serialized state).
    def __getstate__(self) -> dict[str, Any]:
        return {}


_PYRO5_REQUIRED = object()  # in pyro_versions when 5 was named, not defaulted


def _check_versions(versions: Collection[int] | None) -> frozenset[Any]:
    """``pyro_versions`` as a set; 5 named explicitly is marked: it must be importable."""
    if versions is None:
        return frozenset({4, 5})
    if isinstance(versions, (int, str)) or not versions or not set(versions) <= {4, 5}:
        raise ValueError("pyro_versions must name 4, 5 or both, as in (4, 5); not %r"
                         % (versions,))
    chosen: set[Any] = set(versions)
    if 5 in chosen:
        chosen.add(_PYRO5_REQUIRED)
    return frozenset(chosen)


def _pyro5_missing(problem: Exception) -> str:
    """Why Pyro5 cannot be used here, in one line. Besides not being installed: Pyro5 reads
    every ``PYRO_*`` environment variable when imported and refuses those it does not know,
    Pyro4's own (``PYRO_HMAC_KEY``, ``PYRO_SERIALIZERS_ACCEPTED``...) among them."""
    if isinstance(problem, ImportError):
        return str(problem)
    return "Pyro5 cannot be imported: %s" % problem


def _PYRO4_REFUSAL() -> errors.ProtocolError:
    """What a Pyro4 daemon tells a client of another protocol version (its exact words)."""
    return errors.ProtocolError("invalid data or unsupported protocol version")


class _Refusal(wire.WireError):
    """A generation the factory does not serve: ``cause`` goes to the client in ``codec``'s
    CONNECTFAIL; ``log_text`` is the server log's reason."""

    def __init__(self, codec: Any, cause: Exception, log_text: str):
        super().__init__(cause)
        self.codec = codec
        self.log_text = log_text


class _DaemonThreadPool(ThreadPool):
    """A thread pool whose threads do not keep the process alive.

    The factory stops it when it closes without waiting for the calls still running (see
    ``_stop_own_pool``); their results are for connections that are gone. Handing one to a
    reactor that has stopped can fail (the asyncio reactor's loop is closed once
    ``asyncio.run`` returned: ``RuntimeError``), which the pool would log as an unhandled
    error: once the pool is stopped, such a failure is dropped.
    """

    threadFactory = staticmethod(  # type: ignore[assignment]
        lambda *args, **kwargs: threading.Thread(*args, daemon=True, **kwargs))

    def callInThreadWithCallback(self, onResult: Any, func: Any, *args: Any,
                                 **kw: Any) -> None:
        if onResult is None:
            return super().callInThreadWithCallback(onResult, func, *args, **kw)

        def deliver(ok: bool, result: Any) -> None:
            try:
                onResult(ok, result)
            except RuntimeError:
                if not self.joined:
                    raise

        super().callInThreadWithCallback(deliver, func, *args, **kw)


#: The original twisted-pyro's names for the same class.
Pyro4ClientFactory = Pyro4ProtocolFactory
Pyro4ServerFactory = Pyro4ProtocolFactory
