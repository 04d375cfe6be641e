"""The bridge that runs servant coroutines as asyncio tasks (:mod:`pyro.server.coroutines`).

On a private asyncio loop standing for the asyncio reactor's (``run_coroutine`` only asks a
reactor for its loop), so these run in any test session, whatever its reactor.
"""

from __future__ import annotations

import asyncio
import sys
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from Pyro4.core import current_context
from twisted.internet import defer
from twisted.python.failure import Failure

from pyro.server.context import CallContext
from pyro.server.coroutines import run_coroutine
from pyro.server.tracebacks import failure_traceback


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def on(loop: asyncio.AbstractEventLoop) -> Any:
    """A stand-in for Twisted's asyncio reactor on ``loop``."""
    return types.SimpleNamespace(_asyncioEventloop=loop)


def fired_later(loop: asyncio.AbstractEventLoop, value: Any, delay: float = 0) -> defer.Deferred:
    """A Deferred that fires on the loop's clock, as the reactor's timers do."""
    d: defer.Deferred[Any] = defer.Deferred()
    loop.call_later(delay, lambda: d.called or d.callback(value))
    return d


def outcome(loop: asyncio.AbstractEventLoop, d: defer.Deferred[Any]) -> Any:
    """Run the loop until ``d`` fires: its result, or its Failure."""
    results: list[Any] = []
    d.addBoth(results.append)
    while not results:
        loop.run_until_complete(asyncio.sleep(0.001))
    return results[0]


def context(correlation: uuid.UUID) -> CallContext:
    return CallContext({"correlation_id": correlation, "response_annotations": {},
                        "annotations": {}, "client": None, "client_sock_addr": None,
                        "seq": 0, "msg_flags": 0, "serializer_id": 1})


def test_awaits_asyncio_futures_tasks_and_deferreds(loop: asyncio.AbstractEventLoop) -> None:
    async def servant() -> list[Any]:
        await asyncio.sleep(0)
        first = await fired_later(loop, "deferred")
        second = await asyncio.ensure_future(asyncio.sleep(0, "task"))
        third = await defer.succeed("fired already")
        return [first, second, third, asyncio.current_task() is not None]

    assert outcome(loop, run_coroutine(servant(), None, on(loop))) == [
        "deferred", "task", "fired already", True]


def test_a_failed_deferred_raises_in_the_servant(loop: asyncio.AbstractEventLoop) -> None:
    async def servant() -> str:
        try:
            await fired_later(loop, None).addCallback(lambda _: 1 / 0)
        except ZeroDivisionError:
            return "caught"
        return "not raised"

    assert outcome(loop, run_coroutine(servant(), None, on(loop))) == "caught"


def test_each_call_sees_its_own_context_after_every_await(
        loop: asyncio.AbstractEventLoop) -> None:
    def servant(delay: float) -> Any:
        async def run() -> list[str]:
            seen = [str(current_context.correlation_id)]
            await asyncio.sleep(delay)
            seen.append(str(current_context.correlation_id))
            await fired_later(loop, None, delay)
            seen.append(str(current_context.correlation_id))
            current_context.response_annotations["XSEE"] = b"after"
            return seen
        return run()

    before = current_context.correlation_id
    ids = [uuid.uuid4() for _ in range(3)]
    contexts = [context(correlation) for correlation in ids]
    calls = [run_coroutine(servant(0.01 * (3 - n)), ctx, on(loop))
             for n, ctx in enumerate(contexts)]
    results = [outcome(loop, d) for d in calls]
    assert results == [[str(correlation)] * 3 for correlation in ids]
    assert all(ctx.values["response_annotations"] == {"XSEE": b"after"} for ctx in contexts)
    assert current_context.correlation_id == before  # the thread's own, given back


def test_without_a_context_the_task_takes_the_callers(loop: asyncio.AbstractEventLoop) -> None:
    async def servant() -> str:
        await asyncio.sleep(0)
        current_context.response_annotations["XGEN"] = b"set"
        return str(current_context.correlation_id)

    caller = context(uuid.uuid4())
    caller.install()
    try:
        d = run_coroutine(servant(), None, on(loop))
    finally:
        caller.capture()
    assert outcome(loop, d) == str(caller.values["correlation_id"])
    assert caller.values["response_annotations"] == {"XGEN": b"set"}


@pytest.mark.parametrize("awaiting", ["asyncio", "deferred"])
def test_cancelling_the_deferred_cancels_the_task(loop: asyncio.AbstractEventLoop,
                                                  awaiting: str) -> None:
    seen: list[Any] = []
    cancelled_deferreds: list[Any] = []
    waited: defer.Deferred[Any] = defer.Deferred(cancelled_deferreds.append)

    async def servant() -> None:
        try:
            if awaiting == "asyncio":
                await asyncio.sleep(60)
            else:
                await waited
        except BaseException as exc:
            seen.append(type(exc))
            raise

    d = run_coroutine(servant(), None, on(loop))
    loop.run_until_complete(asyncio.sleep(0.01))  # the task is waiting
    d.cancel()
    failure = outcome(loop, d)
    loop.run_until_complete(asyncio.sleep(0.01))  # the task sees its cancellation
    assert isinstance(failure, Failure) and failure.check(defer.CancelledError)
    assert seen == [asyncio.CancelledError]  # asyncio's: asyncio.timeout() and TaskGroup work
    assert cancelled_deferreds == ([] if awaiting == "asyncio" else [waited])


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is new in Python 3.11")
def test_asyncio_timeout_around_a_deferred(loop: asyncio.AbstractEventLoop) -> None:
    cancelled: list[Any] = []

    async def servant() -> str:
        try:
            async with asyncio.timeout(0.01):  # type: ignore[attr-defined]
                await defer.Deferred(cancelled.append)
        except TimeoutError:
            return "timed out"
        return "not timed out"

    assert outcome(loop, run_coroutine(servant(), None, on(loop))) == "timed out"
    assert len(cancelled) == 1


def test_the_remote_traceback_starts_at_the_servant(loop: asyncio.AbstractEventLoop) -> None:
    async def servant() -> None:
        await asyncio.sleep(0)
        await fired_later(loop, None)
        raise ValueError("servant's own")

    failure = outcome(loop, run_coroutine(servant(), context(uuid.uuid4()), on(loop)))
    assert isinstance(failure, Failure) and failure.check(ValueError)
    lines = "".join(failure_traceback(failure))
    assert "in servant" in lines and 'raise ValueError("servant\'s own")' in lines
    for framework in ("server/coroutines.py", "server/context.py", "/asyncio/"):
        assert framework not in lines


def test_without_an_asyncio_loop_ensure_deferred_drives_it() -> None:
    async def servant() -> int:
        return await defer.succeed(5)

    d = run_coroutine(servant(), context(uuid.uuid4()), types.SimpleNamespace())
    assert d.called and d.result == 5
