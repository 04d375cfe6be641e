"""From a parsed request to a servant call, and from the call's outcome to a reply.

This is the part of Pyro4's ``Daemon._handshake`` / ``Daemon.handleRequest`` that decides
*what* to run and *what* to answer, rebuilt so that the answer may come later: a servant may
return a ``Deferred`` or be a coroutine, and a blocking servant may run in a thread pool. Each
entry point returns the reply bytes, ``None`` (nothing to send: a oneway call) or a
``Deferred`` that fires with one of those. The protocol owns the connection and ordering.

Pyro4's rules are applied unchanged, mostly by calling Pyro4's own code: accepted
serializers, ``util.getAttribute`` (no private or dunder names, ``REQUIRE_EXPOSE``),
exposed properties, instance modes, batch semantics, item streams, and exception replies
carrying ``_pyroTraceback``.
"""

from __future__ import annotations

import inspect
import marshal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union
from typing import Protocol as TypingProtocol

from Pyro4 import constants, errors, futures, util
from Pyro4.configuration import config
from Pyro4.core import Daemon, SerializedBlob
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from .. import wire
from ..wire import fastserpent
from .context import CallContext
from .placement import runs_in_reactor
from .streams import is_stream
from .tracebacks import failure_traceback, format_remote_traceback

if TYPE_CHECKING:
    from .connection import PyroConnection

Reply = Union[wire.Frame, None]  # noqa: UP007 -- a runtime alias, kept valid on Python 3.10
MaybeDeferredReply = Union[Reply, "defer.Deferred[Reply]"]  # noqa: UP007

_MARSHAL_ID = util.MarshalSerializer.serializer_id
log = Logger(namespace="pyro.dispatch")


def _serializer_or_marshal(serializer_id: int) -> Any:
    """The serializer to answer in: the request's own if we know it at all."""
    try:
        return util.get_serializer_by_id(serializer_id)
    except errors.SerializeError:
        return util.get_serializer_by_id(_MARSHAL_ID)


class ServedDaemon(TypingProtocol):
    """What the dispatcher uses of its daemon (:class:`pyro.server.factory.Pyro4ProtocolFactory`)."""

    accepted_serializer_ids: frozenset[int]
    objectsById: dict[str, Any]
    threadpool: Any
    streams: Any
    _pyroInstances: dict[type, Any]

    @property
    def reactor(self) -> Any: ...

    @property
    def _pyroHmacKey(self) -> bytes | None: ...

    def annotations(self) -> dict[str, bytes]: ...

    def validateHandshake(self, conn: Any, data: Any) -> Any: ...


