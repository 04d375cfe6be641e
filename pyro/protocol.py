"""Serve Pyro4 objects from a Twisted reactor to unmodified Pyro4 clients.

:class:`Pyro4ProtocolFactory` is a Twisted ``ServerFactory`` that behaves like a
``Pyro4.Daemon``: register objects (or classes) on it, hand out ``PYRO:`` URIs, and listen on
as many ports, interfaces and transports as you like::

    from twisted.internet import reactor
    import pyro.protocol

    factory = pyro.protocol.Pyro4ProtocolFactory()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1", backlog=1024)
    factory.setAddress("127.0.0.1", port.getHost().port)
    uri = factory.register(Foo())          # PYRO:obj_...@127.0.0.1:<port>

Every connection is a :class:`Pyro4Protocol`, a state machine with the states Pyro4's own
design uses (:class:`ConnectionState`). Servant methods may return ``Deferred``-s or be
coroutines; blocking servants can run in a thread pool (``threadpool=``).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from typing import Any

from Pyro4 import constants, errors, util
from Pyro4.configuration import config
from Pyro4.core import Daemon
from twisted.internet import defer, endpoints, tcp
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure

from . import wire
from .connection import PyroConnection
from .daemonobject import TwistedDaemonObject
from .dispatch import Dispatcher
from .streams import ItemStreams

__all__ = [
    "ConnectionState",
    "DEFAULT_BACKLOG",
    "Pyro4ClientFactory",
    "Pyro4Protocol",
    "Pyro4ProtocolFactory",
    "Pyro4ServerFactory",
    "reactor",  # noqa: F822 -- resolved lazily by the module __getattr__
]

#: Listen backlog for our helpers. Twisted's default of 50 overflows when a thousand Pyro4
#: clients connect at once (each Pyro4 proxy opens its own connection), and the kernel then
#: drops SYNs, costing the client a one-second retransmit. Pass it to ``listenTCP`` too.
DEFAULT_BACKLOG = 4096

#: Requests parsed but not yet served on one connection, before we stop reading from it.
MAX_QUEUED_REQUESTS = 64

_HANDSHAKE_TYPES = frozenset({wire.MSG_CONNECT})
_REQUEST_TYPES = frozenset({wire.MSG_INVOKE, wire.MSG_PING})

log = Logger()


def __getattr__(name: str) -> Any:
    """``pyro.protocol.reactor`` is the global reactor, resolved only when first used.

    The original twisted-pyro README writes ``pyro.protocol.reactor.listenTCP(...)``; a lazy
    lookup keeps that working without installing a reactor as a side effect of an import.
    """
    if name == "reactor":
        from twisted.internet import reactor

        return reactor
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


class ConnectionState(enum.Enum):
    """Pyro4's names for where a connection is in its life."""

    SERVER = "server"  #: connected; the handshake (MSG_CONNECT) has not completed yet
    HEADER = "header"  #: idle: waiting for the 24 header bytes of the next request
    ANNOTATIONS = "annotations"  #: header read, waiting for its annotation bytes
    DATA = "data"  #: annotations read, waiting for the payload bytes
    RESPONSE = "response"  #: a request is being served; we owe a response
    CLOSED = "closed"  #: the connection is gone


_READ_STATES = {
    wire.ReadState.HEADER: ConnectionState.HEADER,
    wire.ReadState.ANNOTATIONS: ConnectionState.ANNOTATIONS,
    wire.ReadState.DATA: ConnectionState.DATA,
}


def _direct_socket(transport: Any) -> Any:
    """The socket of a plain TCP server transport (else None), prepared for direct sends.

    Also sets Twisted's write-buffer attributes on the transport instance right away: on
    Python 3.11 a class's shared attribute layout is frozen after ~30 instances, and a
    transport that first gets these attributes later pays ~800 bytes more for ever. Under a
    burst of connections, that is most of them.
    """
    if type(transport) is not tcp.Server:
        return None
    transport.dataBuffer = transport.dataBuffer
    transport.offset = transport.offset
    return transport.socket


