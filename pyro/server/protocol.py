"""One server connection: :class:`Pyro4Protocol`, a state machine in Pyro4's own vocabulary.

Thin on purpose: bytes go into the sans-IO reader (:mod:`pyro.wire`), parsed messages go to
the factory's dispatcher (:mod:`pyro.server.dispatch`), replies come back and leave in order.
This module owns ordering, concurrency within a connection, flow control and hanging up; it
knows nothing of what a message means.

Requests on one connection are started in the order they arrived. One whose servant returned
a Deferred or a coroutine does not hold up the requests behind it: they start at once and run
concurrently (a pipelining client such as :class:`pyro.client.DeferredProxy` gets concurrency
from one connection, as from several). Their replies still leave strictly in request order,
since Pyro4 clients check sequence numbers: a reply that is ready early waits for those
before it. A request the dispatcher marks :class:`~pyro.server.placement.Exclusive` (a call
in the thread pool, a call on a session servant), and the handshake, hold the connection: no
request behind it starts before it is done, so such servants see one call per connection at
a time, as in Pyro4's thread server. At most ``MAX_QUEUED_REQUESTS`` requests per connection
are read and not yet answered.

The factory it serves is :class:`pyro.server.factory.Pyro4ProtocolFactory`, seen here only
through :class:`ServingFactory` (what a connection needs of it), so that the import points one
way: factory -> protocol.
"""

from __future__ import annotations

import enum
from typing import Any
from typing import Protocol as TypingProtocol

import Pyro4
from twisted.internet import defer, tcp
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure

from .. import _transport, wire
from ..wire import generations
from .connection import PyroConnection
from .placement import Exclusive

__all__ = ["ConnectionState", "MAX_QUEUED_REQUESTS", "Pyro4Protocol", "ServingFactory"]

#: Requests read on one connection and not answered yet (being served, or waiting to be):
#: when there are this many we stop reading from it (until half are answered), and no more
#: than this many are served at once.
MAX_QUEUED_REQUESTS = 64

_PENDING: Any = object()  # a request's reply, while it is being served

log = Logger(namespace="pyro.protocol")


class ServingFactory(TypingProtocol):
    """What a :class:`Pyro4Protocol` uses of its factory."""

    dispatcher: Any
    reader_options: dict[str, Any]
    idle_timeout: float | None
    first_generation: Any  # (a pyro.wire.generations.Generation)

    def codec_for(self, generation: Any) -> Any: ...

    @property
    def reactor(self) -> Any: ...

    def connectionOpened(self, protocol: Pyro4Protocol) -> None: ...

    def connectionClosed(self, protocol: Pyro4Protocol, reason: Failure | None) -> None: ...


class ConnectionState(enum.Enum):
    """Pyro4's names for where a connection is in its life."""

    # Members are singletons: hashed by identity, in C (``Enum.__hash__`` hashes the name in
    # Python, and membership tests of these states run several times a request).
    __hash__ = object.__hash__

    SERVER = "server"  #: connected; the handshake (MSG_CONNECT) has not completed yet
    HEADER = "header"  #: idle: waiting for the 24 header bytes of the next request
    ANNOTATIONS = "annotations"  #: header read, waiting for its annotation bytes
    DATA = "data"  #: annotations read, waiting for the payload bytes
    RESPONSE = "response"  #: requests are being served (we owe responses, or oneway calls run)
    #: hanging up: nothing more is read or started; the replies still owed for requests
    #: that came before a servant's ``close()`` are written, then the connection closes
    CLOSING = "closing"
    CLOSED = "closed"  #: the connection is gone


_READ_STATES = {
    wire.ReadState.HEADER: ConnectionState.HEADER,
    wire.ReadState.ANNOTATIONS: ConnectionState.ANNOTATIONS,
    wire.ReadState.DATA: ConnectionState.DATA,
}
#: The states of a connection that passed the handshake and is open: it moves between these
#: as requests are read and served (see ``Pyro4Protocol._settle``).
_OPEN = frozenset({ConnectionState.HEADER, ConnectionState.ANNOTATIONS, ConnectionState.DATA,
                   ConnectionState.RESPONSE})
_ENDING = frozenset({ConnectionState.CLOSING, ConnectionState.CLOSED})


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


