"""One Pyro client connection: the handshake, then pipelined calls matched to replies.

This is the thin Twisted shell around :mod:`pyro.wire` on the client side: bytes in,
messages out, each reply handed to the call waiting for it. It knows nothing of pools,
names or retries (that is :mod:`pyro.client.pool` and :mod:`pyro.client.proxy`), nor of
the protocol generation: its :attr:`PyroClientProtocol.codec` (``PYRO4`` or ``PYRO5``)
knows the messages, and brings that generation's errors and ``current_context``.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable
from typing import Any

from Pyro4 import constants
from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure

from .. import _transport, wire
from .._reactor import with_timeout
from ..wire.events import REPLY_RESULT, REPLY_STREAM, Request
from ..wire.pyro4 import PYRO4

__all__ = ["ClientState", "ItemStream", "PyroClientProtocol"]

log = Logger(namespace="pyro.client.protocol")



#: Values that hold no ``Pyro4.Proxy``: a result of one of these types is not searched.
_LEAVES = frozenset({bytes, str, bytearray, int, float, bool, type(None)})


class ClientState(enum.Enum):
    """Where a client connection is in its life."""

    HANDSHAKE = "handshake"  #: CONNECT sent; waiting for CONNECTOK / CONNECTFAIL
    READY = "ready"  #: handshake done; INVOKE requests may be pipelined
    CLOSED = "closed"  #: broken or lost; every waiting call has been failed


class _Call:
    """One request and the Deferred its caller holds.

    A call is *done* once its Deferred fired or was cancelled; a reply that arrives for a done
    call is dropped (after its sequence number was checked, so the pipeline stays in sync).
    A *pinned* call must go on one connection (``pinned``: an item stream's requests, tied
    to the connection that returned the stream); ``ticket`` orders queued calls (a pool
    sends the oldest first). ``oneway`` may still be set after :meth:`prepare` (the
    metadata that says so may arrive later): it is applied when the call is framed.
    """

    __slots__ = ("object_id", "method", "vargs", "kwargs", "oneway", "batch", "annotations",
                 "check", "timeout", "deferred", "request", "data_object_id", "sent", "done",
                 "on_done", "pinned", "ticket", "retries", "owner")

    def __init__(self, object_id: str | None, method: str, vargs: Any, kwargs: Any,
                 oneway: bool = False, annotations: dict[str, bytes] | None = None,
                 check: str | None = None, timeout: float | None = None, batch: bool = False):
        self.object_id = object_id  # None: the proxy's own object (metadata rules apply)
        self.method = method
        self.vargs = vargs
        self.kwargs = kwargs
        self.oneway = oneway
        self.batch = batch  # vargs is a list of (method, vargs, kwargs)
        self.annotations = annotations or {}
        self.check = check  # "method", "attr" or None: what metadata must allow
        self.timeout = timeout
        self.deferred: defer.Deferred[Any] = defer.Deferred(self._cancelled)
        self.request: Request | None = None  # serialized, for data_object_id
        self.data_object_id: str | None = None
        self.sent = False
        self.done = False
        self.on_done: Callable[[_Call], None] | None = None
        self.pinned: PyroClientProtocol | None = None
        self.ticket = 0
        self.retries = 0  # times it may be sent again after losing its connection
        # The proxy (set by DeferredProxy), kept alive by the call while the call is queued
        # or on a connection: until its reply is read or the connection fails, even after
        # it was cancelled or timed out (it still takes up a place that queued calls may be
        # waiting for). An item stream the call returns keeps it as well.
        self.owner: Any = None

    def prepare(self, serializer: Any, object_id: str, codec: Any = PYRO4) -> None:
        """Serialize now, so arguments are captured at call time, as Pyro4 does."""
        self.request = codec.request(serializer, object_id, self.method, self.vargs,
                                     self.kwargs, batch=self.batch)
        self.data_object_id = object_id

    @property
    def serializer(self) -> Any:
        """The serializer the call was sent with (its reply must use the same)."""
        return self.request.serializer if self.request is not None else None

    def _cancelled(self, _: defer.Deferred[Any]) -> None:
        self._finish()  # the Deferred then fails with CancelledError by itself

    def _finish(self) -> bool:
        if self.done:
            return False
        self.done = True
        if not self.sent:
            self.owner = None  # never on a connection (see owner)
        hook, self.on_done = self.on_done, None
        if hook is not None:
            hook(self)
        return True

    def succeed(self, result: Any) -> None:
        if self._finish():
            self.deferred.callback(result)

    def fail(self, reason: BaseException | Failure) -> None:
        if self._finish():
            self.deferred.errback(reason if isinstance(reason, Failure) else Failure(reason))


class PyroClientProtocol(Protocol):
    """One Pyro client connection: handshake, then pipelined calls, replies matched in order.

    Pyro servers (Pyro4's, Pyro5's and ours) serve one request at a time per connection and
    answer in order, so the next reply must carry the oldest outstanding sequence number.
    Anything else (an out-of-sequence reply, bytes that are not a Pyro message, an HMAC
    mismatch) means the stream can no longer be trusted: every waiting call fails with that
    Pyro error and the connection is aborted. A lost connection fails them with
    ``ConnectionClosedError``. The errors are the generation's own (``codec.errors``:
    ``Pyro4.errors`` or ``Pyro5.errors``), and so is the ``current_context`` whose
    ``response_annotations`` a reply sets.

    :ivar ready: fires with the protocol after CONNECTOK; fails with ``CommunicationError``.
    :ivar on_load_change: ``f(protocol)`` or ``None``; called whenever :attr:`load` changed
        (a request written, a reply read, late replies to abandoned calls included) and when
        the connection stops being usable (``state`` becomes ``CLOSED``), before the calls
        concerned are completed. A pool uses it to keep its connections filed by load
        instead of scanning them all for every call and every reply.
    :ivar scheduler: ``f(protocol, call)`` or ``None``; set by the owner of a pool. Then
        :meth:`call` (item stream requests) does not write at once: it appends the call to
        :attr:`waiting` and tells the scheduler, which sends the waiting calls with
        :meth:`send`, oldest first, when its bounds allow. Without one they are written at
        once.
    :ivar waiting: calls pinned to this connection that were not written yet, in order; they
        fail with the calls in flight when the connection breaks.
    :ivar on_response_annotations: ``f(annotations, msg_type)`` or ``None``; called with the
        annotations of every reply that has some (for a call still waiting for it), before
        the reply is decoded, as a ``Pyro4.Proxy`` calls its ``_pyroResponseAnnotations``. An
        exception it raises fails that call.
    :ivar on_call_lost: ``f(call, error)`` or ``None``; asked about each call that was
        written and is still owed a reply when the connection fails: if it returns true it
        has taken the call (to send it again elsewhere), else the call fails with ``error``.
    :ivar on_result: ``f(value, msg)`` or ``None``; every successful reply's value that may
        hold a ``Pyro4.Proxy`` (the codec can tell from the payload) passes through it
        (``msg``: the reply, a :class:`pyro.wire.Message`) and the call gets what
        it returns: a proxy replaces what Pyro4's deserializer built there (autoproxies). An
        exception it raises fails that call.
    :ivar handshake_annotations: the annotations of the ``CONNECTOK`` reply.
    """

    transport: Any  # set by makeConnection; TCP, UNIX and TLS transports all differ
    #: The protocol generation this connection speaks (what its messages mean): ``PYRO4``
    #: unless the constructor is given another codec (``pyro.wire.pyro5.PYRO5``).
    codec: Any = PYRO4

    def __init__(self, object_id: str, serializer: Any, hmac_key: bytes | None = None,
                 handshake: Any = "hello", annotations: dict[str, bytes] | None = None,
                 location: str = "?", clock: Any = None, codec: Any = None):
        if codec is not None:
            self.codec = codec
        self.object_id = object_id
        self.serializer = serializer
        self.hmac_key = hmac_key
        self.handshake = handshake
        self.annotations = annotations or {}
        self.location = location
        self.clock = clock
        self.state = ClientState.HANDSHAKE
        self.want_metadata = self.codec.wants_metadata()  # read now, as Pyro4 does (Pyro5:
        # always)
        self.metadata: dict[str, Any] | None = None
        self.handshake_response: Any = None
        self.handshake_annotations: dict[str, bytes] = {}
        self.ready: defer.Deferred[PyroClientProtocol] = defer.Deferred(self._cancel_handshake)
        self.reader = self.codec.reader(hmac_key=lambda: self.hmac_key,
                                        allowed_types=self.codec.client_handshake_types)
        self._seq = 0
        self._pending: collections.deque[tuple[int, _Call]] = collections.deque()
        self._lost = False
        self._lost_waiters: list[defer.Deferred[None]] = []
        self.on_load_change: Callable[[PyroClientProtocol], None] | None = None
        self.scheduler: Callable[[PyroClientProtocol, _Call], None] | None = None
        self.waiting: collections.deque[_Call] = collections.deque()
        self.on_response_annotations: Callable[[dict[str, bytes], int], None] | None = None
        self.on_result: Callable[[Any, wire.Message], Any] | None = None
        self.on_call_lost: Callable[[_Call, BaseException], bool] | None = None

    @property
    def load(self) -> int:
        """Replies still owed on this connection (abandoned calls included: they occupy it)."""
        return len(self._pending)

    # -- Twisted's side -------------------------------------------------------------------

    def connectionMade(self) -> None:
        try:
            frame = self.codec.connect(self.serializer, self.handshake,
                                       self.object_id if self.want_metadata else None,
                                       self.annotations, self.hmac_key, self._seq)
        except Exception as exc:
            self._abort(exc)
            return
        self.transport.write(frame)

    def dataReceived(self, data: bytes) -> None:
        try:
            for msg in self.reader.feed(data):
                if self.state is ClientState.HANDSHAKE:
                    self._handshake_reply(msg)
                elif self.state is ClientState.READY:
                    self._reply(msg)
                if self.state is ClientState.CLOSED:
                    return
        except wire.WireError as error:
            self._abort(error.cause)
            return
        if self.reader.section is not None:
            # a large reply began: the rest is received straight into its buffer
            _transport.read_in_place(self.transport, self.reader, self._received_in_place)

    def _received_in_place(self, count: int) -> None:
        """``dataReceived`` for ``count`` bytes received into the reader's buffer."""
        if self.state is ClientState.CLOSED:
            return
        try:
            msg = self.reader.received(count)
        except wire.WireError as error:
            self._abort(error.cause)
            return
        if msg is None:
            return
        if self.state is ClientState.HANDSHAKE:
            self._handshake_reply(msg)
        else:
            self._reply(msg)

    def connectionLost(self, reason: Failure | None = None) -> None:
        _transport.stop_reading_in_place(self.transport)
        if self.state is not ClientState.CLOSED:
            what = ("connection closed before the handshake completed"
                    if self.state is ClientState.HANDSHAKE else "connection lost")
            why = reason.getErrorMessage() if reason is not None else "unknown reason"
            self._fail_all(self.codec.errors.ConnectionClosedError(
                "%s to %s: %s" % (what, self.location, why)))
        self._lost = True
        waiters, self._lost_waiters = self._lost_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- API used by DeferredProxy and ItemStream -----------------------------------------

    def when_lost(self) -> defer.Deferred[None]:
        """A Deferred that fires once the transport is really gone (for clean shutdowns)."""
        if self._lost:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._lost_waiters.append(waiter)
        return waiter

    def close(self, reason: BaseException | None = None) -> None:
        """Close politely (writes already made are flushed first).

        With a ``reason``, calls still waiting for a reply fail with it at once, rather than
        with ``ConnectionClosedError`` when the transport is gone.
        """
        if reason is not None and self.state is not ClientState.CLOSED:
            self._fail_all(reason)
        if self.transport is not None and not self._lost:
            self.transport.loseConnection()

    def send(self, call: _Call) -> None:
        """Write ``call`` (already serialized) with the next sequence number.

        A oneway call succeeds with ``None`` once it is handed to the transport; any other
        call waits for its reply in the pipeline.
        """
        if self.state is not ClientState.READY:
            call.fail(self.codec.errors.ConnectionClosedError("connection to %s is %s" % (
                self.location, self.state.value)))
            return
        self._seq = (self._seq + 1) & 0xFFFF
        oneway = call.oneway
        try:
            assert call.request is not None, "a call is prepared before it is sent"
            frame = self.codec.invoke(call.request, self._seq, self.hmac_key, oneway,
                                      call.annotations)
        except Exception:
            call.fail(Failure())  # e.g. MessageTooLargeError: this call only
            return
        if not oneway:
            self._pending.append((self._seq, call))
            self._load_changed()
        self.transport.write(frame)
        if oneway:
            # no reply, so no response annotations: Pyro4's proxy leaves the context's empty
            self.codec.context.response_annotations = {}
            call.succeed(None)

    def call(self, object_id: str, method: str, vargs: Any, kwargs: Any, oneway: bool = False,
             timeout: float | None = None) -> defer.Deferred[Any]:
        """A call pinned to this connection (item streams, metadata), serialized here.

        With a :attr:`scheduler` (the connection belongs to a pool) it waits for its turn
        behind this connection's earlier pinned calls; the ``timeout`` counts the waiting.
        """
        call = _Call(object_id, method, vargs, kwargs, oneway, timeout=timeout)
        try:
            call.prepare(self.serializer, object_id, self.codec)
        except Exception:
            return defer.fail()
        call.pinned = self
        with_timeout(call.deferred, timeout, self.clock, self.codec.errors.TimeoutError)
        scheduler = self.scheduler
        if scheduler is not None and self.state is ClientState.READY:
            self.waiting.append(call)
            scheduler(self, call)
        else:
            self.send(call)
        return call.deferred

    # -- replies --------------------------------------------------------------------------

    def _handshake_reply(self, msg: wire.Message) -> None:
        try:
            reply = self.codec.read_connect_reply(msg)
            if not reply.accepted:
                raise self.codec.errors.CommunicationError(
                    "connection to %s rejected: %s" % (self.location, reply.response))
        except Exception as exc:
            self._abort(exc)
            return
        if reply.metadata is not None:
            self.metadata = reply.metadata
        self.handshake_response = reply.response
        self.handshake_annotations = msg.annotations
        self.reader.allowed_types = self.codec.client_reply_types
        self.state = ClientState.READY
        self.ready.callback(self)

    def _reply(self, msg: wire.Message) -> None:
        errors = self.codec.errors
        if not self._pending:
            self._abort(errors.ProtocolError(
                "unexpected reply with seq %d: no call is waiting for one" % msg.seq))
            return
        seq, call = self._pending[0]
        if msg.seq != seq:
            self._abort(errors.ProtocolError(
                "invoke: reply sequence out of sync, got %d expected %d" % (msg.seq, seq)))
            return
        self._pending.popleft()
        owner, call.owner = call.owner, None  # (alive until the end of this method)
        self._load_changed()  # first: the pool may reuse this connection for queued calls
        if call.done:
            return  # cancelled or timed out: the reply is dropped
        self.codec.context.response_annotations = msg.annotations
        try:
            hook = self.on_response_annotations
            if hook is not None and msg.annotations:
                hook(msg.annotations, msg.type)
            ok, value = self._decode(msg, call, owner)
        except Exception:
            call.fail(Failure())  # this reply only; the stream itself is still in sync
            return
        if ok:
            call.succeed(value)
        else:
            call.fail(value)

    def _decode(self, msg: wire.Message, call: _Call, owner: Any = None) -> tuple[bool, Any]:
        codec = self.codec
        kind, value = codec.read_reply(msg, call.serializer)
        if kind is REPLY_STREAM:
            return True, ItemStream(value, self, call.timeout, owner)
        if kind is not REPLY_RESULT:
            return False, value
        hook = self.on_result
        if hook is None or type(value) in _LEAVES or not codec.may_hold_proxies(msg):
            return True, value  # (a large bytes result is not even scanned: it took longer
        return True, hook(value, msg)  # than receiving it, on 64 MiB)

    # -- failure --------------------------------------------------------------------------

    def _cancel_handshake(self, _: defer.Deferred[Any]) -> None:
        self.state = ClientState.CLOSED
        if self.transport is not None:
            self.transport.abortConnection()

    def _abort(self, error: BaseException) -> None:
        """The stream is unusable: fail everyone with ``error`` and drop the connection."""
        log.warn("closing {generation} connection to {location}: {error}",
                 generation=self.codec.name, location=self.location, error=str(error))
        self._fail_all(error)
        if self.transport is not None:
            self.transport.abortConnection()

    def _load_changed(self) -> None:
        hook = self.on_load_change
        if hook is not None:
            hook(self)

    def _fail_all(self, error: BaseException) -> None:
        state, self.state = self.state, ClientState.CLOSED
        if state is ClientState.HANDSHAKE and not self.ready.called:
            communication_error = self.codec.errors.CommunicationError
            if not isinstance(error, communication_error):
                cause, error = error, communication_error(
                    "cannot connect to %s: %s" % (self.location, error))
                error.__cause__ = cause
            self.ready.errback(error)
        pending, self._pending = self._pending, collections.deque()
        waiting, self.waiting = self.waiting, collections.deque()
        if state is not ClientState.CLOSED:
            self._load_changed()  # the pool must drop it before the failed calls' callbacks run
        retry = self.on_call_lost
        if retry is not None:  # all offered first: no errback may send a newer call ahead
            pending = collections.deque(item for item in pending if not retry(item[1], error))
        for _, call in pending:
            call.fail(error)
            call.owner = None
        for call in waiting:  # after the older ones in flight
            call.fail(error)


