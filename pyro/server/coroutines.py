"""How a servant's coroutine runs: ``ensureDeferred`` on most reactors, an asyncio task under
Twisted's asyncio reactor.

``ensureDeferred`` can only wait for Deferreds: a servant that awaits an asyncio future
(``asyncio.sleep``, an asyncio library) fails with ``await wasn't used with future``. An
asyncio task can only wait for asyncio futures: a servant written for Twisted (awaiting
``task.deferLater``) fails there with ``Task got bad yield``. Under the asyncio reactor a
servant may do both, so its coroutine runs as an asyncio task through a bridge that turns each
Deferred it awaits into a future for the task and passes everything else through. Either way
the call's :class:`~pyro.server.context.CallContext` is installed before every step (so
``Pyro4.current_context`` is the call's own after each ``await``), and cancelling the returned
Deferred (client gone, server closing) cancels the coroutine: the task is cancelled, and what
it awaited with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

from Pyro4.core import current_context
from twisted.internet import defer
from twisted.python.failure import Failure

from .._reactor import asyncio_loop
from .context import CallContext

__all__ = ["run_coroutine"]


def run_coroutine(coroutine: Coroutine[Any, Any, Any], ctx: CallContext | None,
                  reactor: Any) -> defer.Deferred[Any]:
    """Run ``coroutine`` (a servant's, with ``ctx`` installed at each step); its Deferred.

    Without ``ctx`` (the next item of an async generator, its ``aclose()``), an asyncio task
    takes the caller's ``current_context`` with it: unlike ``ensureDeferred``, which runs
    the first step at once, inside the caller's call, a task starts on the loop's next turn.
    (Its ``response_annotations`` stay the caller's dict, so the reply carries what it adds.)
    """
    loop = asyncio_loop(reactor)
    if loop is None:
        return defer.ensureDeferred(coroutine if ctx is None else ctx.drive(coroutine))
    if ctx is None:
        ctx = CallContext(current_context.to_global())
    return _task_deferred(loop.create_task(_in_task(ctx.drive(coroutine))))


async def _in_task(steps: Any) -> Any:
    return await _Bridge(steps)


class _Bridge:
    """Awaited by the task: steps ``steps`` (a coroutine, or a generator of its steps), and
    turns each Deferred it yields (``await deferred`` yields the Deferred) into a future."""

    __slots__ = ("_steps",)

    def __init__(self, steps: Any):
        self._steps = steps

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self._steps
        send: Any = None
        error: BaseException | None = None
        while True:
            try:
                yielded = steps.send(send) if error is None else steps.throw(error)
            except StopIteration as stop:
                return stop.value
            send = error = None
            try:
                if isinstance(yielded, defer.Deferred):
                    try:
                        yield from _fired(yielded)
                    except BaseException:
                        _abandon(yielded)  # the task was cancelled while it waited
                        raise
                else:  # an asyncio future (or None: "let others run"), as the task wants it
                    send = yield yielded
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # delivered into the coroutine on its next step
                error = exc


def _fired(d: defer.Deferred[Any]) -> asyncio.Future[None]:
    """A future done when ``d`` fires; ``d``'s result stays in ``d``, where the coroutine's
    ``await`` (``Deferred.__await__``) reads it on its next step."""
    future = asyncio.get_running_loop().create_future()

    def fired(result: Any) -> Any:
        if not future.done():
            future.set_result(None)
        return result

    d.addBoth(fired)
    return future


def _abandon(d: defer.Deferred[Any]) -> None:
    """The coroutine stops waiting for ``d`` (its task was cancelled): ``d`` is cancelled
    too, and whatever it fails with is nobody's unhandled error: nobody will read it."""
    d.addErrback(_ignore)
    d.cancel()


def _ignore(_: Failure) -> None:
    return None


def _task_deferred(task: asyncio.Task[Any]) -> defer.Deferred[Any]:
    """A Deferred of ``task``'s outcome; cancelling it cancels the task (and fails at once
    with ``CancelledError``, as a cancelled Deferred does)."""
    def cancel(_: defer.Deferred[Any]) -> None:
        task.cancel()

    d: defer.Deferred[Any] = defer.Deferred(cancel)

    def done(task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            if not d.called:
                d.errback(Failure(defer.CancelledError()))
            return
        error = task.exception()  # retrieved even after a cancel: asyncio would log it
        if d.called:
            return
        if error is not None:
            d.errback(Failure(error, type(error), error.__traceback__))
        else:
            d.callback(task.result())

    task.add_done_callback(done)
    return d
