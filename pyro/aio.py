"""Pyro for asyncio programs: a proxy and a server whose every result is an asyncio awaitable.

A plain ``asyncio.run(main())`` program, which never mentions Twisted, can call Pyro4 objects
and serve them::

    import asyncio
    import pyro.aio

    async def main():
        async with pyro.aio.Proxy("PYRONAME:example.thing") as thing:
            print(await thing.add(1, 2))
            async for item in await thing.numbers(10):
                print(item)

    asyncio.run(main())

This module is a face over :class:`pyro.client.DeferredProxy` (the native client) and
:class:`pyro.protocol.Pyro4ProtocolFactory` (the server): each Deferred they give is handed
over as a :class:`Call` on the running loop: an asyncio future (the call is sent at once;
``await`` it, ``asyncio.gather`` or ``asyncio.wait_for`` it, cancel it) that is also a coroutine
to asyncio, so ``asyncio.create_task(proxy.add(1, 2))`` and ``TaskGroup.create_task`` take it.
Cancelling it, or the task that drives it, cancels the call. Results that are Deferred
objects themselves become asyncio ones: item streams (:class:`ItemStream`, for ``async for``)
and proxies for autoproxied objects (:class:`Proxy`).

The reactor: Twisted's asyncio reactor, on the running loop. The first use (a call, a
``connect()``, a ``listen()``...) installs it if no reactor is installed yet, or adopts it if
the program installed it on this loop; a program whose global reactor is another kind (or an
asyncio reactor on another loop) gets :class:`ReactorMismatch` saying what to do. The
reactor lives as long as the loop does: when ``asyncio.run`` cancels the tasks that are left,
the reactor is shut down once they are done (its thread pool stopped, what is still connected
closed; see :func:`pyro._reactor.shutdown_adopted`), so the program ends with nothing
pending. Close proxies and servers yourself (``async with``) as with any asyncio resource.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import Pyro4
from Pyro4.core import URI
from twisted.internet import defer
from twisted.python.failure import Failure

from . import _reactor
from .client import Batch as DeferredBatch
from .client import DeferredProxy, naming
from .client import ItemStream as DeferredItemStream
from .protocol import Pyro4ProtocolFactory

__all__ = ["Batch", "Call", "ItemStream", "Proxy", "ReactorMismatch", "Server", "locate_ns",
           "resolve", "shutdown"]

ReactorMismatch = _reactor.ReactorMismatch

_UNSET: Any = object()  # "not given": the proxy's setting applies

_T = TypeVar("_T")

#: The loop the global reactor was last found to run on: later calls on it skip the checks.
_ready_loop: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    """The running loop, with the global reactor on it (installed or adopted on first use)."""
    global _ready_loop
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop is not _ready_loop:
        _reactor.adopt_running_loop()  # raises, saying why, when it cannot
        _ready_loop = loop
    assert loop is not None
    return loop


class Call(asyncio.Future[_T], Coroutine[Any, Any, _T]):
    """A call under way: an asyncio future that asyncio also takes for a coroutine.

    What every call, ``connect()``, ``close()``, ``batch().send()``... of this module returns.
    As a future it is sent at once (``asyncio.gather`` calls to run them concurrently), and
    may be awaited, passed to ``asyncio.wait_for``, given done callbacks, or cancelled (which
    cancels the call). As a coroutine (``asyncio.iscoroutine`` is true: ``send``,
    ``throw`` and ``close`` drive the future's own ``__await__``), ``asyncio.create_task`` and
    ``TaskGroup.create_task`` take it as they take any coroutine; the task waits on the call itself, so cancelling the task cancels the call
    (even before the task first ran), as does ``close()`` (a ``TaskGroup`` that is shutting
    down closes what it refuses).

    It is not a native coroutine: a call nobody awaits is not "never awaited" (a call whose
    result does not matter need not be awaited). ``asyncio.wait`` refuses it as it refuses
    every coroutine (Python 3.11 on): hand it tasks, ``asyncio.create_task(proxy.add(1,
    2))``.
    """

    __slots__ = ()

    def send(self, value: None) -> Any:
        # A fresh iterator each time: a future's holds nothing but the future (it yields the
        # future while it is pending, then stops with its result).
        return self.__await__().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """What a task does when it is cancelled: the call is cancelled (if still under way),
        and the exception raised."""
        self._abandon()
        awaiting = self.__await__()
        if val is None and tb is None:  # (the three-argument form is deprecated in 3.12)
            return awaiting.throw(typ)
        return awaiting.throw(typ, val, tb)

    def close(self) -> None:
        """The coroutine is dropped unrun: the call is cancelled (if still under way)."""
        self._abandon()

    def _abandon(self) -> None:
        if not self.cancel() and not self.cancelled():
            self.exception()  # done: nobody waits for its outcome any more (not "never
            #                   retrieved" when it failed)


def _future(start: Callable[..., defer.Deferred[Any]], /, *args: Any,
            **kwargs: Any) -> Call[Any]:
    """``start(*args, **kwargs)``'s Deferred as a :class:`Call` on the running loop
    (cancelling it cancels the Deferred), with the Deferred-world results made asyncio ones. The reactor is
    found (or installed) first: ``start`` may be the first to ask for it.

    (``Deferred.asFuture``, except for one case: a call still under way when ``asyncio.run``
    ends (a future, which ``asyncio.run`` does not cancel as it cancels tasks) fails when
    the reactor's shutdown closes its connection; nobody awaits it any more, and asyncio
    would print the error at exit as never retrieved. It is cancelled instead, as the
    tasks were.)"""
    loop = _loop()
    d = start(*args, **kwargs).addCallback(_for_asyncio)
    future: Call[Any] = Call(loop=loop)

    def fired(result: Any) -> None:
        if future.cancelled():
            return
        if not isinstance(result, Failure):
            future.set_result(result)
        elif _reactor.ending():
            future.cancel()
        else:
            future.set_exception(result.value)

    def done(_: Call[Any]) -> None:
        if future.cancelled():
            d.cancel()

    d.addBoth(fired)
    future.add_done_callback(done)
    return future


def _timeout(timeout: Any) -> dict[str, Any]:
    """The ``timeout=`` to pass on: none when not given (the proxy's own applies)."""
    return {} if timeout is _UNSET else {"timeout": timeout}


def _for_asyncio(result: Any) -> Any:
    if isinstance(result, DeferredItemStream):
        return ItemStream(result)
    if isinstance(result, DeferredProxy):  # e.g. from a name server's proxy (locate_ns)
        return Proxy._around(result)
    return result


async def shutdown() -> None:
    """Shut the reactor down now rather than when ``asyncio.run`` ends (a program that runs
    its loop by other means, ``loop.run_until_complete(main())``, calls this last). pyro.aio
    cannot be used after it: the reactor does not start twice."""
    global _ready_loop
    _ready_loop = None  # the next use finds out, and says so
    await _reactor.shutdown_adopted()


# -- the client -----------------------------------------------------------------------------


class _NativeProxy(DeferredProxy):
    """The native proxy under :class:`Proxy`: autoproxies in its results become
    :class:`Proxy` objects (over proxies of this class, closed with this one)."""

    def _proxy_for(self, found: Pyro4.Proxy) -> Any:
        return Proxy._around(super()._proxy_for(found))


class Proxy:
    """A Pyro4 proxy for asyncio: ``await proxy.method(*args, **kwargs)``.

    It takes the options of :class:`pyro.client.DeferredProxy` (``timeout``, ``hmac_key``,
    ``serializer``, ``max_connections``, ``patient``...) and behaves as it does, except that
    every call, :meth:`getattr`, :meth:`setattr`, ``batch().send()``, :meth:`connect` and
    :meth:`close` returns a :class:`Call`: an asyncio future, sent at once (``asyncio.gather``
    calls to run them concurrently), that ``asyncio.create_task`` and ``TaskGroup`` take as
    a coroutine. Cancelling it (or its task) cancels the call; a call that times out fails
    with ``Pyro4.errors.TimeoutError``. A call whose servant returned an
    iterator gives an :class:`ItemStream` (``async for item in await proxy.numbers()``).

    The proxy's public names (``call``, ``invoke``, ``getattr``, ``setattr``, ``batch``,
    ``connect``, ``close``, ``uri``, ``timeout``) shadow remote methods of those names: reach
    them with ``proxy.call("close")``.
    """

    __slots__ = ("_proxy",)

    _proxy: DeferredProxy

    def __init__(self, uri: str | URI, **options: Any):
        self._proxy = _NativeProxy(uri, **options)

    @classmethod
    def _around(cls, native: DeferredProxy) -> Proxy:
        proxy = cls.__new__(cls)
        proxy._proxy = native
        return proxy

    @property
    def uri(self) -> URI:
        return self._proxy.uri

    @property
    def timeout(self) -> float | None:
        """Seconds per call (``None``: no timeout); may be changed."""
        return self._proxy.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._proxy.timeout = value

    def __getattr__(self, name: str) -> _RemoteMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        return _RemoteMethod(self._proxy, name)

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Call[Any]:
        """``proxy.call("name", ...)`` is ``proxy.name(...)``, for names the proxy shadows."""
        return _future(self._proxy.call, method, *args, **kwargs)

    def invoke(self, method: str, vargs: Iterable[Any] = (), kwargs: dict[str, Any] | None = None,
               *, timeout: float | None = _UNSET, oneway: bool = False) -> Call[Any]:
        """Call ``method`` with a per-call ``timeout`` (or force ``oneway``)."""
        return _future(self._proxy.invoke, method, vargs, kwargs, oneway=oneway,
                       **_timeout(timeout))

    def getattr(self, name: str) -> Call[Any]:
        """Read an exposed remote attribute (a ``@property`` on the servant)."""
        return _future(self._proxy.getattr, name)

    def setattr(self, name: str, value: Any) -> Call[None]:
        """Write an exposed remote attribute."""
        return _future(self._proxy.setattr, name, value)

    def batch(self) -> Batch:
        """Collect calls and send them as one Pyro4 batch message: see :class:`Batch`."""
        return Batch(self._proxy.batch())

    def connect(self) -> Call[None]:
        """Done when a connection is up (fails as a call would): to wait for a server."""
        return _future(self._proxy.connect)

    def close(self) -> Call[None]:
        """Close the connections (calls still waiting fail); done when they are gone."""
        return _future(self._proxy.close)

    async def __aenter__(self) -> Proxy:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "<pyro.aio.Proxy over %r>" % (self._proxy,)


class _RemoteMethod:
    """``proxy.name``: calling it calls the remote method."""

    __slots__ = ("_proxy", "_name")

    def __init__(self, proxy: DeferredProxy, name: str):
        self._proxy, self._name = proxy, name

    def __call__(self, *args: Any, **kwargs: Any) -> Call[Any]:
        return _future(self._proxy.call, self._name, *args, **kwargs)

    def __repr__(self) -> str:
        return "<remote method %s of %s>" % (self._name, self._proxy.uri)


class Batch:
    """Calls collected on a proxy and sent as one message (Pyro4's ``batch``)::

        batch = proxy.batch()
        batch.add(1, 2)
        batch.fail("oops")
        results = await batch.send()

    As :class:`pyro.client.Batch`: the server stops at the first exception, which the
    future then fails with (the results before it in its ``_pyroBatchResults``).
    """

    __slots__ = ("_batch",)

    def __init__(self, batch: DeferredBatch):
        self._batch = batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)  # records the call (``_`` names are refused)

    def __len__(self) -> int:
        return len(self._batch)

    def send(self, oneway: bool = False,
             timeout: float | None = _UNSET) -> Call[list[Any] | None]:
        """Send the collected calls (and start a new, empty batch)."""
        return _future(self._batch.send, oneway, **_timeout(timeout))

    def __call__(self, oneway: bool = False, asynchronous: bool = False) -> Call[Any]:
        """Pyro4's spelling of :meth:`send` (every batch here is asynchronous)."""
        return _future(self._batch, oneway, asynchronous)

    def __repr__(self) -> str:
        return "<pyro.aio.Batch of %d calls for %s>" % (len(self), self._batch._target.uri)


class ItemStream:
    """An item stream (the servant returned an iterator or generator), for ``async for``.

    Items are fetched one call at a time. A stream left early (``break``) is closed on the
    server when it is collected, as Pyro4's stream iterator is; ``await stream.close()`` (or
    ``async with stream:``) closes it at once.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: DeferredItemStream):
        self._stream = stream

    @property
    def stream_id(self) -> str:
        return self._stream.stream_id

    def __aiter__(self) -> ItemStream:
        return self

    def __anext__(self) -> Call[Any]:
        return _future(self._stream.next)

    def next(self) -> Call[Any]:
        """The next item; fails with ``StopAsyncIteration`` at the end."""
        return _future(self._stream.next)

    def close(self) -> Call[None]:
        """Ask the server to drop the stream."""
        return _future(self._stream.close)

    aclose = close

    async def __aenter__(self) -> ItemStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "<pyro.aio.ItemStream %s>" % (self.stream_id,)


def locate_ns(host: str | None = None, port: int | None = None,
              **options: Any) -> Call[Proxy]:
    """A connected :class:`Proxy` for the name server, found where Pyro4's ``locateNS``
    looks (see :func:`pyro.client.locate_ns` for the options); close it when done."""
    return _future(naming.locate_ns, host, port, **options)


def resolve(uri: str | URI, **options: Any) -> Call[URI]:
    """A ``PYRONAME:``/``PYROMETA:`` URI resolved to a ``PYRO:`` URI through the name server
    (see :func:`pyro.client.resolve` for the options)."""
    return _future(naming.resolve, uri, **options)


# -- the server -----------------------------------------------------------------------------


class Server:
    """A Pyro4 daemon for asyncio programs: ``register()`` objects, ``await listen()``.

    ``Server(**factory_options)`` makes a :class:`pyro.protocol.Pyro4ProtocolFactory` with
    those options (``threads=``, ``hmac_key=``, ``idle_timeout=``...), kept as
    :attr:`factory` for everything else of the ``Pyro4.Daemon`` API. Under the asyncio
    reactor, ``async def`` servant methods (and async generators) run as asyncio tasks: they
    may await asyncio futures and Deferreds alike, and see their own
    ``Pyro4.current_context`` after every ``await``.
    """

    def __init__(self, **factory_options: Any):
        self.factory = Pyro4ProtocolFactory(**factory_options)

    async def listen(self, endpoint: str) -> Any:
        """Listen on an endpoint description (``"tcp:9090:interface=127.0.0.1"``, ``"tcp:0"``,
        ``"unix:/run/pyro.sock"``); the address it listens on (``.host``, ``.port``). The first
        port names the URIs of :meth:`register`, unless the factory's address was set."""
        port = await _future(self.factory.listen, endpoint)
        return port.getHost()

    def register(self, obj: Any, name: str | None = None, force: bool = False) -> URI:
        """Register an object or class (Pyro4's ``Daemon.register``); its ``PYRO:`` URI."""
        return self.factory.register(obj, name, force=force)

    def unregister(self, obj_or_name: Any) -> None:
        self.factory.unregister(obj_or_name)

    def uri_for(self, obj_or_name: Any) -> URI:
        return self.factory.uriFor(obj_or_name)

    async def drain(self, timeout: float | None = None) -> None:
        """Stop listening, let the calls under way finish (for ``timeout`` seconds at most),
        then close (see :meth:`pyro.protocol.Pyro4ProtocolFactory.drain`)."""
        await _future(self.factory.drain, timeout)

    async def close(self) -> None:
        """Stop listening and drop every connection; done when they are gone."""
        await _future(self.factory.close)

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "<pyro.aio.Server %r>" % (self.factory,)
