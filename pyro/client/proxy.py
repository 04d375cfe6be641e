"""The Deferred proxy: a pool of pipelined connections to one Pyro4 server.

It adds to :class:`~pyro.client.protocol.PyroClientProtocol` what a program needs from a
proxy: Pyro4's behaviour (metadata, oneway, attributes, batches, annotations), bounds on
connections and calls in flight, timeouts, cancellation, name resolution, and reconnection
with backoff after failures (Twisted's ``ClientService`` is the model).
"""

from __future__ import annotations

import collections
import itertools
import math
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import Pyro4
from Pyro4 import constants, errors, util
from Pyro4.configuration import config
from Pyro4.core import URI
from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from .. import wire
from .._reactor import default_reactor, with_timeout
from ..batch import CallRecorder, collect_results
from . import naming
from .endpoints import default_endpoint
from .lifetime import Hooks, abandoned
from .naming import default_backoff, resolve
from .protocol import ClientState, PyroClientProtocol, _Call

__all__ = ["Batch", "DeferredProxy", "default_endpoint"]

log = Logger(namespace="pyro.client.proxy")

_DEFAULT: Any = object()  # "use the proxy's setting"


def _fire(_: Any, waiter: defer.Deferred[None]) -> None:
    waiter.callback(None)


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


def _alias(attribute: str) -> Any:
    """A property that reads and writes ``attribute`` (Pyro4's name for one of ours)."""
    return property(lambda self: getattr(self, attribute),
                    lambda self, value: setattr(self, attribute, value),
                    doc=f"Pyro4's name for ``{attribute}``.")