class Pyro4Protocol(PyroConnection, Protocol):
    """One Pyro4 client connection: bytes in, calls dispatched, replies out, in order.

    Requests are answered strictly in the order they arrived (Pyro4 clients check sequence
    numbers), one at a time; requests that arrive while one is being served are queued, and
    reading pauses when too many are queued. Oneway calls owe nothing and never hold up the
    queue.

    The protocol is also the connection object Pyro4's hooks receive (a
    :class:`~pyro.connection.PyroConnection`: ``sock``, ``objectId``, ``pyroInstances``,
    ``tracked_resources``, ``getpeercert()``, ``transport``).
    """

    factory: Pyro4ProtocolFactory
    transport: Any  # set by makeConnection; typed loosely: TCP, UNIX and TLS all differ
    reader: wire.MessageReader  # set by connectionMade

    def __init__(self) -> None:
        PyroConnection.__init__(self)
        self.handshaken = False
        self.closing = False  # we decided to hang up (or the peer is gone)
        self.closed = False
        self._serving = False
        self._paused = False  # we stopped reading: too many requests queued
        self._write_blocked = False  # the transport's write buffer is full
        # Requests waiting for the one being served. A plain list, not a deque: it is almost
        # always empty and never longer than MAX_QUEUED_REQUESTS, and an empty deque costs
        # 760 bytes on every idle connection (we aim at thousands of those).
        self._queue: list[wire.Message] = []
        # When this connection last received bytes or finished serving, on the factory's
        # clock; kept only when the factory has an ``idle_timeout`` (else the shared 0.0).
        self.last_active = 0.0

    @property
    def state(self) -> ConnectionState:
        """The connection's state in Pyro4's vocabulary (derived, never stored twice)."""
        if self.closed:
            return ConnectionState.CLOSED
        if self._serving:
            return ConnectionState.RESPONSE
        if not self.handshaken:
            return ConnectionState.SERVER
        return _READ_STATES.get(self.reader.state, ConnectionState.CLOSED)

    # -- Twisted's side -------------------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        self.reader = wire.MessageReader(allowed_types=_HANDSHAKE_TYPES, **factory.reader_options)
        self.transport.registerProducer(self, True)  # tell us when replies pile up unread
        self._direct_socket = _direct_socket(self.transport)
        if factory.idle_timeout:
            self.last_active = factory.reactor.seconds()
        factory.connectionOpened(self)

    def dataReceived(self, data: bytes) -> None:
        if self.closing:
            return  # we are hanging up: nothing more from this client is read
        if self.factory.idle_timeout:
            self.last_active = self.factory.reactor.seconds()
        try:
            for msg in self.reader.feed(data):
                self._queue.append(msg)
                if not self.handshaken:
                    self.reader.allowed_types = _REQUEST_TYPES  # only one CONNECT is read
        except wire.WireError as error:
            self._serve_queue()
            self._protocol_violation(error)
            return
        self._serve_queue()

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.closed:
            return
        self.closed = self.closing = True
        self._queue.clear()
        self.factory.connectionClosed(self, reason)

    # -- serving --------------------------------------------------------------------------

    def _serve_queue(self) -> None:
        """Serve queued requests in order until one has to wait for its result."""
        while self._queue and not (self._serving or self._write_blocked or self.closing):
            msg = self._queue.pop(0)
            if self.handshaken:
                outcome = self.factory.dispatcher.invoke(self, msg)
            else:
                outcome = self.factory.dispatcher.handshake(self, msg)
            if isinstance(outcome, defer.Deferred):
                self._serving = True
                outcome.addCallback(self._finished, msg)
                outcome.addErrback(self._internal_error, msg)
            else:
                self._send(outcome, msg)
        self._flow_control()

    def _finished(self, outcome: Any, msg: wire.Message) -> None:
        self._serving = False
        if self.factory.idle_timeout:
            self.last_active = self.factory.reactor.seconds()
        self._send(outcome, msg)
        self._serve_queue()

    def _send(self, outcome: Any, msg: wire.Message) -> None:
        if self.closing:
            return
        if not self.handshaken and msg.type == wire.MSG_CONNECT:
            reply, accepted = outcome
            self._write(reply)
            if accepted:
                self.handshaken = True
            else:
                self._hang_up()
        elif outcome is not None:
            self._write(outcome)

    def _write(self, data: bytes) -> None:
        """Send a reply now if the transport has nothing queued; else queue it as usual.

        Twisted's ``write`` only buffers: the bytes go out on the next reactor iteration,
        which costs every call an extra trip through the event loop (two ``epoll_ctl`` and
        one more ``epoll_wait``). Pyro4 clients wait for each reply, so that trip is pure
        latency; measured, sending at once saves 10-15 % of server CPU per call. Only done on
        a plain TCP transport whose buffers are empty (so ordering is kept); whatever the
        kernel does not take at once, and any error, goes through Twisted's own path.
        """
        transport = self.transport
        sock = self._direct_socket
        if (sock is not None and not transport.dataBuffer and not transport._tempDataBuffer
                and transport.connected and not transport.disconnecting
                and not getattr(transport, "TLS", False)):
            try:
                sent = sock.send(data)
            except OSError:
                sent = 0  # would block, or an error that Twisted's write path will report
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    # -- IPushProducer, for our transport: a client that does not read its replies ----------

    def pauseProducing(self) -> None:
        """The write buffer is full: serve nothing more until the client reads."""
        self._write_blocked = True

    def resumeProducing(self) -> None:
        self._write_blocked = False
        self._serve_queue()

    def stopProducing(self) -> None:
        """The connection is going away; ``connectionLost`` follows."""

    @property
    def idle(self) -> bool:
        """Nothing being served, queued or unsent: the client is just keeping the line."""
        return not (self._serving or self._queue or self._write_blocked or self.closing)

    def close(self) -> None:
        """Hang up (a servant's ``Pyro4.current_context.client.close()``, or the factory's
        ``close()``). As with a Pyro4 daemon, which closes the socket at once, the call being
        served gets no reply and the requests queued behind it are not served: its client
        sees the connection lost. (Twisted's ``loseConnection`` alone would still send a
        reply written after it.) From a thread-pool servant it happens in the reactor
        thread, before the call's outcome is handed back there."""
        if threadable.isInIOThread():
            self._hang_up()
        else:
            self.factory.reactor.callFromThread(self._hang_up)

    def _hang_up(self) -> None:
        """Close after what was written so far; serve and read nothing more."""
        self.closing = True
        self._queue.clear()
        self.transport.loseConnection()

    def _internal_error(self, failure: Failure, msg: wire.Message) -> None:
        """A bug of ours, not the servant's: report it once and drop this connection only."""
        self._serving = False
        self.closing = True
        log.failure("internal error serving {peer}", failure,
                    peer=self.peer_address)
        self.transport.abortConnection()

    def _flow_control(self) -> None:
        """Stop reading from a client that floods us with requests; resume when drained."""
        if self.closing:
            return
        producer = self.transport  # an IPushProducer, as every stream transport is
        if not self._paused and len(self._queue) >= MAX_QUEUED_REQUESTS:
            self._paused = True
            producer.pauseProducing()
        elif self._paused and len(self._queue) < MAX_QUEUED_REQUESTS // 2:
            self._paused = False
            producer.resumeProducing()

    def _protocol_violation(self, error: wire.WireError) -> None:
        """The byte stream is broken: answer what Pyro4 would answer, then close cleanly.

        Before the handshake that is a CONNECTFAIL with the reason. After it, Pyro4 just
        closes; we first answer a too-large message with Pyro4's ``MessageTooLargeError``
        (its header told us the sequence number), unless earlier requests still owe replies.
        """
        log.info("closing connection from {peer}: {error}",
                 peer=self.peer_address, error=str(error))
        if self.closing:
            return
        dispatcher = self.factory.dispatcher
        if not self.handshaken and not self._serving:
            self.transport.write(dispatcher.connect_fail(error.message, error.cause))
        elif (isinstance(error.cause, errors.MessageTooLargeError) and error.message is not None
              and not self._serving and not self._queue):
            self.transport.write(
                dispatcher.exception_reply(error.message, error.cause, None, None))
        self._hang_up()