class _FirstBytes:
    """The reader of a connection before its first bytes say which generation it speaks.

    It keeps what arrived until :data:`pyro.wire.generations.PREFIX_SIZE` bytes are there
    (``b"PYRO"`` and the protocol version), has the protocol choose its codec from them
    (:meth:`Pyro4Protocol._speak`), and feeds everything to that codec's reader, which
    replaces it. Bytes that are no Pyro message at all go to the reader of the factory's
    first generation, whose own error (and refusal) they get, as from that daemon.
    """

    __slots__ = ("protocol", "pending")
    section = None
    state = wire.ReadState.HEADER

    def __init__(self, protocol: Pyro4Protocol):
        self.protocol = protocol
        self.pending = b""

    def feed(self, data: bytes) -> Any:
        data = self.pending + data if self.pending else data
        try:
            generation = generations.generation_of(data)
        except generations.UnknownGeneration:
            generation = self.protocol.factory.first_generation
        if generation is None:  # (a prefix of b"PYRO" and its version: more is needed)
            self.pending = data
            return ()
        self.pending = b""
        return self.protocol._speak(generation).feed(data)


class _Request:
    """A request being served (or served, its reply waiting for those before it)."""

    __slots__ = ("msg", "reply", "exclusive", "starting")

    def __init__(self, msg: wire.Message, exclusive: bool):
        self.msg = msg
        self.reply: Any = _PENDING
        self.exclusive = exclusive  # nothing behind it starts before it is done
        self.starting = True  # being started: its outcome may arrive before that is over