class DeferredProxy:
    """A Pyro4 proxy whose calls return Deferreds: ``proxy.method(*args, **kwargs)``.

    :param uri: ``PYRO:``, ``PYRONAME:`` or ``PYROMETA:`` URI (string or ``Pyro4.URI``).
    :param reactor: defaults to the global reactor, looked up when needed.
    :param hmac_key: shared secret (also used for the name server, as Pyro4 does).
    :param serializer: a Pyro4 serializer name; default ``Pyro4.config.SERIALIZER`` per call.
    :param max_connections: connections this proxy may open to its server; requests are
        pipelined on each. Calls issued together may then run concurrently and out of order
        on the server; use 1 for strict ordering or for ``instance_mode="session"`` servants.
        A call goes to an idle connection if there is one; else (all busy) a new connection
        is opened for it, within ``max_connections``, and meanwhile the call is pipelined on
        the least loaded connection that has room (``max_in_flight / max_connections``
        calls each, rounded up) or waits in the queue. Once one connection is up (and the
        last attempt did not fail), up to 64 attempts (``_max_attempts``) run at once, one
        per call that lacks an idle connection, so a burst does not wait for its connections
        one handshake after the other; before that (first connection, or after a failure)
        there is one attempt at a time, so an unreachable server costs one attempt per
        backoff delay.
    :param min_connections: connections opened as soon as the proxy is first used (a call,
        or :meth:`connect`) and kept open until :meth:`close`: a lost one is replaced, and
        failed attempts are retried with ``backoff`` even while no call waits (as Twisted's
        ``ClientService`` does). For a burst known in advance: ``await proxy.connect()``
        fires with the first connection up, the others follow in parallel. Default 0: a
        connection is opened only for calls that need one (and kept until lost or closed).
    :param max_in_flight: calls sent but not answered, across connections; more are queued
        (a cancelled or timed-out call frees its slot at once). An item stream's requests
        (``next()``, ``close()``) count too, and wait in the same queue, in order; they can
        only go on the stream's own connection, so they wait for room there.
    :param timeout: seconds per call (queueing, connecting and the reply); ``None`` or 0:
        none. Not given: ``Pyro4.config.COMMTIMEOUT``, read here as a ``Pyro4.Proxy`` reads
        it when created (its default, 0, means none). The attribute ``timeout`` (also
        ``_pyroTimeout``, Pyro4's name) may be changed later; ``invoke(..., timeout=)``
        overrides it per call. Pyro4 applies it to each socket operation, this proxy to the
        whole call; either way a call stuck longer fails with ``TimeoutError``. It also
        bounds connecting, see ``connect_timeout``.
    :param handshake: the data sent in the CONNECT handshake (Pyro4's ``_pyroHandshake``).
    :param correlation_id: a ``uuid.UUID`` sent as ``CORR`` with every message; default
        ``Pyro4.current_context.correlation_id`` at call time.
    :param ns_uri: the name server for ``PYRONAME:``/``PYROMETA:`` (default: the URI's
        location, else the one :func:`pyro.client.locate_ns` finds as Pyro4's ``locateNS``
        does: on this host, then by UDP broadcast unless ``broadcast=False``, then
        ``Pyro4.config.NS_HOST``/``NS_PORT``).
    :param broadcast: look for the name server by UDP broadcast (see ``ns_uri``).
    :param patient: keep retrying the name server (with ``backoff``) while it is not up or
        the name is not registered yet, at most ``patient_tries`` times per resolution.
    :param backoff: ``f(failed_attempts) -> seconds``; after a failed connection attempt no
        new one is made before that delay has passed (calls made meanwhile wait for it).
    :param endpoint_factory: ``f(reactor, uri, timeout) -> IStreamClientEndpoint``.
    :param connect_timeout: seconds for the TCP connection, and again for the handshake
        reply (a server that accepts but never answers fails with ``TimeoutError``). Not
        given: the proxy's ``timeout`` at connection time when there is one (so
        ``COMMTIMEOUT`` bounds connecting, as for a ``Pyro4.Proxy``), else 30 seconds.

    :param max_retries: Pyro4's ``_pyroMaxRetries``: a method call whose connection is lost
        before its reply is sent again (on another connection, in its place in the queue) at
        most this often; not given: ``Pyro4.config.MAX_RETRIES`` (default 0). As in Pyro4,
        only for calls of methods (not attribute access, batches or item streams), and only
        for calls that may run twice: the server may have run it before the connection
        broke. The call's ``timeout`` covers its retries too (so, unlike Pyro4, a call that
        timed out is not sent again).
    :param wrap_proxies: a ``Pyro4.Proxy`` in a result (Pyro4's autoproxy: the servant
        returned an object registered with its daemon), also inside lists, tuples and dicts,
        becomes a ``DeferredProxy`` like this one (see :meth:`_proxy_for`), which this
        proxy's :meth:`close` closes too (its ``_pyroRelease()`` does not, as in Pyro4), as
        does dropping it (below). ``False``: results keep the plain, *blocking*
        ``Pyro4.Proxy`` Pyro4's deserializer built (never call it in the reactor thread).

    A ``Pyro4.core.SerializedBlob`` passed as the only argument of a call travels as Pyro4
    sends it (flag ``KEEPSERIALIZED``, annotation ``BLBI``, the blob's data serialized once
    or, for a blob a servant received, passed on untouched): the servant receives a
    ``SerializedBlob`` to ``deserialized()`` when it needs the data.

    A proxy nobody holds any more closes its connections when it is garbage collected, as a
    ``Pyro4.Proxy`` closes its socket: its connections hold it only weakly, while its calls
    in flight and its open item streams keep it alive. :meth:`close` is the deterministic way.

    Code written for a ``Pyro4.Proxy`` finds Pyro4's names: ``_pyroTimeout``,
    ``_pyroHmacKey``, ``_pyroSerializer``, ``_pyroHandshake`` and ``_pyroMaxRetries`` read and
    write the settings above (a new HMAC key or serializer applies to the next message, a
    handshake to the next connection), ``_pyroUri`` is :attr:`uri`, and ``_pyroBind()``,
    ``_pyroRelease()`` and ``_pyroReconnect()`` return Deferreds.

    Every public name of this class (``call``, ``invoke``, ``getattr``, ``setattr``,
    ``batch``, ``connect``, ``close``, ``uri``, ``timeout``) shadows a remote method of that
    name: reach those with ``proxy.call("close")``. Names starting with ``_`` are never remote
    (Pyro4 refuses them anyway).
    """

    #: Connection attempts that may run at once once the server is known to accept them:
    #: enough to grow a pool by thousands quickly, few enough not to overflow a server's
    #: listen backlog (commonly 50-128 by default) with a single proxy's SYNs.
    _max_attempts = 64

    def __init__(self, uri: str | URI, reactor: Any = None, hmac_key: bytes | str | None = None,
                 serializer: str | None = None, max_connections: int = 4,
                 max_in_flight: int = 64, timeout: float | None = _DEFAULT,
                 handshake: Any = "hello", correlation_id: Any = None,
                 ns_uri: str | URI | None = None, patient: bool = False,
                 patient_tries: int = 20, backoff: Callable[[int], float] | None = None,
                 endpoint_factory: Callable[[Any, URI, float], Any] | None = None,
                 connect_timeout: float | None = _DEFAULT, broadcast: bool = True,
                 min_connections: int = 0, wrap_proxies: bool = True,
                 max_retries: int = _DEFAULT):
        self.uri = uri if isinstance(uri, URI) else URI(uri)
        if max_retries is _DEFAULT:
            max_retries = config.MAX_RETRIES  # when the proxy is made, as Pyro4's Proxy does
        self.max_retries: int = max_retries
        self._wrap_proxies = wrap_proxies
        # the proxies made for Pyro4 proxies in this one's results: closed with it
        self._children: weakref.WeakSet[DeferredProxy] = weakref.WeakSet()
        self._connections: set[PyroClientProtocol] = set()  # every one not gone yet
        # A proxy nobody holds any more closes its connections, as a Pyro4 proxy does.
        weakref.finalize(self, abandoned, self._connections, reactor).atexit = False
        self._hooks = Hooks(self)  # what the connections call back, weakly
        self._broadcast = broadcast
        if timeout is _DEFAULT:
            timeout = config.COMMTIMEOUT  # when the proxy is made, as Pyro4's Proxy does
        self.timeout: float | None = timeout or None
        self._reactor = reactor
        self._hmac_key: bytes | None = wire.hmac_key_bytes(hmac_key)
        self._serializer_name = serializer
        self._get_serializer()  # fail early on an unknown serializer, as Pyro4's Proxy does
        self._max_connections = max(1, max_connections)
        if not 0 <= min_connections <= self._max_connections:
            raise ValueError("min_connections must be between 0 and max_connections (%d), "
                             "not %r" % (self._max_connections, min_connections))
        self._min_connections = min_connections
        self._in_use = False  # a call or connect() since construction or the last close()
        self._max_in_flight = max(1, max_in_flight)
        self._per_connection = max(1, math.ceil(self._max_in_flight / self._max_connections))
        self._handshake = handshake
        self._correlation_id = correlation_id
        self._ns_uri = ns_uri
        self._patient = patient
        self._patient_tries = patient_tries
        self._backoff = backoff or default_backoff()
        self._endpoint_factory = endpoint_factory or default_endpoint
        self._connect_timeout = connect_timeout
        # metadata, under Pyro4's Proxy names
        self._pyroMethods: set[str] = set()
        self._pyroAttrs: set[str] = set()
        self._pyroOneway: set[str] = set()
        # the pool
        self._ready: dict[PyroClientProtocol, None] = {}  # usable (READY) connections, in order
        self._spare = _LoadIndex(self._per_connection)  # the READY ones with room for a call
        self._resolved: URI | None = self.uri if self.uri.protocol == "PYRO" else None
        self._queue: collections.deque[_Call] = collections.deque()
        self._bind_waiters: list[defer.Deferred[None]] = []
        self._in_flight = 0
        self._attempts: set[defer.Deferred[Any]] = set()  # connection attempts under way
        self._failures = 0
        self._next_attempt = 0.0
        self._retry_call: Any = None
        self._retry_strong = False  # the timer holds the proxy (see _maybe_open)
        self._closing = False
        self._dispatching = False
        self._redispatch = False
        # item stream requests: the connections with some waiting (protocol.waiting), and
        # the tickets that order them against the queue
        self._pinned: dict[PyroClientProtocol, None] = {}
        self._tickets = itertools.count()

    @property
    def _pyroTimeout(self) -> float | None:
        """Pyro4's name for :attr:`timeout` (seconds per call, ``None``: no timeout)."""
        return self.timeout

    @_pyroTimeout.setter
    def _pyroTimeout(self, timeout: float | None) -> None:
        self.timeout = timeout or None

    # Pyro4's names for the settings, so code written for a Pyro4.Proxy keeps working (a
    # change reaches the next message, as with Pyro4; handshake: the next connection).

    @property
    def _pyroUri(self) -> URI:
        return self.uri

    @property
    def _pyroHmacKey(self) -> bytes | None:
        return self._hmac_key

    @_pyroHmacKey.setter
    def _pyroHmacKey(self, key: bytes | str | None) -> None:
        self._hmac_key = wire.hmac_key_bytes(key)
        for protocol in self._connections:
            protocol.hmac_key = self._hmac_key

    @property
    def _pyroSerializer(self) -> str | None:
        return self._serializer_name

    @_pyroSerializer.setter
    def _pyroSerializer(self, name: str | None) -> None:
        util.get_serializer(name or config.SERIALIZER)  # unknown: fail now, as Pyro4 does
        self._serializer_name = name

    _pyroHandshake = _alias("_handshake")
    _pyroMaxRetries = _alias("max_retries")

    def _pyroBind(self) -> defer.Deferred[bool]:
        """Pyro4's ``_pyroBind``: :meth:`connect`, firing with ``True`` if it had to make a
        connection, ``False`` if one was up."""
        unbound = not self._ready
        return self.connect().addCallback(lambda _: unbound)

    def _pyroRelease(self) -> defer.Deferred[None]:
        """Pyro4's ``_pyroRelease``: :meth:`close`, but the proxies made for autoproxies in
        its results keep their connections (releasing a Pyro4 proxy leaves those alone)."""
        return self._release()

    def _pyroReconnect(self) -> defer.Deferred[None]:
        """Pyro4's ``_pyroReconnect``: :meth:`_pyroRelease`, then :meth:`connect`."""
        return self._release().addCallback(lambda _: self.connect())

    def _connect_wait(self) -> float:
        if self._connect_timeout is not _DEFAULT and self._connect_timeout:
            return self._connect_timeout
        return self.timeout or 30.0

    @property
    def _clock(self) -> Any:
        return default_reactor(self._reactor)

    # -- calling --------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Callable[..., defer.Deferred[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)
        return _RemoteMethod(self, name)

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        """``proxy.call("name", ...)`` is ``proxy.name(...)``, for names the proxy shadows."""
        return self._invoke(None, method, args, kwargs, check="method")

    def invoke(self, method: str, vargs: Iterable[Any] = (), kwargs: dict[str, Any] | None = None,
               *, timeout: float | None = _DEFAULT, oneway: bool = False) -> defer.Deferred[Any]:
        """Call ``method`` with a per-call ``timeout`` (or force ``oneway``)."""
        flags = wire.FLAGS_ONEWAY if oneway else 0
        return self._invoke(None, method, tuple(vargs), kwargs or {}, flags, "method", timeout)

    def getattr(self, name: str) -> defer.Deferred[Any]:
        """Read an exposed remote attribute (a ``@property`` on the servant)."""
        return self._invoke(None, "__getattr__", (name,), None, check="attr")

    def setattr(self, name: str, value: Any) -> defer.Deferred[None]:
        """Write an exposed remote attribute."""
        return self._invoke(None, "__setattr__", (name, value), None, check="attr")

    def batch(self) -> Batch:
        """Collect calls and send them as one Pyro4 batch message: see :class:`Batch`."""
        return Batch(self)

    def _invoke(self, object_id: str | None, method: str, vargs: Any, kwargs: Any,
                flags: int = 0, check: str | None = None,
                timeout: float | None = _DEFAULT) -> defer.Deferred[Any]:
        if timeout is _DEFAULT:
            timeout = self.timeout
        call = _Call(object_id, method, vargs, kwargs, flags, self._pyroAnnotationsNow(),
                     check, timeout)
        call.owner = self
        if check == "method":
            call.retries = self.max_retries
        if self._closing:
            call.fail(errors.ConnectionClosedError("the proxy is closing"))
            return call.deferred
        known_id = object_id or (self._resolved.object if self._resolved else None)
        if known_id is not None:
            try:
                call.prepare(self._get_serializer(), known_id)
            except Exception:
                call.fail(Failure())  # the caller's serialization error fails this call only
                return call.deferred
        with_timeout(call.deferred, timeout, self._clock)
        call.on_done = self._call_done
        call.ticket = next(self._tickets)
        self._in_use = True
        self._queue.append(call)
        self._dispatch()
        return call.deferred

    def _schedule_pinned(self, protocol: PyroClientProtocol, call: _Call) -> None:
        """A call for one connection only (an item stream's ``next``/``close``) was queued.

        It waits in ``protocol.waiting`` (which keeps its order against the stream's other
        requests) and counts like any other call: it is sent, oldest first among all the
        queued calls, once ``max_in_flight`` and that connection's share of it allow. It
        carries the proxy's annotations (``CORR`` and the context's), as Pyro4's streams do.
        """
        call.annotations = {**self._pyroAnnotationsNow(), **call.annotations}
        call.on_done = self._call_done
        call.ticket = next(self._tickets)
        self._pinned[protocol] = None
        self._dispatch()

    def _get_serializer(self) -> Any:
        return util.get_serializer(self._serializer_name or config.SERIALIZER)

    def _pyroAnnotations(self) -> dict[str, bytes]:
        """Override to add annotations to every request (Pyro4's hook of the same name)."""
        return {}

    def _pyroValidateHandshake(self, response: Any) -> Any:
        """Override to vet the server's handshake response; raise (or fail) to refuse it."""

    def _pyroResponseAnnotations(self, annotations: dict[str, bytes], msgtype: int) -> None:
        """Override to see the annotations of each reply (Pyro4's hook of the same name).

        Called, as a ``Pyro4.Proxy`` calls it, for the ``CONNECTOK`` reply of every new
        connection (after :meth:`_pyroValidateHandshake`; an exception refuses the connection)
        and for every reply to a call (``MSG_RESULT``, item streams' included) that carries
        annotations, before the call's Deferred fires (an exception fails that call). Oneway
        calls get no reply, so no annotations. ``Pyro4.current_context.response_annotations``
        holds the same annotations when a call's callbacks run.
        """

    def _pyroAnnotationsNow(self, clear: bool = True) -> dict[str, bytes]:
        # Pyro4's rule: the context's annotations are used once, by the next call
        context = Pyro4.current_context
        annotations = dict(context.annotations or {})
        correlation_id = self._correlation_id or context.correlation_id
        if correlation_id:
            annotations["CORR"] = correlation_id.bytes
        else:
            annotations.pop("CORR", None)
        annotations.update(self._pyroAnnotations())
        if clear:
            context.annotations = {}
        return annotations

    # -- the pool -------------------------------------------------------------------------

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
        while self._in_flight < self._max_in_flight:
            pinned = self._oldest_pinned() if self._pinned else None
            if self._queue and (pinned is None or self._queue[0].ticket < pinned.ticket):
                protocol, load = self._spare.least_loaded()
                if protocol is None or load > 0:
                    self._maybe_open()  # no idle connection: one more would serve a call now
                    if protocol is None:
                        break  # every connection is full (pinned calls' ones too)
                    if not self._queue:
                        continue  # an attempt just failed the queue
                self._send(self._queue.popleft(), protocol)
            elif pinned is not None:
                protocol = pinned.pinned
                assert protocol is not None
                waiting = protocol.waiting
                waiting.popleft()
                if not waiting:
                    del self._pinned[protocol]
                self._send(pinned, protocol)
            else:
                break
        if (self._bind_waiters and not self._ready) or self._below_minimum():
            self._maybe_open()

    def _below_minimum(self) -> bool:
        """Fewer connections (up or being made) than ``min_connections``, while in use."""
        return (self._in_use and not self._closing
                and len(self._ready) + len(self._attempts) < self._min_connections)

    def _oldest_pinned(self) -> _Call | None:
        """The oldest waiting pinned call whose connection has room for it, if any.

        Only the first of each connection's waiting calls is a candidate, so a stream's
        requests go in the order they were made. Few connections have any (streams are
        read one item at a time), so a scan is cheap.
        """
        oldest: _Call | None = None
        for protocol in self._pinned:
            if protocol.state is ClientState.READY and protocol.load < self._per_connection:
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
            self._ready.pop(protocol, None)
            self._spare.discard(protocol)
            self._pinned.pop(protocol, None)  # the protocol fails its waiting calls
        elif self._spare.update(protocol) and (self._queue or self._pinned):
            self._dispatch()

    def _send(self, call: _Call, protocol: PyroClientProtocol) -> None:
        call.sent = True
        self._in_flight += 1
        object_id = call.object_id or protocol.object_id
        if call.object_id is None and call.check:
            error = self._metadata_error(call)
            if error is not None:
                call.fail(error)
                return
            if call.method in self._pyroOneway and call.check == "method":
                call.flags |= wire.FLAGS_ONEWAY
        if call.data is None or call.data_object_id != object_id:
            try:
                call.prepare(self._get_serializer(), object_id)
            except Exception:
                call.fail(Failure())
                return
        protocol.send(call)

    def _metadata_error(self, call: _Call) -> AttributeError | None:
        if not (self._pyroMethods or self._pyroAttrs):
            return None  # no metadata (METADATA off): let the server decide
        if call.check == "attr":
            name = call.vargs[0]
            if name not in self._pyroAttrs:
                # Pyro4's messages: its __getattr__ looks for an attribute or a method
                what = ("attribute or method" if call.method == "__getattr__"
                        and name not in self._pyroMethods else "attribute")
                return AttributeError("remote object '%s' has no exposed %s '%s'"
                                      % (self.uri, what, name))
        elif call.method not in self._pyroMethods:
            return AttributeError("remote object '%s' has no exposed attribute or method '%s'"
                                  % (self.uri, call.method))
        return None

    def _call_done(self, call: _Call) -> None:
        if call.sent:
            self._in_flight -= 1
        elif call.pinned is not None:
            waiting = call.pinned.waiting
            try:
                waiting.remove(call)
            except ValueError:
                pass  # failed by its connection, which let go of it first
            if not waiting:
                self._pinned.pop(call.pinned, None)
        else:
            try:
                self._queue.remove(call)
            except ValueError:
                pass
        self._dispatch()

    def _maybe_open(self) -> None:
        """Start the connection attempts the calls waiting or in flight could use.

        One connection per such call is wanted (within ``max_in_flight`` and
        ``max_connections``, attempts under way included). Several attempts run at once
        (``_max_attempts``) only while at least one connection is up and the last attempt
        did not fail: the server then accepts connections, and a burst should not wait for
        its connections one after the other. Otherwise there is one attempt at a time, as
        the backoff expects (see ``_connect_failed``).
        """
        if self._closing:
            return
        busy = min(self._in_flight + len(self._queue), self._max_in_flight)
        wanted = (min(self._max_connections, max(busy, 1, self._min_connections))
                  - len(self._ready) - len(self._attempts))
        parallel = self._max_attempts if self._ready and not self._failures else 1
        count = min(wanted, parallel - len(self._attempts))
        if count <= 0:
            return
        now = self._clock.seconds()
        if now < self._next_attempt:  # backing off: try again when the delay is over
            # When only ``min_connections`` wants it (no call, no connect() waiting), the
            # timer must not keep a proxy nobody holds alive, retrying forever; once a call
            # waits for it, it must (that call may be all that is left of the proxy).
            strong = bool(self._queue or self._pinned or self._bind_waiters)
            if self._retry_call is None or (strong and not self._retry_strong):
                if self._retry_call is not None:
                    self._retry_call.cancel()
                retry = self._retry if strong else self._hooks.retry
                self._retry_call = self._clock.callLater(self._next_attempt - now, retry)
                self._retry_strong = strong
            return
        failures = self._failures
        for _ in range(count):
            attempt = defer.Deferred.fromCoroutine(self._open())
            if not attempt.called:  # (it may have ended already: the callbacks run below)
                self._attempts.add(attempt)
            attempt.addCallbacks(self._connected, self._connect_failed, callbackArgs=(attempt,),
                                 errbackArgs=(attempt, failures))
            if self._closing or self._failures != failures:
                return  # it failed at once: back off

    def _retry(self) -> None:
        self._retry_call = None
        self._dispatch()

    async def _open(self) -> PyroClientProtocol:
        uri = self._resolved
        if uri is None:
            uri = await resolve(self.uri, reactor=self._reactor, hmac_key=self._hmac_key,
                                ns_uri=self._ns_uri, patient=self._patient,
                                max_tries=self._patient_tries, backoff=self._backoff,
                                timeout=self.timeout, broadcast=self._broadcast)
            self._resolved = uri
        location = uri.location

        # What the connection needs, taken now: ``build`` stays with the connection, and
        # must not keep this proxy alive (see pyro.client.lifetime). Its hooks hold it weakly; calls
        # in flight hold it through ``call.on_done``.
        settings = (uri.object, self._get_serializer(), self._hmac_key, self._handshake,
                    self._pyroAnnotationsNow(clear=False), location, self._clock)
        hooks = self._hooks
        on_result = hooks.result if self._wrap_proxies else None

        def build() -> PyroClientProtocol:
            protocol = PyroClientProtocol(*settings)
            protocol.on_response_annotations = hooks.response_annotations
            protocol.on_result = on_result
            protocol.on_call_lost = hooks.call_lost
            return protocol

        wait = self._connect_wait()
        endpoint = self._endpoint_factory(self._clock, uri, wait)
        try:
            protocol = await endpoint.connect(_ProtocolFactory(build))
        except defer.CancelledError:
            raise
        except Exception as exc:
            raise errors.CommunicationError("cannot connect to %s: %s" % (location, exc)) from exc

        def no_handshake(result: Any, timeout: float) -> Any:
            if isinstance(result, Failure) and result.check(defer.CancelledError):
                return Failure(errors.TimeoutError(
                    "cannot connect to %s: no handshake reply within %s seconds"
                    % (location, timeout)))
            return result

        try:
            # a server that accepts but never answers must not hold queued calls forever
            await protocol.ready.addTimeout(wait, self._clock, onTimeoutCancel=no_handshake)
            metadata = protocol.metadata
            if metadata is None and protocol.want_metadata:  # a server without META_ON_CONNECT
                metadata = await protocol.call(constants.DAEMON_NAME, "get_metadata",
                                               [uri.object], {"as_lists": True},
                                               timeout=self.timeout or wait)
            self._process_metadata(metadata)
            await defer.maybeDeferred(self._pyroValidateHandshake, protocol.handshake_response)
            if protocol.handshake_annotations:  # after the validation, as Pyro4's proxy does
                self._pyroResponseAnnotations(protocol.handshake_annotations, wire.MSG_CONNECTOK)
        except BaseException:
            protocol.close()
            await protocol.when_lost()
            raise
        return protocol

    def _retry_lost(self, call: _Call, error: BaseException) -> bool:
        """A sent call lost its connection: back to the queue, in ticket order, if it has
        retries left (``max_retries``) and the proxy is not closing."""
        if (call.retries <= 0 or call.done or self._closing
                or not isinstance(error, errors.ConnectionClosedError)):
            return False
        call.retries -= 1
        call.sent = False
        self._in_flight -= 1
        queue = self._queue
        index = next((i for i, queued in enumerate(queue) if queued.ticket > call.ticket),
                     len(queue))
        queue.insert(index, call)
        log.info("{uri}: {method} lost its connection ({error}); sending it again",
                 uri=str(self.uri), method=call.method, error=str(error))
        self._dispatch()
        return True

    def _wrap_results(self, value: Any, msg: wire.Message) -> Any:
        """Replace the ``Pyro4.Proxy`` objects in a result (Pyro4's autoproxies: a servant
        returned an object registered with its daemon) with proxies like this one. Only
        replies that can hold one are searched: Pyro4's serializers all name the class. A
        plain bytes, str or number holds none: a large bytes result is not scanned (on
        64 MiB of data, the scan took longer than receiving it)."""
        if type(value) in _LEAVES or (
                not msg.flags & wire.FLAGS_COMPRESSED and b"Proxy" not in msg.data):
            return value
        return _replace_proxies(value, self._proxy_for)

    def _proxy_for(self, found: Pyro4.Proxy) -> DeferredProxy:
        """The proxy that stands for ``found``, a ``Pyro4.Proxy`` in a result: the same class
        as this one (override this if its constructor takes other arguments), for the same
        URI, with this proxy's reactor, pool, timeout, name server and transport settings,
        ``found``'s metadata, and ``found``'s HMAC key, handshake and serializer where it has
        them (this proxy's otherwise). It is closed when this proxy is closed."""
        child = type(self)(
            found._pyroUri, reactor=self._reactor,
            hmac_key=found._pyroHmacKey or self._hmac_key,
            serializer=found._pyroSerializer or self._serializer_name,
            max_connections=self._max_connections, max_in_flight=self._max_in_flight,
            timeout=self.timeout, handshake=found._pyroHandshake,
            correlation_id=self._correlation_id, ns_uri=self._ns_uri, patient=self._patient,
            patient_tries=self._patient_tries, backoff=self._backoff,
            endpoint_factory=self._endpoint_factory, connect_timeout=self._connect_timeout,
            broadcast=self._broadcast, wrap_proxies=self._wrap_proxies,
            max_retries=self.max_retries)
        child._pyroMethods = set(found._pyroMethods)
        child._pyroAttrs = set(found._pyroAttrs)
        child._pyroOneway = set(found._pyroOneway)
        self._children.add(child)
        return child

    def _process_metadata(self, metadata: dict[str, Any] | None) -> None:
        if not metadata:
            return
        self._pyroOneway = set(metadata["oneway"])
        self._pyroMethods = set(metadata["methods"])
        self._pyroAttrs = set(metadata["attrs"])
        if not self._pyroMethods and not self._pyroAttrs:
            raise errors.PyroError("remote object doesn't expose any methods or attributes. "
                                   "Did you forget setting @expose on them?")

    def _connected(self, protocol: PyroClientProtocol,
                   attempt: defer.Deferred[Any]) -> defer.Deferred[None] | None:
        self._attempts.discard(attempt)
        if self._closing:  # close() raced the end of the attempt: drop it, close() waits
            protocol.close()
            return protocol.when_lost()  # (close() waits for the attempt's Deferred)
        self._failures, self._next_attempt = 0, 0.0
        self._connections.add(protocol)
        protocol.when_lost().addCallback(self._hooks.lost, protocol)
        if protocol.state is ClientState.READY:
            self._ready[protocol] = None
            protocol.on_load_change = self._hooks.load_changed
            protocol.scheduler = self._hooks.schedule
            self._spare.update(protocol)
        log.debug("connected to {uri} ({count} connections)", uri=str(self.uri),
                  count=len(self._ready))
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
        if self._closing:
            return
        if self._failures <= failures:
            self._failures += 1
            delay = self._backoff(self._failures)
            self._next_attempt = self._clock.seconds() + delay
            log.info("cannot reach {uri}: {error}; next attempt in {delay:.2f} s",
                     uri=str(self.uri), error=failure.getErrorMessage(), delay=delay)
        if self._attempts:
            return  # the others may still succeed
        if self._ready:
            if self._queue or self._below_minimum():
                self._dispatch()  # the connections we have serve the queue; more after the delay
            return
        self._resolved = self.uri if self.uri.protocol == "PYRO" else None
        calls, self._queue = list(self._queue), collections.deque()
        waiters, self._bind_waiters = self._bind_waiters, []
        for call in calls:
            call.fail(failure.value)
        for waiter in waiters:
            waiter.errback(failure.value)
        if self._below_minimum():
            self._dispatch()  # keep trying, after the backoff delay

    def _lost(self, _: Any, protocol: PyroClientProtocol) -> None:
        self._connections.discard(protocol)
        self._ready.pop(protocol, None)
        self._spare.discard(protocol)
        self._pinned.pop(protocol, None)
        protocol.on_load_change = None
        protocol.scheduler = None
        if not self._ready and not self._attempts and self.uri.protocol != "PYRO":
            self._resolved = None  # the next connection resolves the name again
        self._dispatch()

    # -- life cycle -----------------------------------------------------------------------

    def connect(self) -> defer.Deferred[None]:
        """Fires when at least one connection is up (Pyro4's ``_pyroBind``, without threads).

        It fails like a call would (``CommunicationError``, ``NamingError``); use it to wait
        for a server, or to learn the metadata (``_pyroMethods``...) before calling.
        """
        if self._ready:
            return defer.succeed(None)

        def cancel(waiter: defer.Deferred[None]) -> None:
            if waiter in self._bind_waiters:
                self._bind_waiters.remove(waiter)

        waiter: defer.Deferred[None] = defer.Deferred(cancel)
        self._bind_waiters.append(waiter)
        self._in_use = True
        self._dispatch()
        return waiter

    def close(self) -> defer.Deferred[None]:
        """Close every connection; fires when they are gone (so trial's reactor is clean).

        Queued and in-flight calls fail with ``ConnectionClosedError``. Like Pyro4's
        ``_pyroRelease``, a later call opens a new connection. The proxies this one made for
        autoproxies in its results (``wrap_proxies``) are closed too.
        """
        children = [child.close() for child in list(self._children)]
        released = self._release()
        if not children:
            return released
        return defer.gatherResults([released, *children]).addCallback(lambda _: None)

    def _release(self) -> defer.Deferred[None]:
        """Close this proxy's own connections (see :meth:`close`)."""
        self._closing = True
        self._in_use = False
        if self._retry_call is not None:
            self._retry_call.cancel()
            self._retry_call = None
        closed = errors.ConnectionClosedError("the proxy was closed")
        calls, self._queue = list(self._queue), collections.deque()
        waiters, self._bind_waiters = self._bind_waiters, []
        for call in calls:
            call.fail(closed)
        for waiter in waiters:
            waiter.errback(closed)
        waits: list[defer.Deferred[Any]] = []
        for attempt in list(self._attempts):
            done: defer.Deferred[None] = defer.Deferred()
            attempt.addBoth(_fire, done)  # after _connected/_connect_failed, and the loss
            waits.append(done)
            attempt.cancel()
        for protocol in list(self._connections):  # broken ones too: wait until gone
            waits.append(protocol.when_lost())
            protocol.close(closed)

        def closed_now(_: Any) -> None:
            self._closing = False
            self._failures, self._next_attempt = 0, 0.0

        return defer.gatherResults(waits).addCallback(closed_now)

    async def __aenter__(self) -> DeferredProxy:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        queued = len(self._queue) + sum(len(protocol.waiting) for protocol in self._pinned)
        return "<%s.%s for %s; %d connections, %d in flight, %d queued>" % (
            type(self).__module__, type(self).__name__, self.uri, len(self._ready),
            self._in_flight, queued)


