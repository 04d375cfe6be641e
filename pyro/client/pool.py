"""The connections of one proxy to its server, and the calls waiting for them.

:class:`ConnectionPool` is the part of a :class:`~pyro.client.proxy.DeferredProxy` that deals
in connections (:class:`~pyro.client.protocol.PyroClientProtocol`), not in Pyro4's proxy
behaviour: it opens them, keeps ``min_connections`` of them, backs off after failed attempts,
closes them, chooses the connection each call goes on, and holds calls in its queue while the
bounds (``max_in_flight``, the room on each connection) say wait. Whatever belongs to the
proxy (resolving a ``PYRONAME:``, the settings of a new connection, metadata and handshake
validation, metadata checks and serialization of a call) it asks its owner through
:class:`PoolOwner`, which it holds weakly: a pool never keeps its proxy alive (its queued
calls do, see :mod:`pyro.client.lifetime`).

The import points one way: ``proxy -> pool -> protocol``.
"""

from __future__ import annotations

import collections
import itertools
import math
import weakref
from collections.abc import Awaitable, Callable
from typing import Any
from typing import Protocol as TypingProtocol

from Pyro4 import errors
from Pyro4.core import URI
from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._reactor import default_reactor
from .protocol import ClientState, PyroClientProtocol, _Call

__all__ = ["ConnectionPool", "PoolOwner", "wait_only"]

log = Logger(namespace="pyro.client.proxy")  # the namespace these events always had


class PoolOwner(TypingProtocol):
    """What a :class:`ConnectionPool` asks of the proxy it serves."""

    def _resolve_uri(self) -> Awaitable[URI]:
        """The ``PYRO:`` URI to connect to (a ``PYRONAME:`` resolved through the name server)."""

    def _protocol_factory(self, uri: URI) -> Callable[[], PyroClientProtocol]:
        """What builds a connection to ``uri``, with the proxy's settings taken now (it must
        not keep the proxy alive)."""

    def _accept_connection(self, protocol: PyroClientProtocol, wait: float) -> Awaitable[None]:
        """After the handshake: metadata, handshake validation; raise to refuse the server."""

    def _connect_wait(self) -> float:
        """Seconds for the TCP connection, and again for the handshake reply."""

    def _before_send(self, call: _Call, protocol: PyroClientProtocol) -> bool:
        """Last checks of a call about to go on ``protocol`` (metadata, serialization, for
        calls that were not done earlier): False if it failed the call."""

    def _annotate_pinned(self, call: _Call) -> None:
        """An item stream's request was made: give it the proxy's annotations."""


def _fire(_: Any, waiter: defer.Deferred[None]) -> None:
    waiter.callback(None)


def wait_only(closing: defer.Deferred[None]) -> defer.Deferred[None]:
    """A Deferred that fires as ``closing`` does; cancelling it fails it alone.

    Why: a close goes on when its caller stops waiting (a cancelled coroutine in its
    ``finally``). Cancelling a ``gatherResults`` of the connections' waits would cancel each
    of them, leave their ``CancelledError`` unhandled (logged when collected), fail the
    caller with ``FirstError`` rather than ``CancelledError``, and leave the pool closing.
    """
    waiter: defer.Deferred[None] = defer.Deferred()  # no canceller: a later result is ignored
    closing.chainDeferred(waiter)
    return waiter


class _ProtocolFactory(Factory):
    noisy = False

    def __init__(self, build: Callable[[], PyroClientProtocol]):
        self._build = build

    def buildProtocol(self, addr: Any) -> PyroClientProtocol:
        protocol = self._build()
        protocol.factory = self
        return protocol


