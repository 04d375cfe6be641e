"""The Deferred proxy: Pyro's proxy behaviour over a pool of pipelined connections.

:class:`DeferredProxy` is what a program calls: Pyro4's proxy behaviour (metadata, oneway,
attributes, batches, annotations, Pyro4's ``_pyro*`` names and hooks), timeouts,
cancellation and name resolution. The connections themselves (opening, backoff and
reconnection, ``min_connections``, which connection a call goes on, the queue of waiting
calls) are its :class:`~pyro.client.pool.ConnectionPool`'s business; one connection is a
:class:`~pyro.client.protocol.PyroClientProtocol`. The imports point one way:
``proxy -> pool -> protocol``.

Both protocol generations: ``pyro_version=5`` (or a ``Pyro5.core.URI``) gives a proxy that
speaks Pyro5 (the codec :data:`pyro.wire.pyro5.PYRO5`) with Pyro5's semantics: its config,
serializers, URIs, errors, ``current_context``, proxies in results and blobs.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

import Pyro4
from Pyro4 import constants
from Pyro4.core import URI
from twisted.internet import defer
from twisted.python.failure import Failure

from .. import wire
from .._reactor import default_reactor, with_timeout
from ..batch import CallRecorder, collect_results
from ..wire.generations import pyro5_codec
from ..wire.pyro4 import PYRO4
from . import naming
from .endpoints import default_endpoint
from .lifetime import Hooks, abandoned
from .naming import default_backoff, resolve
from .pool import ConnectionPool, wait_only
from .protocol import PyroClientProtocol, _Call

__all__ = ["Batch", "DeferredProxy", "default_endpoint"]

_DEFAULT: Any = object()  # "use the proxy's setting"


def _keep_alive(result: Any, _proxy: DeferredProxy) -> Any:
    return result


def codec_for(uri: Any, pyro_version: int | None = None) -> Any:
    """The codec a proxy for ``uri`` speaks: ``pyro_version`` 4 (``PYRO4``) or 5 (``PYRO5``);
    ``None``: 5 for a ``Pyro5.core.URI`` object, else 4. Pyro5 missing: one clear line
    (:class:`pyro.wire.GenerationUnavailable`, an ImportError)."""
    if pyro_version is None:
        pyro_version = 5 if type(uri).__module__.startswith("Pyro5") else 4
    if pyro_version == 4:
        return PYRO4
    if pyro_version == 5:
        return pyro5_codec()
    raise ValueError("pyro_version must be 4 or 5, not %r" % (pyro_version,))


def _alias(attribute: str) -> Any:
    """A property that reads and writes ``attribute`` (Pyro4's name for one of ours)."""
    return property(lambda self: getattr(self, attribute),
                    lambda self, value: setattr(self, attribute, value),
                    doc=f"Pyro4's name for ``{attribute}``.")


class DeferredProxy:
    """A Pyro proxy whose calls return Deferreds: ``proxy.method(*args, **kwargs)``.

    :param uri: ``PYRO:``, ``PYRONAME:`` or ``PYROMETA:`` URI (string, ``Pyro4.URI`` or
        ``Pyro5.core.URI``).
    :param pyro_version: the Pyro generation to speak, 4 or 5. Not given: 5 when ``uri`` is
        a ``Pyro5.core.URI`` object, else 4. With 5 the proxy speaks Pyro5's protocol (wire
        version 502) to Pyro5 daemons and name servers (and to ours), and everything below
        that names ``Pyro4`` means its Pyro5 counterpart: ``Pyro5.config`` (``SERIALIZER``,
        ``COMMTIMEOUT``, ``MAX_RETRIES``, ``NS_HOST``, SSL items...), Pyro5's serializers
        (serpent, marshal, json, msgpack), ``Pyro5.core.URI``, ``Pyro5.errors`` (remote
        exceptions carry ``_pyroTraceback``, so ``Pyro5.errors.get_pyro_traceback`` works),
        ``Pyro5.api.current_context`` (annotations, ``correlation_id``: sent in the Pyro5
        header), ``Pyro5.api.SerializedBlob``, and a ``Pyro5.api.Proxy`` in a result becomes
        a ``DeferredProxy`` with ``pyro_version=5``. Pyro5 has no HMAC (use TLS):
        ``hmac_key`` is refused. Needs the Pyro5 package (``twisted-pyro[pyro5]``); without
        it this fails with ``GenerationUnavailable`` (an ImportError) saying so.
    :param reactor: defaults to the global reactor, looked up when needed.
    :param hmac_key: shared secret (also used for the name server, as Pyro4 does).
    :param serializer: a Pyro4 serializer name; default ``Pyro4.config.SERIALIZER`` per call.
    :param max_connections: connections this proxy may open to its server. Calls issued
        together run concurrently: a call goes to an idle connection if there is one; else
        a new connection is opened for it, within ``max_connections``, and the call waits
        for it rather than queueing behind a busy call (Pyro4's daemons run one request per
        connection at a time). Only when every connection the proxy may have is up and busy
        (or it is backing off after a failed attempt) are calls pipelined, each on the least
        loaded connection that has room (``max_in_flight / max_connections`` calls each,
        rounded up), so a burst is spread evenly. With 1, every call is pipelined on one
        connection: the calls start on the server in the order they were made and their
        replies come in that order; Pyro4's daemons (and our server, for blocking and
        session servants) run them one after the other, our server runs calls to
        asynchronous servants concurrently. Use 1 to reach one ``instance_mode="session"``
        servant with every call; for one call at a time on any server,
        ``max_in_flight=1``. Once one connection is up (and the last attempt did not fail),
        up to 64 attempts (``_max_attempts``) run at once, one per call that lacks an idle
        connection, so a burst does not wait for its connections one handshake after the
        other; before that (first connection, or after a failure) there is one attempt at a
        time, so an unreachable server costs one attempt per backoff delay.
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

    #: Connection attempts that may run at once once the server is known to accept them
    #: (see :attr:`pyro.client.pool.ConnectionPool.max_attempts`).
    _max_attempts = ConnectionPool.max_attempts

    def __init__(self, uri: str | URI, reactor: Any = None, hmac_key: bytes | str | None = None,
                 serializer: str | None = None, max_connections: int = 4,
                 max_in_flight: int = 64, timeout: float | None = _DEFAULT,
                 handshake: Any = "hello", correlation_id: Any = None,
                 ns_uri: str | URI | None = None, patient: bool = False,
                 patient_tries: int = 20, backoff: Callable[[int], float] | None = None,
                 endpoint_factory: Callable[[Any, URI, float], Any] | None = None,
                 connect_timeout: float | None = _DEFAULT, broadcast: bool = True,
                 min_connections: int = 0, wrap_proxies: bool = True,
                 max_retries: int = _DEFAULT, pyro_version: int | None = None):
        self._codec = codec = codec_for(uri, pyro_version)
        if hmac_key and codec.pyro_version == 5:
            raise ValueError("Pyro5 has no HMAC (it relies on TLS): hmac_key is for Pyro4")
        config = codec.config
        uri_class = codec.uri_class
        self.uri = uri if isinstance(uri, uri_class) else uri_class(str(uri))
        if max_retries is _DEFAULT:
            max_retries = config.MAX_RETRIES  # when the proxy is made, as Pyro4's Proxy does
        self.max_retries: int = max_retries
        self._wrap_proxies = wrap_proxies
        # the proxies made for Pyro4 proxies in this one's results: closed with it
        self._children: weakref.WeakSet[DeferredProxy] = weakref.WeakSet()
        self._hooks = Hooks(self)  # what the connections call back for replies, weakly
        self._broadcast = broadcast
        if timeout is _DEFAULT:
            timeout = config.COMMTIMEOUT  # when the proxy is made, as Pyro4's Proxy does
        self.timeout: float | None = timeout or None
        self._reactor = reactor
        self._hmac_key: bytes | None = wire.hmac_key_bytes(hmac_key)
        self._serializer_name = serializer
        self._get_serializer()  # fail early on an unknown serializer, as Pyro4's Proxy does
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
        self._unvetted = False  # calls were queued before the metadata was known
        # the connections, and the calls waiting for them
        self._pool = ConnectionPool(self, self.uri, reactor, max_connections, min_connections,
                                    max_in_flight, self._backoff, self._endpoint_factory,
                                    codec.errors)
        self._pool.max_attempts = self._max_attempts
        # A proxy nobody holds any more closes its connections, as a Pyro4 proxy does.
        weakref.finalize(self, abandoned, self._pool, reactor).atexit = False

    # The pool's state under the names it had when the proxy was the pool (tests and
    # benchmarks look at them).

    @property
    def _connections(self) -> set[PyroClientProtocol]:
        return self._pool.connections

    @property
    def _ready(self) -> dict[PyroClientProtocol, None]:
        return self._pool.ready

    @property
    def _in_flight(self) -> int:
        return self._pool.in_flight

    @property
    def _pinned(self) -> dict[PyroClientProtocol, None]:
        return self._pool.pinned

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
        if key and self._codec.pyro_version == 5:
            raise ValueError("Pyro5 has no HMAC (it relies on TLS): hmac_key is for Pyro4")
        self._hmac_key = wire.hmac_key_bytes(key)
        for protocol in self._pool.connections:
            protocol.hmac_key = self._hmac_key

    @property
    def _pyroSerializer(self) -> str | None:
        return self._serializer_name

    @_pyroSerializer.setter
    def _pyroSerializer(self, name: str | None) -> None:
        self._codec.get_serializer(name)  # unknown: fail now, as Pyro4 does
        self._serializer_name = name

    _pyroHandshake = _alias("_handshake")
    _pyroMaxRetries = _alias("max_retries")

    def _pyroBind(self) -> defer.Deferred[bool]:
        """Pyro4's ``_pyroBind``: :meth:`connect`, firing with ``True`` if it had to make a
        connection, ``False`` if one was up."""
        unbound = not self._pool.ready
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
        return self._invoke(None, method, tuple(vargs), kwargs or {}, oneway, "method", timeout)

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
                oneway: bool = False, check: str | None = None,
                timeout: float | None = _DEFAULT, batch: bool = False) -> defer.Deferred[Any]:
        if timeout is _DEFAULT:
            timeout = self.timeout
        call = _Call(object_id, method, vargs, kwargs, oneway, self._pyroAnnotationsNow(),
                     check, timeout, batch)
        call.owner = self
        if check == "method":
            call.retries = self.max_retries
        pool = self._pool
        if pool.closing:
            call.fail(self._codec.errors.ConnectionClosedError("the proxy is closing"))
            return call.deferred
        if check is not None and object_id is None:
            if self._pyroMethods or self._pyroAttrs:
                error = self._vet(call)  # metadata known: checked now, as Pyro4 checks
                if error is not None:
                    call.fail(error)
                    return call.deferred
            else:
                self._unvetted = True  # checked when a connection brings the metadata
        resolved = pool.resolved
        known_id = object_id or (resolved.object if resolved else None)
        if known_id is not None:
            try:
                call.prepare(self._get_serializer(), known_id, self._codec)
            except Exception:
                call.fail(Failure())  # the caller's serialization error fails this call only
                return call.deferred
        with_timeout(call.deferred, timeout, self._clock, self._codec.errors.TimeoutError)
        pool.submit(call)
        return call.deferred

    def _get_serializer(self) -> Any:
        return self._codec.get_serializer(self._serializer_name)

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
        context = self._codec.context
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

    # -- what the pool asks of its proxy (pyro.client.pool.PoolOwner) ----------------------

    def _before_send(self, call: _Call, protocol: PyroClientProtocol) -> bool:
        """A call about to go on ``protocol``: Pyro4's metadata checks (and oneway methods
        made oneway), and serialization if the object id was not known when it was made."""
        object_id = call.object_id or protocol.object_id
        if call.object_id is None and call.check:
            error = self._vet(call)
            if error is not None:
                call.fail(error)
                return False
        if call.request is None or call.data_object_id != object_id:
            try:
                call.prepare(self._get_serializer(), object_id, self._codec)
            except Exception:
                call.fail(Failure())
                return False
        return True

    def _annotate_pinned(self, call: _Call) -> None:
        """An item stream's request carries the proxy's annotations (``CORR`` and the
        context's), as Pyro4's streams do."""
        call.annotations = {**self._pyroAnnotationsNow(), **call.annotations}

    def _resolve_uri(self) -> defer.Deferred[URI]:
        return resolve(self.uri, reactor=self._reactor, hmac_key=self._hmac_key,
                       ns_uri=self._ns_uri, patient=self._patient,
                       max_tries=self._patient_tries, backoff=self._backoff,
                       timeout=self.timeout, broadcast=self._broadcast, codec=self._codec)

    def _protocol_factory(self, uri: URI) -> Callable[[], PyroClientProtocol]:
        # What the connection needs, taken now: ``build`` stays with the connection, and
        # must not keep this proxy alive (see pyro.client.lifetime). Its hooks hold it weakly;
        # calls in flight hold it through ``call.owner``.
        settings = (uri.object, self._get_serializer(), self._hmac_key, self._handshake,
                    self._pyroAnnotationsNow(clear=False), uri.location, self._clock,
                    self._codec)
        hooks = self._hooks
        on_result = hooks.result if self._wrap_proxies else None
        on_response_annotations = hooks.response_annotations

        def build() -> PyroClientProtocol:
            protocol = PyroClientProtocol(*settings)
            protocol.on_response_annotations = on_response_annotations
            protocol.on_result = on_result
            return protocol

        return build

    async def _accept_connection(self, protocol: PyroClientProtocol, wait: float) -> None:
        """A new connection passed the handshake: metadata (fetched if the server did not
        send it with CONNECTOK), then the handshake's validation, as Pyro4's proxy does."""
        metadata = protocol.metadata
        if metadata is None and protocol.want_metadata:  # a server without META_ON_CONNECT
            metadata = await protocol.call(constants.DAEMON_NAME, "get_metadata",
                                           [protocol.object_id], {"as_lists": True},
                                           timeout=self.timeout or wait)
        self._process_metadata(metadata)
        await defer.maybeDeferred(self._pyroValidateHandshake, protocol.handshake_response)
        if protocol.handshake_annotations:  # after the validation, as Pyro4's proxy does
            self._pyroResponseAnnotations(protocol.handshake_annotations, wire.MSG_CONNECTOK)
        # The calls made before the metadata was known are checked now, not when their turn
        # comes (which may be after other connections are up). (Once: the queue may be long,
        # and a burst opens many connections.)
        if self._unvetted and (self._pyroMethods or self._pyroAttrs):
            self._unvetted = False
            for call in [call for call in self._pool.queue
                         if call.check is not None and call.object_id is None]:
                error = self._vet(call)
                if error is not None:
                    call.fail(error)

    def _vet(self, call: _Call) -> AttributeError | None:
        """Pyro4's metadata checks of a call to the proxy's own object (the error it fails
        with, if any); a method the metadata calls oneway is made oneway. Once vetted, a
        call is not checked again (``call.check`` is cleared)."""
        error = self._metadata_error(call)
        if error is None:
            if call.check == "method" and call.method in self._pyroOneway:
                call.oneway = True
            call.check = None
        return error

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

    def _wrap_results(self, value: Any, msg: wire.Message) -> Any:
        """Replace the ``Pyro4.Proxy`` objects in a result (Pyro4's autoproxies: a servant
        returned an object registered with its daemon) with proxies like this one. Only
        replies that can hold one come here (see ``PyroClientProtocol.on_result``)."""
        return _replace_proxies(value, self._proxy_for, self._codec.proxy_class)

    def _proxy_for(self, found: Any) -> DeferredProxy:
        """The proxy that stands for ``found``, a ``Pyro4.Proxy`` in a result: the same class
        as this one (override this if its constructor takes other arguments), for the same
        URI, with this proxy's reactor, pool, timeout, name server and transport settings,
        ``found``'s metadata, and ``found``'s HMAC key, handshake and serializer where it has
        them (this proxy's otherwise). It is closed when this proxy is closed. A
        ``Pyro5.api.Proxy`` (a Pyro5 proxy's result) becomes a proxy with ``pyro_version=5``."""
        child = type(self)(
            found._pyroUri, reactor=self._reactor,
            hmac_key=getattr(found, "_pyroHmacKey", None) or self._hmac_key,
            serializer=found._pyroSerializer or self._serializer_name,
            max_connections=self._pool.max_connections, max_in_flight=self._pool.max_in_flight,
            timeout=self.timeout, handshake=found._pyroHandshake,
            correlation_id=self._correlation_id, ns_uri=self._ns_uri, patient=self._patient,
            patient_tries=self._patient_tries, backoff=self._backoff,
            endpoint_factory=self._endpoint_factory, connect_timeout=self._connect_timeout,
            broadcast=self._broadcast, wrap_proxies=self._wrap_proxies,
            max_retries=self.max_retries, pyro_version=self._codec.pyro_version)
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
            raise self._codec.errors.PyroError(
                "remote object doesn't expose any methods or attributes. "
                "Did you forget setting @expose on them?")

    # -- life cycle -----------------------------------------------------------------------

    def connect(self) -> defer.Deferred[None]:
        """Fires when at least one connection is up (Pyro4's ``_pyroBind``, without threads).

        It fails like a call would (``CommunicationError``, ``NamingError``); use it to wait
        for a server, or to learn the metadata (``_pyroMethods``...) before calling.
        """
        waiter = self._pool.connect()
        if not waiter.called:
            waiter.addBoth(_keep_alive, self)  # a connect() waiter keeps its proxy alive
        return waiter

    def close(self) -> defer.Deferred[None]:
        """Close every connection; fires when they are gone (so trial's reactor is clean).

        Queued and in-flight calls fail with ``ConnectionClosedError``. Like Pyro4's
        ``_pyroRelease``, a later call opens a new connection. The proxies this one made for
        autoproxies in its results (``wrap_proxies``) are closed too. Cancelling the Deferred
        (a cancelled coroutine closing in its ``finally``) stops the waiting, not the closing.
        """
        children = [child.close() for child in list(self._children)]
        released = self._release()
        if not children:
            return released
        return wait_only(defer.gatherResults([released, *children]).addCallback(lambda _: None))

    def _release(self) -> defer.Deferred[None]:
        """Close this proxy's own connections (see :meth:`close`)."""
        return self._pool.close(self._codec.errors.ConnectionClosedError("the proxy was closed"))

    async def __aenter__(self) -> DeferredProxy:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        pool = self._pool
        return "<%s.%s for %s; %d connections, %d in flight, %d queued>" % (
            type(self).__module__, type(self).__name__, self.uri, len(pool.ready),
            pool.in_flight, pool.queued)


def _replace_proxies(value: Any, replace: Callable[[Any], Any],
                     proxy_class: type = Pyro4.Proxy) -> Any:
    """``value`` with every ``proxy_class`` (``Pyro4.Proxy``, or ``Pyro5.api.Proxy``) in it,
    or in its lists, tuples and dicts (values), replaced by ``replace(proxy)``. Lists and
    dicts are changed in place: they are fresh from the deserializer."""
    if isinstance(value, proxy_class):
        return replace(value)
    kind = type(value)
    if kind is list:
        for index, item in enumerate(value):
            value[index] = _replace_proxies(item, replace, proxy_class)
    elif kind is dict:
        for key, item in value.items():
            value[key] = _replace_proxies(item, replace, proxy_class)
    elif kind is tuple:
        return tuple(_replace_proxies(item, replace, proxy_class) for item in value)
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
        target = self._target
        d = target._invoke(None, "<batch>", self._take(), None, oneway, None, timeout,
                           batch=True)
        return d if oneway else d.addCallback(collect_results,
                                              target._codec.exception_wrapper)


naming.proxy_class = DeferredProxy  # the name server is reached through proxies like any other