_LEAVES = frozenset({bytes, str, bytearray, int, float, bool, type(None)})  # hold no proxy


def _replace_proxies(value: Any, replace: Callable[[Pyro4.Proxy], Any]) -> Any:
    """``value`` with every ``Pyro4.Proxy`` in it, or in its lists, tuples and dicts (values),
    replaced by ``replace(proxy)``. Lists and dicts are changed in place: they are fresh from
    the deserializer."""
    if isinstance(value, Pyro4.Proxy):
        return replace(value)
    kind = type(value)
    if kind is list:
        for index, item in enumerate(value):
            value[index] = _replace_proxies(item, replace)
    elif kind is dict:
        for key, item in value.items():
            value[key] = _replace_proxies(item, replace)
    elif kind is tuple:
        return tuple(_replace_proxies(item, replace) for item in value)
    return value


class _RemoteMethod:
    """``proxy.name``: calling it calls the remote method."""

    __slots__ = ("_proxy", "_name")

    def __init__(self, proxy: DeferredProxy, name: str):
        self._proxy, self._name = proxy, name

    def __call__(self, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return self._proxy._invoke(None, self._name, args, kwargs, check="method")

    def __repr__(self) -> str:
        return "<remote method %s of %s>" % (self._name, self._proxy.uri)


class Batch(CallRecorder):
    """Calls collected on a proxy and sent as one message (Pyro4's ``batch``)::

        batch = proxy.batch()
        batch.add(1, 2)
        batch.fail("oops")
        results = await batch.send()            # or: await batch()

    ``send()`` fires with the list of results. As in Pyro4 the server stops at the first
    exception: the Deferred then fails with that exception (its original type, with
    ``_pyroTraceback``), and the results of the calls before it are in its attribute
    ``_pyroBatchResults``. ``send(oneway=True)`` fires with ``None`` once written.
    ``batch(oneway=False, asynchronous=False)`` is Pyro4's spelling of ``send`` (see
    :class:`pyro.batch.CallRecorder`).
    """

    _target: DeferredProxy

    def send(self, oneway: bool = False,
             timeout: float | None = _DEFAULT) -> defer.Deferred[list[Any] | None]:
        """Send the collected calls (and start a new, empty batch)."""
        flags = wire.FLAGS_BATCH | (wire.FLAGS_ONEWAY if oneway else 0)
        d = self._target._invoke(None, "<batch>", self._take(), None, flags, None, timeout)
        return d if oneway else d.addCallback(collect_results)


naming.proxy_class = DeferredProxy  # the name server is reached through proxies like any other