class _LoadIndex:
    """The READY connections of a pool that have room for another call, filed by load.

    Why: the pool sends each call on the least loaded connection. Scanning all connections
    for it, for every call sent and every reply read, made a burst over thousands of
    connections quadratic (most of the client's CPU time). Here each connection sits in the
    insertion-ordered dict of its load level (full ones, ``load >= capacity``, in none), and
    the owner re-files it whenever its load changes (``PyroClientProtocol.on_load_change``):
    one level up per request, one down per reply. ``_lowest`` is a lower bound of the lowest
    occupied level, so :meth:`least_loaded` only walks up past levels found empty; that
    bound drops by one level per reply and to 0 for a new connection, so the walking is
    O(1) amortized per call (a lost connection may add one walk of at most ``capacity``
    levels). Among connections of equal load the one that has been at that load longest is
    picked first.
    """

    __slots__ = ("capacity", "_levels", "_level_of", "_lowest")

    def __init__(self, capacity: int):
        self.capacity = capacity  # calls in flight per connection
        self._levels: dict[int, dict[PyroClientProtocol, None]] = {}
        self._level_of: dict[PyroClientProtocol, int] = {}
        self._lowest = 0

    def update(self, protocol: PyroClientProtocol) -> bool:
        """File ``protocol`` under its current load; True if that made room for a call."""
        old = self._take(protocol)
        load = protocol.load
        if protocol.state is not ClientState.READY or load >= self.capacity:
            return False
        level = self._levels.get(load)
        if level is None:
            level = self._levels[load] = {}
        level[protocol] = None
        self._level_of[protocol] = load
        if load < self._lowest:
            self._lowest = load
        return old is None or load < old

    def discard(self, protocol: PyroClientProtocol) -> None:
        self._take(protocol)

    def _take(self, protocol: PyroClientProtocol) -> int | None:
        old = self._level_of.pop(protocol, None)
        if old is not None:
            level = self._levels[old]
            del level[protocol]
            if not level:
                del self._levels[old]
        return old

    def least_loaded(self) -> tuple[PyroClientProtocol | None, int]:
        """A connection with room for a call, of the lowest load, and that load."""
        if not self._level_of:
            return None, 0
        while self._lowest not in self._levels:
            self._lowest += 1
        return next(iter(self._levels[self._lowest])), self._lowest