class Pyro4ProtocolFactory(ServerFactory):
    """A Pyro4 daemon for Twisted: a registry of objects and a factory of connections.

    It offers the ``Pyro4.Daemon`` API that servants and tools use (``register``,
    ``unregister``, ``uriFor``, ``proxyFor``, ``objectsById``, ``locationStr``,
    ``validateHandshake``, ``clientDisconnect``, ``annotations``, ``_pyroHmacKey``), and
    serves the same ``Pyro.Daemon`` object.

    :param reactor: the reactor to use (default: the global one, looked up when needed).
    :param threadpool: a started ``twisted.python.threadpool.ThreadPool``. Servant calls run
        in it, one at a time per connection, so blocking servants do not stall the reactor.
        Without it, calls run in the reactor thread. You own the pool (start and stop it).
    :param max_message_size: refuse messages larger than this; default
        ``Pyro4.config.MAX_MESSAGE_SIZE`` (read per message; 0 means no limit).
    :param interface: the class serving the ``Pyro.Daemon`` object, as for Pyro4's Daemon.
    :param idle_timeout: seconds a connection may sit idle (handshake pending, or between
        requests, or stalled in the middle of one) before the server closes it; ``None``
        (the default) keeps idle connections open, as Pyro4's multiplex server does. Pyro4's
        thread server drops them after ``COMMTIMEOUT``: ``idle_timeout=config.COMMTIMEOUT``
        does the same. A call being served, however long, is not idleness. One timer checks
        every connection four times per ``idle_timeout`` (no timer per connection: idle
        connections stay cheap), so an idle one goes after 1 to 1.25 times ``idle_timeout``.
    """

    protocol = Pyro4Protocol  # type: ignore[assignment]

    def __init__(self, reactor: Any = None, threadpool: Any = None,
                 max_message_size: int | None = None,
                 interface: Callable[[Any], Any] = TwistedDaemonObject,
                 idle_timeout: float | None = None):
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive (or None), not %r" % (idle_timeout,))
        self.idle_timeout = idle_timeout
        self._idle_sweeper: LoopingCall | None = None
        self._reactor = reactor
        self.threadpool = threadpool
        self.max_message_size = max_message_size
        self.dispatcher = Dispatcher(self)
        # every connection's reader asks these (made once here, not once per connection)
        self.reader_options: dict[str, Any] = {
            "hmac_key": self.hmacKey, "max_message_size": self.maxMessageSize}
        self.streams = ItemStreams(lambda: self.reactor)
        self.streaming_responses = self.streams.responses  # the name Pyro4's DaemonObject uses
        # Pyro4 reads the accepted serializers once, when a daemon is created:
        self.accepted_serializer_ids = frozenset(
            util.get_serializer(name).serializer_id for name in config.SERIALIZERS_ACCEPTED)
        self.__pyroHmacKey: bytes | None = None
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
        if self._reactor is None:
            from twisted.internet import reactor

            return reactor
        return self._reactor

    def hmacKey(self) -> bytes | None:
        """The HMAC key in force now (read per message: it may be set at any time)."""
        return self.__pyroHmacKey

    def maxMessageSize(self) -> int:
        """The message size limit in force now (the factory's, else Pyro4's config)."""
        if self.max_message_size is not None:
            return self.max_message_size
        return config.MAX_MESSAGE_SIZE

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

    register = Daemon.register
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
        """The first port started listening: start the housekeeping timer if it is used."""
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
        deadline = self.reactor.seconds() - self.idle_timeout
        for protocol in [p for p in self.protocols if p.last_active <= deadline and p.idle]:
            log.info("closing connection from {peer}: idle for {seconds:.1f} s",
                     peer=protocol.peer_address,
                     seconds=self.reactor.seconds() - protocol.last_active)
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

    def close(self) -> defer.Deferred[None]:
        """Stop listening, drop every connection, and forget open item streams.

        The Deferred fires when the ports are closed and every connection is gone.
        """
        waits = [defer.maybeDeferred(port.stopListening) for port in self.ports]
        self.ports = []
        for protocol in list(self.protocols):
            waiter: defer.Deferred[None] = defer.Deferred()
            self._lost_waiters.setdefault(protocol, []).append(waiter)
            waits.append(waiter)
            protocol.close()
        self.streams.clear()
        return defer.gatherResults(waits).addCallback(lambda _: None)

    shutdown = close

    def __repr__(self) -> str:
        return "<%s.%s at 0x%x; %s; %d objects>" % (
            type(self).__module__, type(self).__name__, id(self), self._location,
            len(self.objectsById))

    # Objects registered here keep a reference to their daemon; Pyro4's serializers must
    # never try to send the daemon itself (it has no meaningful serialized state).
    def __getstate__(self) -> dict[str, Any]:
        return {}


#: The original twisted-pyro's names for the same class.
Pyro4ClientFactory = Pyro4ProtocolFactory
Pyro4ServerFactory = Pyro4ProtocolFactory