class Dispatcher:
    """Runs requests against the objects registered in one factory (the "daemon")."""

    def __init__(self, daemon: ServedDaemon):
        self.daemon = daemon

    # -- shared helpers -------------------------------------------------------------------

    def _accepted_serializer(self, msg: wire.Message) -> Any:
        if msg.serializer_id not in self.daemon.accepted_serializer_ids:
            raise errors.SerializeError(
                "message used serializer that is not accepted: %d" % msg.serializer_id
            )
        return util.get_serializer_by_id(msg.serializer_id)

    def _annotations(self, ctx: CallContext) -> dict[str, bytes]:
        annotations = ctx.response_annotations
        annotations.update(self.daemon.annotations())
        return annotations

    def _encode(self, msg_type: int, data: bytes, serializer_id: int, flags: int, seq: int,
                annotations: dict[str, bytes]) -> wire.Frame:
        if len(data) >= wire.LARGE_PAYLOAD:  # (head, payload): the payload is not copied again
            return wire.encode_parts(msg_type, data, serializer_id, flags, seq, annotations,
                                     self.daemon._pyroHmacKey)
        return wire.encode(msg_type, data, serializer_id, flags, seq, annotations,
                           self.daemon._pyroHmacKey)

    def _settle(self, result: Any, ctx: CallContext) -> Any:
        """A coroutine becomes a Deferred that keeps its call context across ``await``."""
        if inspect.iscoroutine(result):
            return defer.ensureDeferred(ctx.drive(result))
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
        ctx = CallContext.for_message(connection, msg, handshake=True)
        try:
            serializer = self._accepted_serializer(msg)
            data = fastserpent.deserialize_data(serializer, msg.data,
                                                msg.flags & wire.FLAGS_COMPRESSED)
            object_id, handshake = data.get("object"), data["handshake"]  # no "object" without METADATA
            if isinstance(object_id, str):
                object_id = sys.intern(object_id)  # one copy, however many clients hold it
            connection.objectId = object_id
            response = ctx.run(self.daemon.validateHandshake, connection, handshake)
            response = self._settle(response, ctx)
        except Exception as exc:
            return self.connect_fail(msg, exc, ctx), False
        if isinstance(response, defer.Deferred):
            return response.addCallbacks(
                self._connect_ok, lambda f: (self.connect_fail(msg, f.value, ctx), False),
                callbackArgs=(msg, serializer, object_id, ctx),
            )
        return self._connect_ok(response, msg, serializer, object_id, ctx)

    def _connect_ok(self, response: Any, msg: wire.Message, serializer: Any, object_id: str,
                    ctx: CallContext) -> tuple[wire.Frame, bool]:
        try:
            flags = 0
            if msg.flags & wire.FLAGS_META_ON_CONNECT:
                flags = wire.FLAGS_META_ON_CONNECT
                daemon_object = self.daemon.objectsById[constants.DAEMON_NAME]
                response = {
                    "handshake": response,
                    "meta": daemon_object.get_metadata(object_id, as_lists=True),
                }
            data, compressed = serializer.serializeData(response, config.COMPRESSION)
            if compressed:
                flags |= wire.FLAGS_COMPRESSED
            reply = self._encode(wire.MSG_CONNECTOK, data, serializer.serializer_id, flags,
                                 msg.seq, self._annotations(ctx))
        except Exception as exc:
            return self.connect_fail(msg, exc, ctx), False
        return reply, True

    def connect_fail(self, msg: wire.Message | None, reason: Any,
                     ctx: CallContext | None = None) -> wire.Frame:
        """A CONNECTFAIL carrying ``str(reason)``, as Pyro4 sends when it refuses a client."""
        seq = msg.seq if msg is not None else 0
        serializer_id = _MARSHAL_ID
        if msg is not None and msg.serializer_id in self.daemon.accepted_serializer_ids:
            serializer_id = msg.serializer_id
        serializer = util.get_serializer_by_id(serializer_id)
        data, compressed = serializer.serializeData(str(reason), False)
        flags = wire.FLAGS_COMPRESSED if compressed else 0
        annotations = self._annotations(ctx) if ctx is not None else dict(self.daemon.annotations())
        log.info("handshake refused for {peer}: {reason}",
                 peer=ctx.values["client"].peer_address if ctx else None, reason=str(reason))
        return self._encode(wire.MSG_CONNECTFAIL, data, serializer_id, flags, seq, annotations)

    # -- requests -------------------------------------------------------------------------

    def invoke(self, connection: PyroConnection, msg: wire.Message) -> MaybeDeferredReply:
        """Answer an INVOKE or PING message."""
        ctx = CallContext.for_message(connection, msg)
        if msg.type == wire.MSG_PING:
            return self._encode(wire.MSG_PING, b"pong", msg.serializer_id, 0, msg.seq,
                                self._annotations(ctx))
        try:
            serializer = self._accepted_serializer(msg)
            object_id, method, vargs, kwargs = self._call_data(msg, serializer)
            obj = self.daemon.objectsById.get(object_id)
            if obj is None:
                log.debug("unknown object requested: {object_id}", object_id=object_id)
                raise errors.DaemonError("unknown object")
            pool = self.daemon.threadpool
            if inspect.isclass(obj):
                obj = self._instance(obj, connection, ctx, pool)
                if isinstance(obj, defer.Deferred):  # being created in the pool
                    return obj.addCallbacks(
                        self._request, self._instance_failed,
                        callbackArgs=(msg, ctx, serializer, method, vargs, kwargs, pool),
                        errbackArgs=(msg, ctx))
        except Exception:
            return self._request_failed(msg, ctx)
        return self._request(obj, msg, ctx, serializer, method, vargs, kwargs, pool)

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

    def _request_failed(self, msg: wire.Message, ctx: CallContext) -> Reply | None:
        """In an ``except`` block: the exception reply to ``msg``; none for a oneway request,
        whose failure is only logged."""
        error = sys.exc_info()[1]
        if msg.flags & wire.FLAGS_ONEWAY:
            log.debug("oneway request failed: {error!r}", error=error)
            return None
        return self.exception_reply(msg, error, self._traceback(), ctx)

    def _instance_failed(self, failure: Failure, msg: wire.Message,
                         ctx: CallContext) -> MaybeDeferredReply:
        """Creating the servant instance in the pool raised: the client gets the error."""
        if msg.flags & wire.FLAGS_ONEWAY:
            log.debug("oneway request failed: {error!r}", error=failure.value)
            return None
        return self._failure_reply(failure, msg, ctx)

    def _request(self, obj: Any, msg: wire.Message, ctx: CallContext, serializer: Any,
                 method: str, vargs: Any, kwargs: Any, pool: Any) -> MaybeDeferredReply:
        """Serve an INVOKE on ``obj`` (the servant instance): batch, attribute or call."""
        oneway = bool(msg.flags & wire.FLAGS_ONEWAY)
        batch = bool(msg.flags & wire.FLAGS_BATCH)
        try:
            if batch:
                outcome = defer.ensureDeferred(self._batch(obj, vargs, ctx, pool))
            elif method == "__getattr__":
                outcome = self.call(util.get_exposed_property_value, (obj, vargs[0]),
                                    {"only_exposed": config.REQUIRE_EXPOSE}, ctx, pool)
            elif method == "__setattr__":
                outcome = self.call(util.set_exposed_property_value, (obj, vargs[0], vargs[1]),
                                    {"only_exposed": config.REQUIRE_EXPOSE}, ctx, pool)
            else:
                function = util.getAttribute(obj, method)
                if oneway:
                    self._oneway(function, vargs, kwargs, ctx)
                    return None
                outcome = self.call(function, vargs, kwargs, ctx, pool)
        except Exception:
            return self._request_failed(msg, ctx)
        if oneway:
            return None
        if isinstance(outcome, defer.Deferred):
            return outcome.addCallbacks(
                self.result_reply, self._failure_reply,
                callbackArgs=(msg, serializer, ctx, batch), errbackArgs=(msg, ctx),
            )
        return self.result_reply(outcome, msg, serializer, ctx, batch)

    @staticmethod
    def _traceback() -> list[str]:
        exc_type, exc_value, tb = sys.exc_info()
        assert exc_type is not None and exc_value is not None
        return format_remote_traceback(exc_type, exc_value, tb)

    @staticmethod
    def _call_data(msg: wire.Message, serializer: Any) -> tuple[str, str, Any, Any]:
        """``(object_id, method, vargs, kwargs)`` of a request, or a clear SerializeError.

        Garbage that a serializer chokes on would otherwise travel back as whatever the
        serializer raised (a ``UnicodeDecodeError`` holding bytes, say), which the client's
        serializer may not even be able to rebuild.
        """
        try:
            if msg.flags & wire.FLAGS_KEEPSERIALIZED:
                # hand the servant the still-serialized payload (Pyro4's rule)
                blobinfo, object_id, method = marshal.loads(msg.annotations["BLBI"])
                return object_id, method, (SerializedBlob(blobinfo, msg, is_blob=True),), {}
            object_id, method, vargs, kwargs = fastserpent.deserialize_call(
                serializer, msg.data, compressed=msg.flags & wire.FLAGS_COMPRESSED)
        except Exception as exc:
            raise errors.SerializeError("invalid call data: %s: %s" % (type(exc).__name__, exc))
        return object_id, method, vargs, kwargs

    async def _batch(self, obj: Any, calls: Any, ctx: CallContext, pool: Any) -> list[Any]:
        """Run batched calls in order; stop at the first exception, which travels wrapped."""
        results: list[Any] = []
        for method, vargs, kwargs in calls:
            function = util.getAttribute(obj, method)
            try:
                result = self.call(function, vargs, kwargs, ctx, pool)
                if isinstance(result, defer.Deferred):
                    result = await result
            except Exception as exc:
                log.debug("exception in batched request: {error!r}", error=exc)
                exc._pyroTraceback = self._traceback()  # type: ignore[attr-defined]
                results.append(futures._ExceptionWrapper(exc))
                break
            results.append(result)
        return results

    def _oneway(self, function: Callable[..., Any], vargs: Any, kwargs: Any,
                ctx: CallContext) -> None:
        """Start a oneway call and do not wait for it (Pyro4: ``ONEWAY_THREADED``)."""
        pool = self.daemon.threadpool  # with a pool, every call runs there (even oneway)
        if pool is None and config.ONEWAY_THREADED:
            pool = self.daemon.reactor.getThreadPool()
        d = defer.maybeDeferred(self.call, function, vargs, kwargs, ctx, pool)
        d.addErrback(lambda f: log.debug("oneway call {name} failed: {error!r}",
                                         name=getattr(function, "__name__", function),
                                         error=f.value))

    def result_reply(self, data: Any, msg: wire.Message, serializer: Any, ctx: CallContext,
                     batch: bool = False) -> wire.Frame:
        """Serialize a call's result (or open an item stream for an iterator)."""
        try:
            if not batch and is_stream(data):
                stream_id = self.daemon.streams.open(data, ctx.values["client"])
                notice = errors.ProtocolError("result of call is an iterator")
                annotations = {"STRM": stream_id.encode()} if stream_id else {}
                return self.exception_reply(msg, notice, None, ctx,
                                            wire.FLAGS_ITEMSTREAMRESULT, annotations)
            payload, compressed = serializer.serializeData(data, compress=config.COMPRESSION)
            flags = (wire.FLAGS_COMPRESSED if compressed else 0) | (wire.FLAGS_BATCH if batch else 0)
            return self._encode(wire.MSG_RESULT, payload, serializer.serializer_id, flags,
                                msg.seq, self._annotations(ctx))
        except Exception:
            return self.exception_reply(msg, sys.exc_info()[1], self._traceback(), ctx)

    def _failure_reply(self, failure: Failure, msg: wire.Message, ctx: CallContext) -> wire.Frame:
        if not failure.check(Exception):  # KeyboardInterrupt, SystemExit: not the client's
            return failure  # type: ignore[return-value]
        return self.exception_reply(msg, failure.value, failure_traceback(failure), ctx)

    def exception_reply(self, msg: wire.Message, exc: Any, tblines: list[str] | None,
                        ctx: CallContext | None, flags: int = 0,
                        annotations: dict[str, bytes] | None = None) -> wire.Frame:
        """An exception RESULT, as Pyro4's ``_sendExceptionResponse`` builds it, plus the
        call's correlation id (``CORR``), which Pyro4 leaves out there: a client that tags its
        calls can match failures too."""
        if not isinstance(exc, (StopIteration, GeneratorExit)) and not flags:
            log.debug("exception while handling request: {error!r}", error=exc)
        serializer = _serializer_or_marshal(msg.serializer_id)
        exc._pyroTraceback = tblines
        try:
            data, compressed = serializer.serializeData(exc)
        except Exception as problem:
            substitute = errors.PyroError(
                "Error serializing exception: %s. Original exception: %s: %s"
                % (problem, type(exc), exc))
            substitute._pyroTraceback = tblines  # type: ignore[attr-defined]
            data, compressed = serializer.serializeData(substitute)
        flags |= wire.FLAGS_EXCEPTION | (wire.FLAGS_COMPRESSED if compressed else 0)
        all_annotations = dict(annotations or {})
        all_annotations.update(self._annotations(ctx) if ctx else self.daemon.annotations())
        return self._encode(wire.MSG_RESULT, data, serializer.serializer_id, flags, msg.seq,
                            all_annotations)