class ConnectionPool:
    """Up to ``max_connections`` pipelined connections to one server, and the call queue.

    See :class:`~pyro.client.proxy.DeferredProxy` for what the settings mean to a user. The
    proxy hands calls to :meth:`submit` (Pyro4's proxy behaviour already applied: metadata
    checks, annotations, serialization where the object id is known); the pool sends each,
    oldest first, once ``max_in_flight`` and the room on a connection allow, and opens the
    connections that the calls waiting or in flight could use.

    Which connection a call goes on, so that calls issued together run concurrently even on
    servers that serve one request per connection at a time (Pyro4's daemons; ours for
    blocking or session servants, see :mod:`pyro.server.protocol`):

    1. an idle connection (no reply owed), if there is one;
    2. else a new connection, while ``max_connections`` allows: the call waits for a
       connection being opened (one attempt per waiting call, see :meth:`_maybe_open`)
       rather than queueing behind a busy one, where it would wait for the call ahead;
    3. only when no connection is being opened and no more may be (all of
       ``max_connections`` are up, or the pool is backing off after a failed attempt) are
       calls pipelined: each on the least loaded connection with room
       (``per_connection``), so a burst is spread evenly over the connections.

    Calls are sent in the order they were made (item stream requests, which can only go on
    their own connection, may pass a call waiting for a new connection).

    :ivar connections: every connection not gone yet (broken ones too, until they are lost).
    :ivar ready: the usable (READY) connections, in the order they came up.
    :ivar resolved: the ``PYRO:`` URI connected to (``None``: to be resolved again).
    :ivar in_flight: calls sent and not answered (abandoned ones included, until their reply).
    """

    #: Connection attempts that may run at once once the server is known to accept them:
    #: enough to grow a pool by thousands quickly, few enough not to overflow a server's
    #: listen backlog (commonly 50-128 by default) with a single proxy's SYNs.
    max_attempts = 64

    def __init__(self, owner: PoolOwner, uri: URI, reactor: Any = None,
                 max_connections: int = 4, min_connections: int = 0, max_in_flight: int = 64,
                 backoff: Callable[[int], float] | None = None,
                 endpoint_factory: Callable[[Any, URI, float], Any] | None = None,
                 errors: Any = errors):
        #: the error classes of the proxy's Pyro generation (``Pyro4.errors``/``Pyro5.errors``)
        self.errors = errors
        # Weakly: the pool must not keep its proxy alive (a dropped proxy closes its pool).
        self._owner: Callable[[], PoolOwner | None] = weakref.ref(owner)
        self.uri = uri
        self._reactor = reactor
        self.max_connections = max(1, max_connections)
        if not 0 <= min_connections <= self.max_connections:
            raise ValueError("min_connections must be between 0 and max_connections (%d), "
                             "not %r" % (self.max_connections, min_connections))
        self.min_connections = min_connections
        self.max_in_flight = max(1, max_in_flight)
        self.per_connection = max(1, math.ceil(self.max_in_flight / self.max_connections))
        assert backoff is not None and endpoint_factory is not None
        self._backoff = backoff
        self._endpoint_factory = endpoint_factory
        self.connections: set[PyroClientProtocol] = set()
        self.ready: dict[PyroClientProtocol, None] = {}
        self._spare = _LoadIndex(self.per_connection)  # the READY ones with room for a call
        self.resolved: URI | None = uri if uri.protocol == "PYRO" else None
        self.queue: collections.deque[_Call] = collections.deque()
        self._bind_waiters: list[defer.Deferred[None]] = []
        self.in_flight = 0
        self._attempts: set[defer.Deferred[Any]] = set()  # connection attempts under way
        self._failures = 0
        self._next_attempt = 0.0
        self._retry_call: Any = None
        self.closing = False
        self._abandoned = False  # the proxy was collected: no more connections, ever
        self._in_use = False  # a call or connect() since construction or the last close()
        self._dispatching = False
        self._redispatch = False
        # item stream requests: the connections with some waiting (protocol.waiting), and
        # the tickets that order them against the queue
        self.pinned: dict[PyroClientProtocol, None] = {}
        self._tickets = itertools.count()

    @property
    def _clock(self) -> Any:
        return default_reactor(self._reactor)

    # -- what the proxy uses --------------------------------------------------------------

    def submit(self, call: _Call) -> None:
        """Queue ``call`` (serialized, timeout set) and send it when the bounds allow."""
        call.on_done = self._call_done
        call.ticket = next(self._tickets)
        self._in_use = True
        self.queue.append(call)
        self._dispatch()

    def connect(self) -> defer.Deferred[None]:
        """Fires when at least one connection is up (see ``DeferredProxy.connect``)."""
        if self.ready:
            return defer.succeed(None)

        def cancel(waiter: defer.Deferred[None]) -> None:
            if waiter in self._bind_waiters:
                self._bind_waiters.remove(waiter)

        waiter: defer.Deferred[None] = defer.Deferred(cancel)
        self._bind_waiters.append(waiter)
        self._in_use = True
        self._dispatch()
        return waiter

    def close(self, reason: BaseException) -> defer.Deferred[None]:
        """Close every connection; fires when they are gone. Queued and in-flight calls fail
        with ``reason``; a later call opens a new connection (as after Pyro4's
        ``_pyroRelease``). Cancelling the Deferred stops the waiting, not the closing."""
        self.closing = True
        self._in_use = False
        if self._retry_call is not None:
            self._retry_call.cancel()
            self._retry_call = None
        calls, self.queue = list(self.queue), collections.deque()
        waiters, self._bind_waiters = self._bind_waiters, []
        for call in calls:
            call.fail(reason)
        for waiter in waiters:
            waiter.errback(reason)
        waits: list[defer.Deferred[Any]] = []
        for attempt in list(self._attempts):
            done: defer.Deferred[None] = defer.Deferred()
            attempt.addBoth(_fire, done)  # after _connected/_connect_failed, and the loss
            waits.append(done)
            attempt.cancel()
        for protocol in list(self.connections):  # broken ones too: wait until gone
            waits.append(protocol.when_lost())
            protocol.close(reason)

        def closed_now(_: Any) -> None:
            self.closing = False
            self._failures, self._next_attempt = 0, 0.0

        return wait_only(defer.gatherResults(waits).addCallback(closed_now))

    def abandon(self) -> None:
        """The proxy was garbage collected: close the connections it left, open no more
        (nothing waits for them: queued calls and open streams keep their proxy alive)."""
        self._abandoned = True
        self._in_use = False
        if self._retry_call is not None:
            self._retry_call.cancel()
            self._retry_call = None
        for protocol in list(self.connections):
            protocol.close(self.errors.ConnectionClosedError("the proxy was garbage collected"))

    @property
    def retrying(self) -> bool:
        """A connection attempt is due once the backoff delay is over."""
        return self._retry_call is not None

    @property
    def queued(self) -> int:
        """Calls waiting to be sent (item stream requests included)."""
        return len(self.queue) + sum(len(protocol.waiting) for protocol in self.pinned)

    # -- choosing a connection ------------------------------------------------------------

    def _schedule_pinned(self, protocol: PyroClientProtocol, call: _Call) -> None:
        """A call for one connection only (an item stream's ``next``/``close``) was queued.

        It waits in ``protocol.waiting`` (which keeps its order against the stream's other
        requests) and counts like any other call: it is sent, oldest first among all the
        queued calls, once ``max_in_flight`` and that connection's share of it allow. It
        carries the proxy's annotations (``CORR`` and the context's), as Pyro4's streams do.
        """
        owner = self._owner()
        if owner is not None:
            owner._annotate_pinned(call)
        call.on_done = self._call_done
        call.ticket = next(self._tickets)
        self.pinned[protocol] = None
        self._dispatch()

    def _dispatch(self) -> None:
        """Send queued calls while the bounds allow; open connections when all are busy."""
        if self._dispatching:
            self._redispatch = True  # re-entered from a callback: the outer loop goes again
            return
        self._dispatching = True
        try:
            self._redispatch = True
            while self._redispatch:
                self._redispatch = False
                self._dispatch_once()
        finally:
            self._dispatching = False

    def _dispatch_once(self) -> None:
        """Send what may go now, oldest first (see the class docstring for the rule)."""
        head_waits = False  # the oldest queued call waits for a connection being opened
        while self.in_flight < self.max_in_flight:
            pinned = self._oldest_pinned() if self.pinned else None
            if (self.queue and not head_waits
                    and (pinned is None or self.queue[0].ticket < pinned.ticket)):
                protocol, load = self._spare.least_loaded()
                if protocol is None or load > 0:
                    self._maybe_open(all_busy=True)  # no idle one: another would serve now
                    if protocol is None or self._attempts:
                        # Every connection is full, or one is being opened: the calls wait
                        # for it rather than queueing behind a busy one. (Item stream
                        # requests, for their own connections, may still go.)
                        head_waits = True
                        continue
                    if not self.queue:
                        continue  # an attempt just failed the queue
                self._send(self.queue.popleft(), protocol)
            elif pinned is not None:
                protocol = pinned.pinned
                assert protocol is not None
                waiting = protocol.waiting
                waiting.popleft()
                if not waiting:
                    del self.pinned[protocol]
                self._send(pinned, protocol)
            else:
                break
        if (self._bind_waiters and not self.ready) or self._below_minimum():
            self._maybe_open()

    def _below_minimum(self) -> bool:
        """Fewer connections (up or being made) than ``min_connections``, while in use."""
        return (self._in_use and not self.closing
                and len(self.ready) + len(self._attempts) < self.min_connections)

    def _oldest_pinned(self) -> _Call | None:
        """The oldest waiting pinned call whose connection has room for it, if any.

        Only the first of each connection's waiting calls is a candidate, so a stream's
        requests go in the order they were made. Few connections have any (streams are
        read one item at a time), so a scan is cheap.
        """
        oldest: _Call | None = None
        for protocol in self.pinned:
            if protocol.state is ClientState.READY and protocol.load < self.per_connection:
                call = protocol.waiting[0]
                if oldest is None or call.ticket < oldest.ticket:
                    oldest = call
        return oldest

    def _load_changed(self, protocol: PyroClientProtocol) -> None:
        """A connection's load or state changed: re-file it, and use the room it made.

        Called by the protocol (``on_load_change``) for each request written and reply read,
        including the late reply to a call that timed out or was cancelled (it occupied the
        connection until then), and when the connection breaks: it leaves the pool at once,
        before the calls it fails are called back, so none of them is sent on it again.
        """
        if protocol.state is not ClientState.READY:
            self.ready.pop(protocol, None)
            self._spare.discard(protocol)
            self.pinned.pop(protocol, None)  # the protocol fails its waiting calls
        elif self._spare.update(protocol) and (self.queue or self.pinned):
            self._dispatch()

    def _send(self, call: _Call, protocol: PyroClientProtocol) -> None:
        call.sent = True
        self.in_flight += 1
        if (call.check is not None or call.request is None
                or call.data_object_id != (call.object_id or protocol.object_id)):
            owner = self._owner()  # alive: a queued call holds its proxy (call.owner)
            if owner is None:
                call.fail(self.errors.ConnectionClosedError("the proxy was garbage collected"))
                return
            if not owner._before_send(call, protocol):
                return  # it failed the call
        protocol.send(call)

    def _call_done(self, call: _Call) -> None:
        if call.sent:
            self.in_flight -= 1
        elif call.pinned is not None:
            waiting = call.pinned.waiting
            try:
                waiting.remove(call)
            except ValueError:
                pass  # failed by its connection, which let go of it first
            if not waiting:
                self.pinned.pop(call.pinned, None)
        else:
            try:
                self.queue.remove(call)
            except ValueError:
                pass
        self._dispatch()

    def _retry_lost(self, call: _Call, error: BaseException) -> bool:
        """A sent call lost its connection: back to the queue, in ticket order, if it has
        retries left (``max_retries``) and the pool is not closing."""
        if (call.retries <= 0 or call.done or self.closing
                or not isinstance(error, self.errors.ConnectionClosedError)):
            return False
        call.retries -= 1
        call.sent = False
        self.in_flight -= 1
        queue = self.queue
        index = next((i for i, queued in enumerate(queue) if queued.ticket > call.ticket),
                     len(queue))
        queue.insert(index, call)
        log.info("{uri}: {method} lost its connection ({error}); sending it again",
                 uri=str(self.uri), method=call.method, error=str(error))
        self._dispatch()
        return True

    # -- opening and losing connections ---------------------------------------------------

    def _maybe_open(self, all_busy: bool = False) -> None:
        """Start the connection attempts the calls waiting or in flight could use.

        One connection per such call is wanted (within ``max_in_flight`` and
        ``max_connections``, attempts under way included); with ``all_busy`` (every ready
        connection owes a reply) one more than are up: ``in_flight`` no longer counts calls
        that timed out or were cancelled, but their connections owe their late replies, and
        a call pipelined behind one would wait for it (the server answers in order). Several attempts run at once
        (``max_attempts``) only while at least one connection is up and the last attempt
        did not fail: the server then accepts connections, and a burst should not wait for
        its connections one after the other. Otherwise there is one attempt at a time, as
        the backoff expects (see ``_connect_failed``).
        """
        if self.closing or self._abandoned:
            return
        busy = min(self.in_flight + len(self.queue), self.max_in_flight)
        if all_busy and self.queue:
            busy = max(busy, len(self.ready) + 1)
        wanted = (min(self.max_connections, max(busy, 1, self.min_connections))
                  - len(self.ready) - len(self._attempts))
        parallel = self.max_attempts if self.ready and not self._failures else 1
        count = min(wanted, parallel - len(self._attempts))
        if count <= 0 or self._owner() is None:  # (a dropped proxy's pool opens nothing)
            return
        now = self._clock.seconds()
        if now < self._next_attempt:  # backing off: try again when the delay is over
            if self._retry_call is None:
                self._retry_call = self._clock.callLater(self._next_attempt - now, self._retry)
            return
        failures = self._failures
        for _ in range(count):
            attempt = defer.Deferred.fromCoroutine(self._open())
            if not attempt.called:  # (it may have ended already: the callbacks run below)
                self._attempts.add(attempt)
            attempt.addCallbacks(self._connected, self._connect_failed, callbackArgs=(attempt,),
                                 errbackArgs=(attempt, failures))
            if self.closing or self._failures != failures:
                return  # it failed at once: back off

    def _retry(self) -> None:
        self._retry_call = None
        self._dispatch()

    async def _open(self) -> PyroClientProtocol:
        # The owner, held strongly while the attempt runs: an attempt keeps its proxy alive.
        owner = self._owner()
        if owner is None:
            raise self.errors.ConnectionClosedError("the proxy was garbage collected")
        uri = self.resolved
        if uri is None:
            uri = await owner._resolve_uri()
            self.resolved = uri
        location = uri.location
        build = owner._protocol_factory(uri)
        on_call_lost = self._retry_lost

        def build_protocol() -> PyroClientProtocol:
            protocol = build()
            protocol.on_call_lost = on_call_lost
            return protocol

        wait = owner._connect_wait()
        endpoint = self._endpoint_factory(self._clock, uri, wait)
        try:
            protocol = await endpoint.connect(_ProtocolFactory(build_protocol))
        except defer.CancelledError:
            raise
        except Exception as exc:
            raise self.errors.CommunicationError(
                "cannot connect to %s: %s" % (location, exc)) from exc

        def no_handshake(result: Any, timeout: float) -> Any:
            if isinstance(result, Failure) and result.check(defer.CancelledError):
                return Failure(self.errors.TimeoutError(
                    "cannot connect to %s: no handshake reply within %s seconds"
                    % (location, timeout)))
            return result

        try:
            # a server that accepts but never answers must not hold queued calls forever
            await protocol.ready.addTimeout(wait, self._clock, onTimeoutCancel=no_handshake)
            await owner._accept_connection(protocol, wait)
        except BaseException:
            protocol.close()
            await protocol.when_lost()
            raise
        return protocol

    def _connected(self, protocol: PyroClientProtocol,
                   attempt: defer.Deferred[Any]) -> defer.Deferred[None] | None:
        self._attempts.discard(attempt)
        if self.closing or self._abandoned:  # close() raced the end of the attempt: drop it
            protocol.close()
            return protocol.when_lost()  # (close() waits for the attempt's Deferred)
        self._failures, self._next_attempt = 0, 0.0
        self.connections.add(protocol)
        protocol.when_lost().addCallback(self._lost, protocol)
        if protocol.state is ClientState.READY:
            self.ready[protocol] = None
            protocol.on_load_change = self._load_changed
            protocol.scheduler = self._schedule_pinned
            self._spare.update(protocol)
        log.debug("connected to {uri} ({count} connections)", uri=str(self.uri),
                  count=len(self.ready))
        waiters, self._bind_waiters = self._bind_waiters, []
        for waiter in waiters:
            waiter.callback(None)
        self._dispatch()
        return None

    def _connect_failed(self, failure: Failure, attempt: defer.Deferred[Any],
                        failures: int) -> None:
        """An attempt failed: back off; fail the waiting calls if nothing else can serve them.

        Attempts started together (at the same count of failures) count as one failure, so
        a server that refuses a batch of concurrent attempts backs off one step, not one per
        attempt. Calls fail only when no connection is up and no other attempt is left.
        """
        self._attempts.discard(attempt)
        if self.closing:
            return
        if self._failures <= failures:
            self._failures += 1
            delay = self._backoff(self._failures)
            self._next_attempt = self._clock.seconds() + delay
            log.info("cannot reach {uri}: {error}; next attempt in {delay:.2f} s",
                     uri=str(self.uri), error=failure.getErrorMessage(), delay=delay)
        if self._attempts:
            return  # the others may still succeed
        if self.ready:
            if self.queue or self._below_minimum():
                self._dispatch()  # the connections we have serve the queue; more after the delay
            return
        self.resolved = self.uri if self.uri.protocol == "PYRO" else None
        calls, self.queue = list(self.queue), collections.deque()
        waiters, self._bind_waiters = self._bind_waiters, []
        for call in calls:
            call.fail(failure.value)
        for waiter in waiters:
            waiter.errback(failure.value)
        if self._below_minimum():
            self._dispatch()  # keep trying, after the backoff delay

    def _lost(self, _: Any, protocol: PyroClientProtocol) -> None:
        self.connections.discard(protocol)
        self.ready.pop(protocol, None)
        self._spare.discard(protocol)
        self.pinned.pop(protocol, None)
        protocol.on_load_change = None
        protocol.scheduler = None
        if not self.ready and not self._attempts and self.uri.protocol != "PYRO":
            self.resolved = None  # the next connection resolves the name again
        self._dispatch()
