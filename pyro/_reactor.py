"""The one place that finds the global reactor, the one timeout hook, and the asyncio reactor.

Everything in twisted-pyro takes ``reactor=None`` and asks :func:`default_reactor` only when it
needs one: importing the package installs no reactor (a program may still choose the asyncio
reactor after ``import pyro``), and tests pass a ``Clock`` or ``MemoryReactor`` instead.

:func:`asyncio_loop` tells whether a reactor is Twisted's asyncio reactor (the server then runs
servant coroutines as asyncio tasks); :func:`adopt_running_loop` is how :mod:`pyro.aio` gets
a reactor inside a plain ``asyncio.run(main())`` program, which never calls ``reactor.run()``
(it cannot: the loop is running already, Twisted issue #9576).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TypeVar

from Pyro4 import errors
from twisted.internet import defer
from twisted.python.failure import Failure

__all__ = ["ReactorMismatch", "adopt_running_loop", "asyncio_loop", "default_reactor",
           "ending", "shutdown_adopted", "with_timeout"]

_T = TypeVar("_T")


def default_reactor(reactor: Any = None) -> Any:
    """``reactor`` if one was given, else the global reactor (imported now, not earlier)."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        return global_reactor
    return reactor


def _timeout_error(result: Any, timeout: float, error: type[Exception] = errors.TimeoutError
                   ) -> Any:
    """``Deferred.addTimeout`` hook: a timed-out call fails as Pyro's proxy would."""
    if isinstance(result, Failure) and result.check(defer.CancelledError):
        return Failure(error("call timed out after %s seconds" % timeout))
    return result


def with_timeout(d: defer.Deferred[_T], timeout: float | None, clock: Any,
                 error: type[Exception] = errors.TimeoutError) -> None:
    """Fail ``d`` with ``error`` (``Pyro4.errors.TimeoutError``; a Pyro5 client passes
    Pyro5's) after ``timeout`` seconds on ``clock`` (``d`` is cancelled, so whatever it
    waits for is told); no timeout when it is falsy."""
    if timeout:
        hook = _timeout_error if error is errors.TimeoutError else (
            lambda result, seconds: _timeout_error(result, seconds, error))
        d.addTimeout(timeout, clock, onTimeoutCancel=hook)


# -- the asyncio reactor ----------------------------------------------------------------------


def asyncio_loop(reactor: Any) -> asyncio.AbstractEventLoop | None:
    """The asyncio event loop under ``reactor`` if it is Twisted's asyncio reactor, else None.

    (``AsyncioSelectorReactor`` keeps its loop in ``_asyncioEventloop``; there is no public
    accessor. Asking the attribute keeps ``twisted.internet.asyncioreactor`` unimported.)
    """
    return getattr(reactor, "_asyncioEventloop", None)


class ReactorMismatch(RuntimeError):
    """The global reactor cannot serve this asyncio program (see the message for what to do)."""


