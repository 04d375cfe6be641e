"""The ``Pyro.Daemon`` object, served by every factory, as Pyro4's ``DaemonObject``.

Pyro4 clients call it for metadata (``get_metadata``), liveness (``ping``) and item
streams (``get_next_stream_item`` / ``close_stream``). We subclass Pyro4's own class and
change only what a reactor needs:

* bookkeeping methods run in the reactor thread, which owns the registry and the stream table
  (and they never block), even when the factory runs servants in a thread pool;
* ``get_next_stream_item`` also serves *asynchronous* iterators (``async def`` generators):
  each item is awaited without blocking the reactor. A synchronous generator runs in the
  factory's thread pool when it has one, since producing an item may block.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import AsyncIterator
from typing import Any

from Pyro4 import errors, util
from Pyro4.core import DaemonObject, current_context, expose
from twisted.internet import threads

from ..wire.messages import PYRO4
from .context import CallContext, context_class
from .coroutines import run_coroutine
from .placement import in_reactor


@expose
class TwistedDaemonObject(DaemonObject):
    """Pyro4's ``DaemonObject``, reactor-aware (see the module docstring)."""

    @in_reactor
    def ping(self) -> None:
        return super().ping()

    @in_reactor
    def registered(self) -> list[str]:
        return super().registered()

    @in_reactor
    def info(self) -> str:
        return super().info()

    @in_reactor
    def get_metadata(self, objectId: str, as_lists: bool = False) -> dict[str, Any]:
        """The object's metadata, by the rules of the calling client's generation: for a
        Pyro5 client, of what it is served under that id (the daemon's ``pyro5_faces``
        first), only what is exposed (Pyro5 has no ``REQUIRE_EXPOSE``)."""
        codec = getattr(current_context.client, "codec", None)
        if codec is None or codec.version == PYRO4.version:
            return super().get_metadata(objectId, as_lists)
        obj = self.daemon.pyro5_faces.get(objectId) or self.daemon.objectsById.get(objectId)
        if obj is None:
            raise errors.DaemonError("unknown object")
        metadata = util.get_exposed_members(obj, only_exposed=True, as_lists=as_lists)
        if not metadata["methods"] and not metadata["attrs"]:
            kind = obj if inspect.isclass(obj) else type(obj)
            warnings.warn("Class %r doesn't expose any methods or attributes. Did you forget "
                          "setting @expose on them?" % kind, stacklevel=2)
        return metadata  # type: ignore[no-any-return]

    @in_reactor
    def close_stream(self, streamId: str) -> None:
        stream = self.daemon.streaming_responses.pop(streamId, (None,) * 4)[3]
        if isinstance(stream, AsyncIterator) and hasattr(stream, "aclose"):
            run_coroutine(stream.aclose(), self._caller_context(),
                          self.daemon.reactor).addErrback(lambda _: None)

    @in_reactor
    def get_next_stream_item(self, streamId: str) -> Any:
        """The next item (a Deferred for asynchronous streams or a threaded factory)."""
        streams = self.daemon.streaming_responses
        if streamId not in streams:
            raise errors.PyroError("item stream terminated")
        client, created, _, stream = streams[streamId]
        if client is None:  # its client reconnected after a disconnect: no longer lingering
            streams[streamId] = (current_context.client, created, 0, stream)
        if isinstance(stream, AsyncIterator):
            return run_coroutine(self._next_async(streamId, stream), self._caller_context(),
                                 self.daemon.reactor).addCallback(self._item_or_end)
        pool = self.daemon.threadpool
        if pool is None:
            return self._next(streamId, stream)
        context = self._caller_context()
        return threads.deferToThreadPool(self.daemon.reactor, pool, context.run,
                                         self._next, streamId, stream)

    @classmethod
    def _caller_context(cls) -> CallContext:
        """The calling client's facts, to install at every step of an item's production (in
        a pool thread, or across the awaits of an async generator, on any reactor)."""
        codec = getattr(current_context.client, "codec", PYRO4)
        return context_class(codec)(current_context.to_global())

    def _next(self, streamId: str, stream: Any) -> Any:
        try:
            return next(stream)
        except Exception:  # StopIteration included: the stream is over either way
            self.daemon.streaming_responses.pop(streamId, None)
            raise

    async def _next_async(self, streamId: str, stream: Any) -> tuple[bool, Any]:
        try:
            return False, await stream.__anext__()
        except StopAsyncIteration:
            self.daemon.streaming_responses.pop(streamId, None)
            return True, None
        except Exception:
            self.daemon.streaming_responses.pop(streamId, None)
            raise

    @staticmethod
    def _item_or_end(outcome: tuple[bool, Any]) -> Any:
        ended, item = outcome
        if ended:
            # what Pyro4 clients expect at the end (a coroutine may not raise it itself)
            raise StopIteration
        return item