class Pyro4Protocol(PyroConnection, Protocol):
    """One Pyro4 client connection: bytes in, calls dispatched, replies out, in order.

    Requests are started in the order they arrived; those whose servant returned a Deferred
    or coroutine run concurrently with the requests behind them, except those that hold the
    connection (thread-pool and session-servant calls, the handshake: see the module
    docstring). Replies are written strictly in request order (Pyro4 clients check sequence
    numbers). Reading pauses when too many requests are unanswered. Oneway calls owe nothing
    and never hold up a reply.

    The protocol is also the connection object Pyro4's hooks receive (a
    :class:`~pyro.connection.PyroConnection`: ``sock``, ``objectId``, ``pyroInstances``,
    ``tracked_resources``, ``getpeercert()``, ``transport``).
    """

    factory: ServingFactory  # type: ignore[assignment]
    transport: Any  # set by makeConnection; typed loosely: TCP, UNIX and TLS all differ
    reader: wire.MessageReader  # set by connectionMade

    def __init__(self) -> None:
        PyroConnection.__init__(self)
        #: Where the connection is (:class:`ConnectionState`), changed at its transitions.
        self.state = ConnectionState.SERVER
        self.handshaken = False  # (a fact kept after the close: clientDisconnect needs it)
        # The requests being served, in arrival order, each until its reply is written (None
        # when there are none: no list on an idle connection).
        self._serving: list[_Request] | None = None
        self._paused = False  # we stopped reading: too many requests unanswered
        self._write_blocked = False  # the transport's write buffer is full
        # Requests read and not started yet (see _serve_queue). A plain list, not a deque:
        # it is almost always empty and rarely longer than MAX_QUEUED_REQUESTS, and an empty
        # deque costs 760 bytes on every idle connection (we aim at thousands of those).
        self._queue: list[wire.Message] = []
        # When this connection last received bytes or finished serving, on the factory's
        # clock; kept only when the factory has an ``idle_timeout`` (else the shared 0.0).
        self.last_active = 0.0
        # While the transport holds replies the client is not reading: how many bytes were
        # unsent at the factory's last look (see stalled_since), else None.
        self._unsent_seen: int | None = None

    @property
    def closing(self) -> bool:
        """We are hanging up (or the peer is gone): nothing more is read or started."""
        return self.state in _ENDING

    @property
    def closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    def _settle(self) -> None:
        """After reading or serving: RESPONSE while requests are being served, else where the
        reader is in the next request (HEADER, ANNOTATIONS, DATA). Only an open, handshaken
        connection moves this way; SERVER, CLOSING and CLOSED change at their own events."""
        if self.state in _OPEN:
            self.state = (ConnectionState.RESPONSE if self._serving
                          else _READ_STATES.get(self.reader.state, ConnectionState.HEADER))

    # -- Twisted's side -------------------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        # The generation is not known until the first bytes arrive: _FirstBytes reads them,
        # then hands over to the reader of the codec they chose (see _speak).
        self.reader = _FirstBytes(self)  # type: ignore[assignment]
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
                self._take(msg)
        except wire.WireError as error:
            self._serve_queue()
            self._protocol_violation(error)
            return
        self._serve_queue()  # (which also settles the state where the reader is now)
        if self.reader.section is not None and self._direct_socket is not None:
            # a large payload began: the rest is received straight into its buffer
            _transport.read_in_place(self.transport, self.reader, self._received_in_place)

    def _received_in_place(self, count: int) -> None:
        """``dataReceived`` for ``count`` bytes received into the reader's buffer."""
        if self.closing:
            return
        if self.factory.idle_timeout:
            self.last_active = self.factory.reactor.seconds()
        try:
            msg = self.reader.received(count)
        except wire.WireError as error:
            self._serve_queue()
            self._protocol_violation(error)
            return
        if msg is not None:  # (else the reader is still in DATA: no transition)
            self._take(msg)
            self._serve_queue()

    def _speak(self, generation: Any) -> wire.MessageReader:
        """The first bytes chose the protocol generation: this connection's codec and reader
        from now on. A generation the factory does not serve raises the
        :class:`~pyro.wire.WireError` its clients get (see :meth:`Pyro4ProtocolFactory.codec_for
        <pyro.server.factory.Pyro4ProtocolFactory.codec_for>`); the connection then answers
        in the codec that refusal is worded for."""
        try:
            codec = self.factory.codec_for(generation)
        except wire.WireError as refusal:
            codec = getattr(refusal, "codec", None)
            if codec is not None and codec is not self.codec:
                self.codec = codec
            raise
        if codec is not self.codec:
            self.codec = codec  # (a class attribute otherwise: Pyro4 connections pay nothing)
        self.reader = codec.reader(allowed_types=codec.server_handshake_types,
                                   **self.factory.reader_options)
        return self.reader

    def _take(self, msg: wire.Message) -> None:
        """A message read: queue it; after the first (the CONNECT) only requests are read."""
        self._queue.append(msg)
        if not self.handshaken:
            self.reader.allowed_types = self.codec.server_request_types

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.closed:
            return
        self.state = ConnectionState.CLOSED
        self._queue.clear()
        self._serving = None  # calls still running finish; their replies go nowhere
        _transport.stop_reading_in_place(self.transport)
        self.factory.connectionClosed(self, reason)

    # -- serving --------------------------------------------------------------------------

    def _serve_queue(self) -> None:
        """Start queued requests in order, until one holds the connection (or too many run).

        A request answered at once is replied to at once, unless replies of earlier
        requests are still owed: then its reply waits in :attr:`_serving` for theirs. While
        other requests are being served, a request takes its place there *before* it is
        started: its servant may complete earlier requests as it runs (firing what they
        wait for), and the replies then written, or requests started, must not overtake it.
        """
        queue = self._queue
        while queue and not (self._write_blocked or self.closing):
            serving = self._serving
            request = None
            if serving is not None:
                last = serving[-1]
                if ((last.exclusive and last.reply is _PENDING)
                        or len(serving) >= MAX_QUEUED_REQUESTS):
                    break
                request = _Request(queue[0], True)  # holds the connection while it starts
                serving.append(request)
            msg = queue.pop(0)
            exclusive = True
            if self.handshaken:
                outcome = self.factory.dispatcher.invoke(self, msg)
                if type(outcome) is Exclusive:
                    outcome = outcome.deferred
                else:
                    exclusive = False
            else:
                outcome = self.factory.dispatcher.handshake(self, msg)
            if isinstance(outcome, defer.Deferred):
                if request is None:  # nothing else is being served
                    request = _Request(msg, exclusive)
                    if not self.closing:  # (its servant may have hung up)
                        self._serving = [request]
                else:
                    request.exclusive = exclusive
                outcome.addCallback(self._finished, request)
                outcome.addErrback(self._internal_error, msg)
                request.starting = False
            elif request is None:
                self._send(outcome, msg)  # nothing owed before it: at once
            else:
                request.exclusive = False
                request.reply = outcome  # (None for a oneway call: nothing to write)
                self._flush()
        self._settle()
        self._flow_control()

    def _finished(self, outcome: Any, request: _Request) -> None:
        if self.closing and not (self._serving and request in self._serving):
            return  # hung up (or gone): nothing more is written, but replies still owed
        if self.factory.idle_timeout:
            self.last_active = self.factory.reactor.seconds()
        request.reply = outcome
        self._flush()
        if not (request.starting or self.closing):  # (else the loop starting it goes on)
            self._serve_queue()

    def _flush(self) -> None:
        """Write the replies now due: those of the oldest requests, in order. When hanging
        up, those are the replies still owed from before the hang-up; then it closes."""
        serving = self._serving
        owed = self.state is ConnectionState.CLOSING
        while serving and serving[0].reply is not _PENDING:
            done = serving.pop(0)
            self._send(done.reply, done.msg, owed)
            if self.closing and not owed:
                return
        if not serving:
            self._serving = None
            if owed:
                self.transport.loseConnection()
            self._settle()

    def _send(self, outcome: Any, msg: wire.Message, owed: bool = False) -> None:
        if self.closed or (self.closing and not owed):
            return
        if not self.handshaken and self.codec.is_connect(msg):
            reply, accepted = outcome
            self._write(reply)
            if accepted:
                self.handshaken = True
                self.state = ConnectionState.HEADER
            else:
                self._hang_up()
        elif outcome is not None:
            self._write(outcome)

    def _write(self, data: wire.Frame) -> None:
        """Send a reply now if the transport has nothing queued; else queue it as usual.

        Twisted's ``write`` only buffers: the bytes go out on the next reactor iteration,
        which costs every call an extra trip through the event loop (two ``epoll_ctl`` and
        one more ``epoll_wait``). Pyro4 clients wait for each reply, so that trip is pure
        latency; measured, sending at once saves 10-15 % of server CPU per call. Only done on
        a plain TCP transport whose buffers are empty (so ordering is kept); whatever the
        kernel does not take at once becomes Twisted's send buffer as it is, not copied
        (:func:`pyro._transport.hand_over`), and any error goes through Twisted's own path.

        A large reply comes as ``(head, payload)`` (:func:`pyro.wire.encode_parts`): both go
        out in one ``sendmsg``, and the payload is never copied behind its header.
        """
        transport = self.transport
        sock = self._direct_socket
        if (sock is not None and not transport.dataBuffer and not transport._tempDataBuffer
                and transport.connected and not transport.disconnecting
                and not getattr(transport, "TLS", False)):
            if isinstance(data, tuple):
                self._write_parts(sock, data)
                return
            try:
                sent = sock.send(data)
            except OSError:
                sent = 0  # would block, or an error that Twisted's write path will report
            if sent == len(data):
                return
            if sent:
                _transport.hand_over(transport, data, sent)
                return
        self._buffered_write(data)

    def _buffered_write(self, data: wire.Frame) -> None:
        """Twisted's own write path (a ``(head, payload)`` frame is joined there: one copy)."""
        if isinstance(data, tuple):
            self.transport.writeSequence(data)
        else:
            self.transport.write(data)

    def _write_parts(self, sock: Any, parts: tuple[bytes, bytes]) -> None:
        """The direct send of a ``(head, payload)`` reply (see :meth:`_write`)."""
        head, payload = parts
        try:
            sent = sock.sendmsg(parts)
        except OSError:
            sent = 0
        if sent >= len(head):
            if sent - len(head) < len(payload):
                _transport.hand_over(self.transport, payload, sent - len(head))
            return
        # Not even the head went out (the kernel's buffer is full): Twisted joins the rest
        # into one buffer, a copy of the payload that only this rare case costs.
        self.transport.writeSequence((head[sent:], payload))

    # -- IPushProducer, for our transport: a client that does not read its replies ----------

    def pauseProducing(self) -> None:
        """The write buffer is full: serve nothing more until the client reads."""
        self._write_blocked = True
        self._unsent_seen = None

    def resumeProducing(self) -> None:
        self._write_blocked = False
        if self.factory.idle_timeout:
            self.last_active = self.factory.reactor.seconds()
        self._serve_queue()

    def stalled_since(self, now: float) -> float | None:
        """Since when the client has taken none of the replies waiting for it (the factory's
        ``idle_timeout`` sweep asks, on its clock, ``now``); None when it is not stalled,
        or when the transport does not tell how much is unsent (then it is never taken
        for stalled).

        The counterpart of the send timeout of Pyro's servers (``COMMTIMEOUT``): a reply
        must progress, not finish, within it, so a large reply to a slow reader is no stall
        while its unsent part shrinks between two sweeps."""
        if not self._write_blocked or self.closing:
            return None
        unsent = _transport.unsent(self.transport)
        if unsent is None:
            return None
        if self._unsent_seen is None or unsent < self._unsent_seen:
            self._unsent_seen = unsent
            self.last_active = now  # (progress: counted from here)
        return self.last_active

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
        context = Pyro4.current_context
        seq = context.seq if getattr(context, "client", None) is self else None
        if threadable.isInIOThread():
            self._hang_up(seq)
        else:
            self.factory.reactor.callFromThread(self._hang_up, seq)

    def _hang_up(self, seq: int | None = None) -> None:
        """Close after what was written so far; start and read nothing more.

        ``seq``: the request whose servant hangs up. Requests pipelined before it that are
        still running (our server overlaps asynchronous calls) are answered first, as a
        Pyro4 daemon, serving one request at a time, would have answered them; the closing
        request and those started after it finish unanswered.
        """
        if self.closed:
            return
        self.state = ConnectionState.CLOSING
        self._queue.clear()
        owed: list[_Request] = []
        for index, request in enumerate(self._serving or ()):
            if seq is not None and request.msg.seq == seq:
                owed = self._serving[:index]  # type: ignore[index]
                break
        self._serving = owed or None
        if owed:
            self.transport.pauseProducing()  # nothing more is read; _flush closes
        else:
            self.transport.loseConnection()

    def abort(self) -> None:
        """Hang up now, dropping what is still unsent (the factory's ``close()``, as a Pyro4
        daemon's ``close()`` closes its client sockets): a client that does not read the
        reply it asked for cannot hold up a shutdown. (Reactor thread only.)"""
        self._hang_up()
        self.transport.abortConnection()

    def _internal_error(self, failure: Failure, msg: wire.Message) -> None:
        """A bug of ours, not the servant's: report it once and drop this connection only."""
        self._serving = None
        self.state = ConnectionState.CLOSING
        log.failure("internal error serving {peer}", failure,
                    peer=self.peer_address)
        self.transport.abortConnection()

    def _flow_control(self) -> None:
        """Stop reading from a client that floods us with requests; resume when drained."""
        if self.closing:
            return
        producer = self.transport  # an IPushProducer, as every stream transport is
        unanswered = len(self._queue) + (len(self._serving) if self._serving else 0)
        if not self._paused and unanswered >= MAX_QUEUED_REQUESTS:
            self._paused = True
            producer.pauseProducing()
        elif self._paused and unanswered < MAX_QUEUED_REQUESTS // 2:
            self._paused = False
            producer.resumeProducing()

    def _protocol_violation(self, error: wire.WireError) -> None:
        """The byte stream is broken: answer what Pyro4 would answer, then close cleanly.

        Before the handshake that is a CONNECTFAIL with the reason. After it, Pyro4 just
        closes; we first answer a too-large message with Pyro4's ``MessageTooLargeError``
        (its header told us the sequence number), unless earlier requests still owe replies.
        """
        log.info("closing connection from {peer}: {error}", peer=self.peer_address,
                 error=getattr(error, "log_text", None) or str(error))
        if self.closing:
            return
        dispatcher = self.factory.dispatcher
        if not self.handshaken and not self._serving:
            self._buffered_write(dispatcher.connect_fail(self, error.message, error.cause))
        elif (isinstance(error.cause, self.codec.errors.MessageTooLargeError)
              and error.message is not None
              and not self._serving and not self._queue):
            self._buffered_write(dispatcher.exception_reply(self, error.message, error.cause))
        self._hang_up()