def adopt_running_loop() -> Any:
    """The global reactor, made to run on the running asyncio loop: for asyncio programs.

    Called from a coroutine. If no reactor is installed yet, Twisted's asyncio reactor is
    installed on the running loop. The reactor is then started in Twisted's sense (startup
    triggers: its thread pool, ``callWhenRunning``) without running the loop, which asyncio
    runs; its shutdown happens when the loop's tasks are cancelled at the end of
    ``asyncio.run`` (or by :func:`shutdown_adopted`). A reactor started already with
    ``reactor.run()`` on this loop is used as it is. Any other reactor (another kind, or an
    asyncio reactor on another loop) raises :class:`ReactorMismatch`, saying why.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise ReactorMismatch("pyro.aio is used from coroutines running in an asyncio event "
                              "loop (asyncio.run(main())), and no loop is running") from None
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import asyncioreactor

        asyncioreactor.install(loop)
    from twisted.internet import reactor as installed

    reactor: Any = installed
    reactor_loop = asyncio_loop(reactor)
    if reactor_loop is None:
        raise ReactorMismatch(
            "pyro.aio needs Twisted's asyncio reactor, but the global reactor is already %s.%s "
            "(something imported twisted.internet.reactor first). Let pyro.aio install the "
            "asyncio reactor (use it before anything imports the reactor), or install it "
            "yourself first: twisted.internet.asyncioreactor.install()"
            % (type(reactor).__module__, type(reactor).__name__))
    if reactor_loop is not loop and reactor is _adopted:
        raise ReactorMismatch(
            "pyro.aio's reactor ran on the loop of an earlier asyncio.run, and was shut down "
            "when it ended; a process has one reactor, on one loop, started once: run the "
            "whole program in one asyncio.run(main())")
    if reactor_loop is not loop:
        raise ReactorMismatch(
            "Twisted's asyncio reactor is installed on another asyncio event loop (%r) than "
            "the running one (%r); a process has one reactor, on one loop: run your program "
            "on the reactor's loop (reactor_loop.run_until_complete(main())), or let pyro.aio "
            "install the reactor on the running loop (do not install it before asyncio.run)"
            % (reactor_loop, loop))
    if not reactor._started:
        if reactor._startedBefore:
            raise ReactorMismatch(
                "Twisted's reactor on this loop was shut down already (pyro.aio.shutdown(), or "
                "the end of asyncio.run), and a reactor does not start twice: use pyro.aio "
                "before shutting it down")
        _start_adopted(reactor, loop)
    return reactor


#: The reactor :func:`adopt_running_loop` started (not one a program runs with ``run()``),
#: and the task that shuts it down when the loop's tasks are cancelled.
_adopted: Any = None
_keeper: asyncio.Task[None] | None = None


def _start_adopted(reactor: Any, loop: asyncio.AbstractEventLoop) -> None:
    global _adopted, _keeper
    reactor.startRunning(installSignalHandlers=False)  # asyncio keeps its signal handling
    _adopted = reactor
    _keeper = loop.create_task(_keep(reactor), name="pyro.aio: Twisted's asyncio reactor")


async def _keep(reactor: Any) -> None:
    """Wait for the end of the program: ``asyncio.run`` cancels every task when ``main()``
    returns; then let the others finish (they may still be closing servers and proxies), and
    shut the reactor down."""
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if _keeper is not me:
            raise  # shutdown_adopted() was called: it is done already
        while True:
            others = [task for task in asyncio.all_tasks() if task is not me]
            if not others:
                break
            await asyncio.wait(others)
        global _ending
        _ending = True
        await shutdown_adopted(reactor)


#: ``asyncio.run`` is ending: its tasks are done, and the reactor is being shut down.
_ending = False


def ending() -> bool:
    """True once ``asyncio.run`` ended the program's tasks and the reactor shuts down: what
    is still under way then was left by the program, and nobody waits for it (see
    :func:`pyro.aio._future`)."""
    return _ending


async def shutdown_adopted(reactor: Any = None) -> None:
    """Shut down the reactor that :func:`adopt_running_loop` started, as ``reactor.stop()``
    would, except for stopping the asyncio loop (``asyncio.run`` owns it).

    Twisted's shutdown would stop the loop in the middle of ``asyncio.run``'s own
    ``run_until_complete`` (``AsyncioSelectorReactor.crash``), so the shutdown event's
    triggers are run here with that one left out: the "before" triggers (awaited when they
    return Deferreds), then the "during" ones (disconnecting what is still connected,
    stopping the reactor's thread pool, whose threads would otherwise keep the process
    alive), then the "after" ones. The reactor's waker pipe is closed last. After this the
    reactor is stopped for good (as after ``reactor.run()`` returns).
    """
    from twisted.internet.base import ReactorBase

    global _keeper
    reactor = default_reactor(reactor)
    if reactor is not _adopted or not reactor._started:
        return  # not ours to stop (a program that calls reactor.run() stops it itself)
    keeper, _keeper = _keeper, None
    if keeper is not None and keeper is not asyncio.current_task():
        keeper.cancel()  # called by the program: the keeper has nothing left to do
        await asyncio.wait([keeper])
    event = reactor._eventTriggers.get("shutdown")
    if event is not None:
        crash = reactor.crash
        event.during[:] = [trigger for trigger in event.during if trigger[0] != crash]
        done: defer.Deferred[None] = defer.Deferred()
        reactor.addSystemEventTrigger("after", "shutdown", done.callback, None)
        reactor.fireSystemEvent("shutdown")
        await done.asFuture(asyncio.get_running_loop())
    ReactorBase.crash(reactor)  # the reactor's state only: the loop runs on
    reactor._stopped = True
    reactor._startedBefore = True
    waker = reactor.waker
    if waker is not None:
        reactor._internalReaders.discard(waker)
        reactor.removeReader(waker)
        waker.connectionLost(None)
        reactor.waker = None