class ItemStream:
    """The client side of a Pyro item stream (a servant returned an iterator or generator).

    Items are fetched one call at a time, on the connection that returned the stream (the
    server ties the stream to it). Two ways to consume it::

        async for item in stream: ...          # in a coroutine (ensureDeferred)

        item = yield stream.next()             # Deferred per item (inlineCallbacks)

    At the end, ``next()`` fails with ``StopAsyncIteration`` (not ``StopIteration``, which
    Python turns into ``RuntimeError`` when it leaves a generator or coroutine). ``close()``
    tells the server to drop the stream early, and so does a stream collected before its
    end; a lost connection ends it with ``ConnectionClosedError``.
    """

    def __init__(self, stream_id: str, protocol: PyroClientProtocol,
                 timeout: float | None = None, owner: Any = None):
        self.stream_id = stream_id
        self._protocol = protocol
        self._timeout = timeout
        self._done = False
        # The proxy whose call returned the stream: kept alive while the stream is, as a
        # Pyro4 stream iterator keeps its proxy (a proxy nobody holds closes its connections).
        self._owner = owner

    def next(self) -> defer.Deferred[Any]:
        """The next item; fails with ``StopAsyncIteration`` at the end."""
        if self._done:
            return defer.fail(StopAsyncIteration())
        if self._protocol.state is not ClientState.READY:
            self._done = True
            return defer.fail(self._protocol.codec.errors.ConnectionClosedError(
                "the connection for this item stream has been closed"))
        d = self._protocol.call(constants.DAEMON_NAME, "get_next_stream_item",
                                [self.stream_id], {}, timeout=self._timeout)
        return d.addErrback(self._ended)

    def _ended(self, failure: Failure) -> Failure:
        # After StopIteration, a request that was already pipelined behind it gets the
        # server's "item stream terminated": that is the same end, not an error.
        if failure.check(StopIteration, GeneratorExit) or (
                self._done and failure.check(self._protocol.codec.errors.PyroError)):
            self._done = True
            return Failure(StopAsyncIteration())
        return failure

    def close(self) -> defer.Deferred[None]:
        """Ask the server to drop the stream (a oneway call, as Pyro4 does)."""
        if self._done or self._protocol.state is not ClientState.READY:
            self._done = True
            return defer.succeed(None)
        self._done = True
        return self._protocol.call(constants.DAEMON_NAME, "close_stream", [self.stream_id], {},
                                   oneway=True)

    def __aiter__(self) -> ItemStream:
        return self

    def __anext__(self) -> defer.Deferred[Any]:
        return self.next()

    def __del__(self) -> None:
        """A stream dropped before its end (``break`` out of ``async for``) is closed, as
        Pyro4's stream iterator closes itself when it is collected: the server need not
        keep it until it expires. (From another thread, the close is sent by the reactor.)
        """
        if self._done:
            return
        protocol, stream_id = self._protocol, self.stream_id
        try:
            if threadable.isInIOThread():
                _close_stream(protocol, stream_id)
            else:
                protocol.clock.callFromThread(_close_stream, protocol, stream_id)
        except Exception:  # (the reactor, or the interpreter, is ending: it expires)
            pass

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, self.stream_id)


def _close_stream(protocol: PyroClientProtocol, stream_id: str) -> None:
    """Tell the server to drop an item stream nobody reads any more (a oneway call)."""
    if protocol.state is ClientState.READY:
        protocol.call(constants.DAEMON_NAME, "close_stream", [stream_id], {},
                      oneway=True).addErrback(lambda _: None)
