"""From a parsed request to a servant call, and from the call's outcome to a reply.

This is the part of Pyro4's ``Daemon._handshake`` / ``Daemon.handleRequest`` that decides
*what* to run and *what* to answer, rebuilt so that the answer may come later: a servant may
return a ``Deferred`` or be a coroutine, and a blocking servant may run in a thread pool. Each
entry point returns the reply bytes, ``None`` (nothing to send: a oneway call) or a
``Deferred`` that fires with one of those (also for a oneway call that must finish before the
connection's next request: ``ONEWAY_THREADED=False`` with a pool, as in Pyro4's thread
server). The protocol owns the connection and ordering. What a message means (payload
layout, flags) is the connection's codec's business (:mod:`pyro.wire.messages`): this module
only decides what to run and hands the outcome to the codec.

Pyro4's rules are applied unchanged, mostly by calling Pyro4's own code: accepted
serializers, exposure (no private or dunder names, ``REQUIRE_EXPOSE``, exposed properties:
decided by :mod:`.exposure` from the class *before* anything is evaluated, where Pyro4's
``util.getAttribute`` evaluates first), instance modes, batch semantics, item streams, and
exception replies carrying ``_pyroTraceback``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union
from typing import Protocol as TypingProtocol

from Pyro4 import constants, errors
from Pyro4.core import Daemon
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from .. import wire
from ..wire.messages import PYRO4, Invoke, Pyro4Codec
from . import exposure
from .context import CallContext, context_class
from .coroutines import run_coroutine
from .placement import Exclusive, runs_in_reactor
from .streams import is_stream
from .tracebacks import failure_traceback, format_remote_traceback

if TYPE_CHECKING:
    from .connection import PyroConnection

Reply = Union[wire.Frame, None]  # noqa: UP007 -- a runtime alias, kept valid on Python 3.10
MaybeDeferredReply = Union[Reply, "defer.Deferred[Reply]"]  # noqa: UP007
Outcome = Union[MaybeDeferredReply, Exclusive]  # noqa: UP007 -- what invoke() returns

log = Logger(namespace="pyro.dispatch")
_NOT_PLAIN: Any = object()  # (Dispatcher._plain: the request takes the general path)
_ATTRIBUTE_ACCESS = frozenset({"__getattr__", "__setattr__"})
_pyro5_parts: Any = None  # pyro.server.pyro5, once imported (see Dispatcher._pyro5)


class ServedDaemon(TypingProtocol):
    """What the dispatcher uses of its daemon (:class:`pyro.server.factory.Pyro4ProtocolFactory`)."""

    accepted_serializers: dict[Any, frozenset[int]]
    pyro5_faces: dict[str, Any]
    objectsById: dict[str, Any]
    threadpool: Any
    streams: Any
    _pyroInstances: dict[type, Any]

    @property
    def reactor(self) -> Any: ...

    @property
    def _pyroHmacKey(self) -> bytes | None: ...

    def hmacKey(self) -> bytes | None: ...

    def annotations(self) -> dict[str, bytes]: ...

    def validateHandshake(self, conn: Any, data: Any) -> Any: ...


class Dispatcher:
    """Runs requests against the objects registered in one factory (the "daemon")."""

    def __init__(self, daemon: ServedDaemon):
        self.daemon = daemon

    # -- shared helpers -------------------------------------------------------------------

    @staticmethod
    def _pyro5() -> Any:
        """The server's Pyro5 parts (imported once a Pyro5 client came: Pyro5 is there)."""
        global _pyro5_parts
        if _pyro5_parts is None:
            from . import pyro5

            _pyro5_parts = pyro5
        return _pyro5_parts

    def _for_generation(self, codec: Any, exc: Any) -> Any:
        """``exc`` as the client's generation can rebuild it: Pyro4's errors as Pyro5's for
        a Pyro5 client, Pyro5's as Pyro4's for a Pyro4 client (same names and words)."""
        if codec is not PYRO4:
            return self._pyro5().for_pyro5(exc)
        if type(exc).__module__ == "Pyro5.errors":  # (then Pyro5 is imported already)
            return self._pyro5().for_pyro4(exc)
        return exc

    def _annotations(self, ctx: CallContext | None,
                     extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
        """The response annotations: the servant's (``current_context``), then the daemon's
        (``extra``: what its ``annotations()`` gave for this reply already)."""
        if extra is None:
            extra = self.daemon.annotations()
        if ctx is None:
            return dict(extra)
        annotations = ctx.response_annotations
        annotations.update(extra)
        return annotations

    def _settle(self, result: Any, ctx: CallContext) -> Any:
        """A coroutine becomes a Deferred that keeps its call context across ``await`` (an
        asyncio task under the asyncio reactor: see :mod:`.coroutines`)."""
        if inspect.iscoroutine(result):
            return run_coroutine(result, ctx, self.daemon.reactor)
        return result

    def call(self, function: Callable[..., Any], args: Any, kwargs: Any, ctx: CallContext,
             threadpool: Any = None) -> Any:
        """Run one servant call: a value, or a Deferred when it finishes later.

        With a thread pool, a plain function runs in the pool (it may block); a coroutine
        function, or one marked :func:`in_reactor`, runs in the reactor thread.
        """
        if threadpool is not None and not runs_in_reactor(function):
            d = threads.deferToThreadPool(
                self.daemon.reactor, threadpool, ctx.run, function, *args, **kwargs
            )
            return d.addCallback(self._settle, ctx)
        return self._settle(ctx.run(function, *args, **kwargs), ctx)

    # -- the handshake -------------------------------------------------------------------

    def handshake(self, connection: PyroConnection, msg: wire.Message) -> Any:
        """Answer a CONNECT: ``(reply, accepted)``, or a Deferred of that pair."""
        codec = connection.codec
        ctx = context_class(codec).for_message(connection, msg, handshake=True)
        try:
            serializer = codec.accepted_serializer(msg, self.daemon.accepted_serializers[codec])
            request = codec.read_connect(msg, serializer)
            object_id = request.object_id  # None without the client's METADATA
            if isinstance(object_id, str):
                object_id = sys.intern(object_id)  # one copy, however many clients hold it
            connection.objectId = object_id
            response = ctx.run(self.daemon.validateHandshake, connection, request.handshake)
            response = self._settle(response, ctx)
        except Exception as exc:
            return self.connect_fail(connection, msg, exc, ctx), False
        if isinstance(response, defer.Deferred):
            return response.addCallbacks(
                self._connect_ok,
                lambda f: (self.connect_fail(connection, msg, f.value, ctx), False),
                callbackArgs=(connection, msg, serializer, request.wants_metadata, ctx),
            )
        return self._connect_ok(response, connection, msg, serializer, request.wants_metadata,
                                ctx)

    def _connect_ok(self, response: Any, connection: PyroConnection, msg: wire.Message,
                    serializer: Any, wants_metadata: bool, ctx: CallContext) -> tuple[wire.Frame, bool]:
        try:
            metadata = None
            if wants_metadata:
                daemon_object = self.daemon.objectsById[constants.DAEMON_NAME]
                # (in the call's context: the metadata is that of the client's generation)
                metadata = ctx.run(daemon_object.get_metadata, connection.objectId,
                                   as_lists=True)
            reply = connection.codec.connect_ok(msg, serializer, response, metadata,
                                                self._annotations(ctx), self.daemon.hmacKey())
        except Exception as exc:
            return self.connect_fail(connection, msg, exc, ctx), False
        return reply, True

    def connect_fail(self, connection: PyroConnection, msg: wire.Message | None, reason: Any,
                     ctx: CallContext | None = None) -> wire.Frame:
        """A CONNECTFAIL carrying ``str(reason)``, as Pyro4 sends when it refuses a client."""
        log.info("handshake refused for {peer}: {reason}",
                 peer=connection.peer_address, reason=str(reason))
        codec = connection.codec
        return codec.connect_fail(msg, reason,
                                  self.daemon.accepted_serializers.get(codec, frozenset()),
                                  self._annotations(ctx), self.daemon.hmacKey())

    # -- requests -------------------------------------------------------------------------

    def invoke(self, connection: PyroConnection, msg: wire.Message) -> Outcome:
        """Answer an INVOKE or PING message.

        A Deferred outcome that must hold the connection (no request behind it may start
        before it is done) comes wrapped in :class:`~pyro.server.placement.Exclusive`: a
        call on a session servant (one instance per connection, written for one call at a
        time); the next item of an asynchronous item stream (an async generator cannot run
        two ``anext()`` at once: pipelined reads wait for each other); and, with a thread
        pool, a request whose servant code runs in the pool (one call per connection at a
        time, as in Pyro4's thread server).
        """
        codec = connection.codec
        outcome = self._plain(connection, codec, msg)
        if outcome is not _NOT_PLAIN:
            return outcome
        ctx = context_class(codec).for_message(connection, msg)
        if codec.is_ping(msg):
            return codec.pong(msg, self._annotations(ctx), self.daemon.hmacKey())
        try:
            serializer = codec.accepted_serializer(msg, self.daemon.accepted_serializers[codec])
            call = codec.read_invoke(msg, serializer)
            obj = None
            if codec is not PYRO4 and self.daemon.pyro5_faces:
                obj = self.daemon.pyro5_faces.get(call.object_id)
            if obj is None:
                obj = self.daemon.objectsById.get(call.object_id)
            if obj is None:
                log.debug("unknown object requested: {object_id}", object_id=call.object_id)
                raise errors.DaemonError("unknown object")
            pool = self.daemon.threadpool
            session = False
            if inspect.isclass(obj):
                session = obj._pyroInstancing[0] == "session"  # type: ignore[attr-defined]
                obj = self._instance(obj, connection, ctx, pool)
                if isinstance(obj, defer.Deferred):  # being created in the pool
                    return Exclusive(obj.addCallbacks(
                        self._request, self._instance_failed,
                        callbackArgs=(codec, msg, ctx, serializer, call, pool),
                        errbackArgs=(codec, msg, ctx)))
        except Exception:
            return self._request_failed(codec, msg, ctx)
        outcome = self._request(obj, codec, msg, ctx, serializer, call, pool)
        if isinstance(outcome, defer.Deferred) and (
                session or obj is self.daemon.objectsById.get(constants.DAEMON_NAME)
                or (pool is not None and self._in_pool(obj, call))):
            return Exclusive(outcome)
        return outcome

    def _plain(self, connection: PyroConnection, codec: Any, msg: wire.Message) -> Any:
        """The usual small call, answered with less work: its outcome, else ``_NOT_PLAIN``.

        What :meth:`invoke` would do and answer, for a request the codec reads as a plain
        call (:meth:`~pyro.wire.events.SameInBoth.plain_call`: an INVOKE in serpent, scalar
        arguments, no oneway, batch or blob) of a method of a registered instance, in the
        reactor thread (no thread pool): about a third of a small call's server work is
        the general path's checks for everything else. Requests of any other kind are left
        to the general path before anything of them is looked at; from the name's lookup
        on (which may evaluate servant code, and refuse), each step is the general path's
        own, once: a refusal, a servant's exception, a coroutine, a result that is not a
        scalar or cannot be written, annotations to add, are all answered by its code.
        """
        daemon = self.daemon
        if daemon.threadpool is not None:
            return _NOT_PLAIN
        call = codec.plain_call(msg, daemon.accepted_serializers[codec])
        if call is None:
            return _NOT_PLAIN
        object_id, method, vargs, serializer = call
        if method in _ATTRIBUTE_ACCESS or (codec is not PYRO4
                                           and object_id in daemon.pyro5_faces):
            return _NOT_PLAIN
        obj = daemon.objectsById.get(object_id)
        if obj is None or isinstance(obj, type) or object_id == constants.DAEMON_NAME:
            return _NOT_PLAIN
        ctx = context_class(codec).for_message(connection, msg)
        try:
            function = exposure.remote_method(
                obj, method, codec.config.REQUIRE_EXPOSE if codec is PYRO4 else True)
            outcome = self._settle(ctx.run(function, *vargs), ctx)
        except Exception:
            return self._request_failed(codec, msg, ctx)
        if isinstance(outcome, defer.Deferred):
            return self._reply_to(outcome, codec, msg, serializer, ctx, False)
        extra = daemon.annotations()  # (asked once a reply, as Pyro's daemons do)
        if not extra and not ctx.values["response_annotations"]:
            try:
                reply = codec.plain_result(msg, serializer, outcome,
                                           ctx.values["correlation_id"].bytes, daemon.hmacKey())
            except Exception:
                reply = None  # (e.g. an int too long for repr(): the general code says so)
            if reply is not None:
                return reply
        return self._result_reply(outcome, codec, msg, serializer, ctx, False, extra)

    def _in_pool(self, obj: Any, call: Invoke) -> bool:
        """Does the servant code of this request (which returned a Deferred) run in the
        thread pool? Batches and attribute access do, as do methods not marked to run in the
        reactor; and so does reading an item stream of a plain generator (the
        ``Pyro.Daemon`` object's ``get_next_stream_item``). (Looked up statically: the call
        was let through, but nothing more of the servant is evaluated to decide this.)"""
        if call.batch or call.method in ("__getattr__", "__setattr__"):
            return True
        if obj is self.daemon.objectsById.get(constants.DAEMON_NAME):
            return True
        function = inspect.getattr_static(obj, call.method, None)
        return function is None or not runs_in_reactor(function)

    def _instance(self, cls: type, connection: PyroConnection, ctx: CallContext,
                  pool: Any) -> Any:
        """The instance of a registered class that serves this call (Pyro4's instance modes,
        by Pyro4's own ``_getInstance``), or a Deferred of it.

        A new instance's ``__init__`` (or ``instance_creator``) sees this call's
        ``current_context``, as in Pyro4. With a thread pool it runs in the pool, as in
        Pyro4's thread server (it may block: open a database, say), unless the class is
        marked :func:`in_reactor`; an instance that exists already is found at once.
        """
        if pool is None or runs_in_reactor(cls) or self._existing_instance(cls, connection):
            return ctx.run(Daemon._getInstance, self.daemon, cls, connection)
        return threads.deferToThreadPool(self.daemon.reactor, pool, ctx.run,
                                         Daemon._getInstance, self.daemon, cls, connection)

    def _existing_instance(self, cls: type, connection: PyroConnection) -> Any:
        """The instance ``_getInstance`` would return without creating one, else None (or a
        falsy instance, which Pyro4's ``_getInstance`` replaces)."""
        mode = cls._pyroInstancing[0]  # type: ignore[attr-defined]
        if mode == "single":
            return self.daemon._pyroInstances.get(cls)
        if mode == "session":
            return connection.pyroInstances.get(cls)
        return None  # percall (or an invalid mode, which _getInstance reports)

    def _request_failed(self, codec: Pyro4Codec, msg: wire.Message,
                        ctx: CallContext) -> Reply | None:
        """In an ``except`` block: the exception reply to ``msg``; none for a oneway request,
        whose failure is only logged."""
        error = sys.exc_info()[1]
        if codec.is_oneway(msg):
            log.debug("oneway request failed: {error!r}", error=error)
            return None
        return self._exception_reply(codec, msg, error, self._traceback(codec), ctx)

    def _instance_failed(self, failure: Failure, codec: Pyro4Codec, msg: wire.Message,
                         ctx: CallContext) -> MaybeDeferredReply:
        """Creating the servant instance in the pool raised: the client gets the error."""
        if codec.is_oneway(msg):
            log.debug("oneway request failed: {error!r}", error=failure.value)
            return None
        return self._failure_reply(failure, codec, msg, ctx)

    def _request(self, obj: Any, codec: Pyro4Codec, msg: wire.Message, ctx: CallContext,
                 serializer: Any, call: Invoke, pool: Any) -> MaybeDeferredReply:
        """Serve an INVOKE on ``obj`` (the servant instance): batch, attribute or call.

        What the request names is checked by :mod:`.exposure` before anything of it runs.
        """
        oneway, batch = call.oneway, call.batch
        method, vargs, kwargs = call.method, call.vargs, call.kwargs
        # Pyro5 has no REQUIRE_EXPOSE (nor ONEWAY_THREADED): it always behaves as Pyro4's
        # defaults do (True)
        require_expose = getattr(codec.config, "REQUIRE_EXPOSE", True)
        try:
            if batch:
                outcome = defer.ensureDeferred(self._batch(obj, vargs, ctx, pool, codec))
            elif method == "__getattr__":
                getter = exposure.property_getter(obj, vargs[0], require_expose)
                outcome = self.call(getter, (obj,), {}, ctx, pool)
            elif method == "__setattr__":
                setter = exposure.property_setter(obj, vargs[0], require_expose)
                outcome = self.call(setter, (obj, vargs[1]), {}, ctx, pool)
            else:
                function = exposure.remote_method(obj, method, require_expose)
                if oneway:
                    outcome = self._oneway(function, vargs, kwargs, ctx, codec)
                else:
                    outcome = self.call(function, vargs, kwargs, ctx, pool)
        except Exception:
            return self._request_failed(codec, msg, ctx)
        if oneway:
            return self._oneway_done(outcome, method, pool,
                                     getattr(codec.config, "ONEWAY_THREADED", True))
        return self._reply_to(outcome, codec, msg, serializer, ctx, batch)

    def _reply_to(self, outcome: Any, codec: Pyro4Codec, msg: wire.Message, serializer: Any,
                  ctx: CallContext, batch: bool) -> MaybeDeferredReply:
        """The reply to a call's outcome: now, or when its Deferred fires."""
        if isinstance(outcome, defer.Deferred):
            return outcome.addCallbacks(
                self._result_reply, self._failure_reply,
                callbackArgs=(codec, msg, serializer, ctx, batch), errbackArgs=(codec, msg, ctx),
            )
        return self._result_reply(outcome, codec, msg, serializer, ctx, batch)

    @staticmethod
    def _traceback(codec: Any = PYRO4) -> list[str]:
        exc_type, exc_value, tb = sys.exc_info()
        assert exc_type is not None and exc_value is not None
        return format_remote_traceback(exc_type, exc_value, tb,
                                       codec.config.DETAILED_TRACEBACK)

    async def _batch(self, obj: Any, calls: Any, ctx: CallContext, pool: Any,
                     codec: Any = PYRO4) -> list[Any]:
        """Run batched calls in order; stop at the first exception, which travels wrapped
        (in the wrapper class of the client's generation)."""
        results: list[Any] = []
        require_expose = getattr(codec.config, "REQUIRE_EXPOSE", True)
        for method, vargs, kwargs in calls:
            # refused: the whole batch fails
            function = exposure.remote_method(obj, method, require_expose)
            try:
                result = self.call(function, vargs, kwargs, ctx, pool)
                if isinstance(result, defer.Deferred):
                    result = await result
            except Exception as exc:
                log.debug("exception in batched request: {error!r}", error=exc)
                exc._pyroTraceback = self._traceback(codec)  # type: ignore[attr-defined]
                results.append(codec.exception_wrapper(self._for_generation(codec, exc)))
                break
            results.append(result)
        return results

    def _oneway(self, function: Callable[..., Any], vargs: Any, kwargs: Any,
                ctx: CallContext, codec: Any = PYRO4) -> Any:
        """Start a oneway call (Pyro4: ``ONEWAY_THREADED``): its outcome, maybe a Deferred.

        With a thread pool, every call runs there (a oneway one too); without one,
        ``ONEWAY_THREADED`` sends it to the reactor's pool, so that it may block (Pyro5
        always runs a oneway call in a thread of its own: as ``ONEWAY_THREADED=True``).
        """
        pool = self.daemon.threadpool
        if pool is None and getattr(codec.config, "ONEWAY_THREADED", True):
            pool = self.daemon.reactor.getThreadPool()
        return self.call(function, vargs, kwargs, ctx, pool)

    @staticmethod
    def _oneway_done(outcome: Any, method: str, pool: Any,
                     threaded: bool = True) -> MaybeDeferredReply:
        """Nothing to send for a oneway request (call, batch or attribute access), whose
        failure is only logged; and whether the connection's next request waits for it.

        With a thread pool and ``ONEWAY_THREADED=False`` it does, as in Pyro4's thread
        server, which then runs a oneway call in the connection's own worker (users rely on
        that to keep their calls in order): the returned Deferred fires (with None) when the
        call is done, and the protocol serves nothing of this connection before. Otherwise
        (no pool, or ``ONEWAY_THREADED``), nothing waits for it: None.
        """
        if not isinstance(outcome, defer.Deferred):
            return None  # done already (or it failed at once, and was logged)
        outcome.addCallbacks(
            lambda _: None,
            lambda f: log.debug("oneway call {name} failed: {error!r}", name=method,
                                error=f.value))
        if pool is not None and not threaded:
            return outcome
        return None

    def _result_reply(self, data: Any, codec: Pyro4Codec, msg: wire.Message, serializer: Any,
                      ctx: CallContext, batch: bool = False,
                      extra: dict[str, bytes] | None = None) -> wire.Frame:
        """Serialize a call's result (or open an item stream for an iterator); ``extra``:
        the daemon's annotations for this reply, if they were asked for already."""
        try:
            if not batch and is_stream(data):
                stream_id = self.daemon.streams.open(data, ctx.values["client"], codec.config)
                return codec.stream_opened(msg, stream_id, self._annotations(ctx, extra),
                                           self.daemon.hmacKey())
            if codec is not PYRO4:  # (registered objects become Pyro5 proxies)
                return self._pyro5().result(codec, msg, serializer, data, batch,
                                            self._annotations(ctx, extra))
            return codec.result(msg, serializer, data, batch, self._annotations(ctx, extra),
                                self.daemon.hmacKey())
        except Exception:
            return self._exception_reply(codec, msg, sys.exc_info()[1], self._traceback(codec),
                                         ctx)

    def _failure_reply(self, failure: Failure, codec: Pyro4Codec, msg: wire.Message,
                       ctx: CallContext) -> wire.Frame:
        if not failure.check(Exception):  # KeyboardInterrupt, SystemExit: not the client's
            return failure  # type: ignore[return-value]
        return self._exception_reply(codec, msg, failure.value,
                                     failure_traceback(failure, codec.config.DETAILED_TRACEBACK),
                                     ctx)

    def _exception_reply(self, codec: Pyro4Codec, msg: wire.Message, exc: Any,
                         tblines: list[str] | None, ctx: CallContext | None) -> wire.Frame:
        """An exception RESULT, as Pyro4's ``_sendExceptionResponse`` builds it, plus the
        call's correlation id (``CORR``), which Pyro4 leaves out there: a client that tags its
        calls can match failures too."""
        if not isinstance(exc, (StopIteration, GeneratorExit)):
            log.debug("exception while handling request: {error!r}", error=exc)
        exc = self._for_generation(codec, exc)
        return codec.exception(msg, exc, tblines, self._annotations(ctx), self.daemon.hmacKey())

    def exception_reply(self, connection: PyroConnection, msg: wire.Message,
                        exc: BaseException) -> wire.Frame:
        """The answer to ``msg`` when the connection itself failed it (e.g. a message too
        large): the exception, with no traceback and no call context."""
        return self._exception_reply(connection.codec, msg, exc, None, None)
