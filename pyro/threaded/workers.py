"""The worker threads behind :class:`pyro.proxy.PyroDeferredService`.

A service's blocking ``Pyro4.Proxy`` calls run here: plain daemon threads take :class:`Call`
objects from one ``queue.SimpleQueue``, each thread with its own copy of the proxy (a Pyro4
proxy is one connection, used by one thread at a time), and hand finished calls back to the
reactor thread in batches, one ``callFromThread`` per batch. Item streams pin the proxy copy
they were opened on (:class:`StreamLink`). Everything the reactor thread and the workers
share is here, with the rule for each field: which thread writes it, which lock guards it.
"""

from __future__ import annotations

import queue
import socket
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import Pyro4
import Pyro4.core
import Pyro4.errors
import Pyro4.futures
import Pyro4.message
import Pyro4.naming
from Pyro4 import constants
from twisted.internet import defer
from twisted.logger import Logger

from .generations import claim

__all__ = ["Call", "Pool", "ReactorForService", "StreamLink", "Workers", "release", "sendCloseStream"]

_log = Logger(namespace="pyro.proxy")


class ReactorForService(Protocol):
    """What ``PyroDeferredService`` needs from a reactor (``IReactorFromThreads`` and the
    system event triggers of ``IReactorCore``)."""

    def callFromThread(self, callable: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        ...

    def addSystemEventTrigger(self, phase: str, eventType: str, callable: Callable[..., Any],
                              *args: Any, **kwargs: Any) -> Any:
        ...

    def removeSystemEventTrigger(self, triggerID: Any) -> None:
        ...


class Call:
    """One call on its way through a worker thread and back (reactor thread -> worker ->
    reactor thread). ``outcome`` is the result, or the exception when ``failed``."""

    __slots__ = ("operation", "args", "description", "annotations", "correlationId",
                 "generation", "deferred", "failed", "outcome", "responseAnnotations",
                 "link", "onDone")

    def __init__(self, operation: Callable[..., Any], args: tuple[Any, ...], description: str,
                 annotations: dict[str, bytes], correlationId: uuid.UUID | None,
                 generation: int) -> None:
        self.operation = operation
        self.args = args
        self.description = description
        # Pyro4 sends the *calling thread's* annotations and correlation id with a call; the
        # call happens in a worker thread, so they are captured in the caller's thread and
        # travel along.
        self.annotations = annotations
        self.correlationId = correlationId
        self.generation = generation  # the service's _pyro* settings generation at submit
        # No canceller: Deferred.cancel() fails it with CancelledError at once, and a worker
        # that has not started the call yet sees it ``called`` and skips it. (A canceller
        # holding the call would make every call a reference cycle, left to the GC.)
        self.deferred: defer.Deferred[Any] = defer.Deferred()
        self.failed = False
        self.outcome: Any = None
        self.responseAnnotations: dict[str, bytes] = {}
        # An item stream's operation runs on the stream's pinned proxy copy, not on the
        # worker's own; ``onDone`` (reactor thread) hears of every hand-back, even of a call
        # that was cancelled, skipped or failed by close().
        self.link: StreamLink | None = None
        self.onDone: Callable[[Call], None] | None = None


class StreamLink:
    """An open item stream's tie to its connection: the proxy copy that made the call which
    returned the stream, taken away from its worker ("pinned") until the stream is over.

    Pyro4's daemon drops (or lets linger) a client's streams when its connection closes, so
    the stream's items must be fetched over that very connection. Fields other than the
    constants are guarded by the workers' lock.
    """

    __slots__ = ("streamId", "proxy", "generation", "busy", "released")

    def __init__(self, streamId: str, proxy: Pyro4.Proxy, generation: int) -> None:
        self.streamId = streamId
        self.proxy = proxy
        # the settings generation the proxy reflects; written only by the worker that has
        # claimed the stream (``busy``), read under the lock when the stream ends
        self.generation = generation
        self.busy = False  # a worker is using the proxy right now
        self.released = False  # the stream is over: the proxy is no longer the stream's


class Pool:
    """Plain daemon threads (a process that exits without stopping the reactor must not hang
    on them; the reactor's shutdown trigger still stops them cleanly) taking calls from one
    ``queue.SimpleQueue``. Started lazily, in the reactor thread, up to ``maxWorkers``."""

    def __init__(self, name: str, maxWorkers: int) -> None:
        self.name = name
        self.maxWorkers = maxWorkers
        self.jobs: queue.SimpleQueue[Call | None] = queue.SimpleQueue()  # None: exit
        self.threads: list[threading.Thread] = []

    def grow(self, target: Callable[[], None]) -> None:
        """Reactor thread: start one more worker thread running ``target``."""
        thread = threading.Thread(target=target, daemon=True,
                                  name=f"PoolThread-{self.name}-{len(self.threads) + 1}")
        thread.start()
        self.threads.append(thread)

    def stop(self) -> None:
        """Blocking: let every thread finish the calls queued before, then exit; join them.
        Only after the pool was detached from its service, so no thread is added meanwhile."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()


class Workers:
    """One generation of worker threads: the pool, the proxy copies its threads own, and the
    calls on their way back to the reactor thread.

    ``close()`` detaches the current generation and stops it in the background; a later call
    starts a fresh one, like a Pyro4 proxy that reconnects after ``_pyroRelease()``.
    """

    def __init__(self, name: str, maxWorkers: int, reactor: ReactorForService) -> None:
        self.reactor = reactor
        self.pool = Pool(name, maxWorkers)
        self.lock = threading.Lock()
        self.copies: list[Pyro4.Proxy] = []  # a list: proxies compare equal by URI
        self.pending: set[Call] = set()  # reactor thread only
        self.inFlight = 0  # reactor thread only: submitted, not delivered yet
        self.closed = False  # written in the reactor thread (under ``lock``), read by workers
        # Finished calls; the reactor thread drains them in batches: one callFromThread (one
        # wake-up of the reactor) per batch, scheduled only when no drain is due yet.
        self.done: deque[Call] = deque()
        self.draining = False  # guarded by ``lock`` (with ``done``)
        # Item streams. ``links`` (guarded by ``lock``): the copies pinned by open streams
        # (they stay in ``copies`` too). ``spares`` (guarded by ``lock``): copies of streams
        # that ended, with their settings generation, for workers that need a new copy.
        # ``streams`` (reactor thread only): the open ItemStreams, weakly.
        self.links: set[StreamLink] = set()
        self.spares: list[tuple[Pyro4.Proxy, int]] = []
        self.streams: weakref.WeakSet[Any] = weakref.WeakSet()  # service.ItemStream

    def finished(self, call: Call, drain: Callable[[], None]) -> None:
        """Worker thread: hand ``call`` to the reactor thread."""
        with self.lock:
            self.done.append(call)
            if self.draining:
                return  # the drain already scheduled will find it
            self.draining = True
        self.reactor.callFromThread(drain)

    def takeDone(self) -> list[Call]:
        """Reactor thread: the finished calls; clears ``draining`` when there are none, so the
        next finished call schedules a new drain."""
        with self.lock:
            if not self.done:
                self.draining = False
                return []
            calls = list(self.done)
            self.done.clear()
            return calls

    # -- item streams (worker threads) -------------------------------------------------------

    def pin(self, streamId: str, proxy: Pyro4.Proxy, generation: int) -> StreamLink:
        """Worker thread: ``proxy`` now belongs to the stream ``streamId``."""
        link = StreamLink(streamId, proxy, generation)
        with self.lock:
            self.links.add(link)
        return link

    def claim(self, link: StreamLink) -> bool:
        """Worker thread: about to use the stream's proxy; False if the service was closed or
        the stream is over (its proxy may serve someone else by now)."""
        with self.lock:
            if self.closed or link.released:
                return False
            link.busy = True
            return True

    def unclaim(self, link: StreamLink) -> None:
        with self.lock:
            link.busy = False

    def unpin(self, link: StreamLink) -> None:
        """Worker thread: the stream is over; its proxy becomes a spare (connection kept) or,
        when there are enough spares or the service is closing, is released."""
        with self.lock:
            if link.released:
                return
            link.released = True
            self.links.discard(link)
            keep = not self.closed and len(self.spares) < self.pool.maxWorkers
            if keep:
                self.spares.append((link.proxy, link.generation))
            else:
                self.copies = [p for p in self.copies if p is not link.proxy]
        if not keep:
            release(link.proxy)

    def takeSpare(self, generation: int) -> tuple[Pyro4.Proxy, int] | None:
        """Worker thread: a spare copy at least as fresh as ``generation`` (stale ones are
        released), or None."""
        stale: list[Pyro4.Proxy] = []
        found = None
        with self.lock:
            while self.spares:
                proxy, made = self.spares.pop()
                if made >= generation:
                    found = (proxy, made)
                    break
                stale.append(proxy)
            if stale:
                self.copies = [p for p in self.copies if not any(p is s for s in stale)]
        for proxy in stale:
            release(proxy)
        return found

    # -- stopping ----------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Wake up workers blocked on the network, so that stopping never waits for a slow or
        silent server. ``shutdown()`` (unlike ``close()``) makes a ``recv`` blocked in another
        thread return; we must not take the proxy's lock, which the blocked worker holds.
        Idle stream connections are spared: ``stop()`` still sends their ``close_stream``."""
        with self.lock:
            # ``closed`` is set (under this lock): no worker claims an idle stream from now on
            idle = [link.proxy for link in self.links if not link.busy]
            copies = [p for p in self.copies if not any(p is i for i in idle)]
        for proxy in copies:
            connection = proxy._pyroConnection
            if connection is not None:
                try:
                    connection.sock.shutdown(socket.SHUT_RDWR)
                except (OSError, AttributeError):
                    pass

    def stop(self) -> None:
        """Blocking: join the worker threads, close the streams still open (on their idle
        connections), then release every proxy copy."""
        self.pool.stop()
        with self.lock:
            links, self.links = list(self.links), set()
            copies, self.copies = self.copies, []
            self.spares = []
        for link in links:
            link.released = True
            if link.proxy._pyroConnection is not None:  # not broken by interrupt()
                try:
                    sendCloseStream(link.proxy, link.streamId)
                except Exception as error:
                    _log.debug("closing item stream {stream}: {error}", stream=link.streamId,
                               error=error)
        for proxy in copies:
            release(proxy)


def release(proxy: Any) -> None:
    try:
        claim(proxy)  # a Pyro5 proxy: this thread takes it over (see generations.claim)
        proxy._pyroRelease()
    except Exception:
        _log.failure("releasing {proxy!r}", proxy=proxy)


def sendCloseStream(proxy: Any, streamId: str) -> None:
    """Worker (or stopper) thread: Pyro's ``close_stream``, oneway, as its iterator sends it
    (FLAGS_ONEWAY is 4 in both generations)."""
    claim(proxy)
    proxy._pyroInvoke("close_stream", [streamId], {}, flags=Pyro4.message.FLAGS_ONEWAY,
                      objectId=constants.DAEMON_NAME)
