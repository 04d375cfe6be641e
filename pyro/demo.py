"""The quick-start demo: ``python -m pyro demo``, the three faces of twisted-pyro in one run.

In this process's reactor: a name server of ours and a server (:class:`Pyro4ProtocolFactory`)
serving :class:`Greeter` under the name ``example.greeter``, kept registered by
:func:`pyro.nameserver.keep_registered`. Then three clients call it by
``PYRONAME:example.greeter@127.0.0.1:PORT``, each for a few lines, with timings:

1. a plain ``Pyro4.Proxy`` in a separate Python process (nothing Twisted on that side):
   ordinary calls, a remote exception with its traceback, an item stream, and 20
   concurrent calls to a coroutine that waits half a second: they finish together,
   because the reactor serves all of them at once;
2. :class:`pyro.proxy.PyroDeferredService`: a ``Pyro4.Proxy`` in worker threads, every
   call a Deferred;
3. :class:`pyro.client.DeferredProxy`: the native client, no threads at all.

Everything is on 127.0.0.1 and ports the system picks, with no broadcast: a name server
already running on the machine is neither needed nor used. A failure ends the demo with a
:class:`DemoError` saying which step failed (``python -m pyro demo`` prints it in one line).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import Pyro4
from twisted.internet import defer, task, utils

from .server.factory import Pyro4ProtocolFactory

__all__ = ["CONCURRENT", "DemoError", "Greeter", "WAIT", "main", "run"]

#: How many calls the clients make at once to :meth:`Greeter.slow_echo`, and how long each
#: of them waits (seconds).
CONCURRENT = 20
WAIT = 0.5

LOOPBACK = "tcp:0:interface=127.0.0.1"
NAME = "example.greeter"


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


@Pyro4.expose
class Greeter:
    """A servant with the kinds of methods Twisted makes easy."""

    def __init__(self, reactor: Any):
        self._reactor = reactor

    def hello(self, name: str) -> str:
        return "Hello, %s, from a Twisted reactor!" % name

    def divide(self, a: float, b: float) -> float:
        return a / b

    def countdown(self, n: int):  # an item stream
        yield from range(n, 0, -1)

    async def slow_echo(self, value: Any, seconds: float = WAIT) -> Any:
        """Waits without blocking anybody: the reactor keeps serving other clients."""
        await task.deferLater(self._reactor, seconds, lambda: None)
        return value


#: The Pyro4 client, run by this Python in another process: ``python -c CLIENT PYRONAME``.
CLIENT = r'''
import sys, time, threading
import Pyro4
Pyro4.config.COMMTIMEOUT = 20  # (a demo must not hang)
uri, concurrent, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def ms(start):
    return (time.perf_counter() - start) * 1000

with Pyro4.Proxy(uri) as greeter:
    start = time.perf_counter()
    greeter._pyroBind()
    print("  found it by name and connected (%.1f ms)" % ms(start))
    start = time.perf_counter()
    print("  hello -> %r (%.1f ms)" % (greeter.hello("Pyro4 user"), ms(start)))
    try:
        greeter.divide(1, 0)
    except ZeroDivisionError as exc:
        print("  divide(1, 0) raised %r here, with the server's traceback:" % exc)
        for line in "".join(exc._pyroTraceback).rstrip().splitlines():
            print("    " + line)
    start = time.perf_counter()
    print("  countdown(5) streams -> %s (%.1f ms)" % (list(greeter.countdown(5)), ms(start)))
results = []

def call(i):
    with Pyro4.Proxy(uri) as proxy:
        results.append(proxy.slow_echo(i, wait))

threads = [threading.Thread(target=call, args=(i,)) for i in range(concurrent)]
start = time.perf_counter()
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("  %d concurrent calls (%d threads) of a coroutine waiting %g s: %s after %.2f s"
      % (concurrent, concurrent, wait,
         "all answered" if sorted(results) == list(range(concurrent)) else "WRONG %r" % results,
         time.perf_counter() - start))
'''


class _Clock:
    """Milliseconds and seconds since it was made, for the lines the demo prints."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def ms(self) -> str:
        return "%.1f ms" % ((time.perf_counter() - self.start) * 1000)

    def s(self) -> str:
        return "%.2f s" % (time.perf_counter() - self.start)


def _last_frame(exc: BaseException) -> str:
    """Where a remote exception was raised: the last ``File ...`` line of its traceback."""
    lines = "".join(getattr(exc, "_pyroTraceback", [])).splitlines()
    frames = [line.strip() for line in lines if line.strip().startswith("File ")]
    return frames[-1] if frames else "(no traceback)"


async def _greet(proxy: Any, connect: Callable[[], Any], out: Callable[[str], None]) -> None:
    """Connect (resolving ``PYRONAME:`` first), then one ordinary call; each timed."""
    clock = _Clock()
    await connect()
    out("  found it by name and connected (%s)" % clock.ms())
    clock = _Clock()
    out("  hello -> %r (%s)" % (await proxy.hello("Twisted user"), clock.ms()))


async def _concurrently(proxy: Any, calls: int, how: str, out: Callable[[str], None]) -> None:
    """``calls`` calls of the waiting coroutine at once: they finish together."""
    clock = _Clock()
    results = await defer.gatherResults(
        [proxy.slow_echo(i, WAIT) for i in range(calls)], consumeErrors=True)
    answered = "all answered" if sorted(results) == list(range(calls)) else "WRONG %r" % results
    out("  %d concurrent calls (%s) of the coroutine: %s after %s"
        % (calls, how, answered, clock.s()))


async def _step(what: str, work: Any) -> Any:
    """Await ``work``; a failure becomes a :class:`DemoError` naming the step."""
    try:
        return await work
    except DemoError:
        raise
    except Exception as exc:
        raise DemoError("%s failed: %s" % (what, _describe(exc))) from exc


def _describe(exc: BaseException) -> str:
    text = "%s: %s" % (type(exc).__name__, exc)
    cause = exc.__cause__
    if cause is not None and str(cause) not in str(exc):
        text += " (%s)" % _describe(cause)
    return text


async def _pyro4_process(pyroname: str, out: Callable[[str], None], reactor: Any) -> None:
    out("1. a plain Pyro4.Proxy in another process (%s, no Twisted), by %s"
        % (os.path.basename(sys.executable), pyroname))
    stdout, stderr, code = await utils.getProcessOutputAndValue(
        sys.executable, ["-c", CLIENT, pyroname, str(CONCURRENT), str(WAIT)],
        env=dict(os.environ), reactor=reactor)
    for line in stdout.decode("utf-8", "replace").splitlines():
        out(line)
    if code != 0:
        lines = stderr.decode("utf-8", "replace").strip().splitlines()
        raise DemoError("the Pyro4 client process failed (exit status %s): %s"
                        % (code, lines[-1] if lines else "no message"))


async def _threaded_service(pyroname: str, out: Callable[[str], None], reactor: Any) -> None:
    from .proxy import PyroDeferredService

    out("2. PyroDeferredService (pyro.proxy: a Pyro4.Proxy in worker threads), by PYRONAME:")
    proxy = Pyro4.Proxy(pyroname)
    proxy._pyroTimeout = 20
    service = PyroDeferredService(proxy, reactor=reactor)
    try:
        await _greet(service, service._pyroBind, out)
        await _concurrently(service, service.max_workers, "one per worker thread", out)
    finally:
        await service.close()


async def _native_client(pyroname: str, out: Callable[[str], None], reactor: Any) -> None:
    from .client import DeferredProxy

    out("3. the native client (pyro.client.DeferredProxy: no threads), by PYRONAME:")
    proxy = DeferredProxy(pyroname, reactor=reactor, timeout=20)
    try:
        await _greet(proxy, proxy.connect, out)
        try:
            await proxy.divide(1, 0)
        except ZeroDivisionError as exc:
            out("  divide(1, 0) raised %r here; the server's traceback ends at: %s"
                % (exc, _last_frame(exc)))
        clock = _Clock()
        stream = await proxy.countdown(5)
        items = [item async for item in stream]
        out("  countdown(5) streams -> %s (%s)" % (items, clock.ms()))
        await _concurrently(proxy, CONCURRENT, "one proxy, one thread", out)
    finally:
        await proxy.close()


def _print(line: str) -> None:
    print(line, flush=True)


async def main(reactor: Any, out: Callable[[str], None] = _print) -> None:
    """The demo; ``out`` gets each line. Raises :class:`DemoError` if a step fails."""
    from .nameserver import keep_registered, register_name_server

    total = _Clock()
    ns_factory = Pyro4ProtocolFactory(reactor=reactor)
    server = Pyro4ProtocolFactory(reactor=reactor)
    kept = None
    try:
        await _step("starting the name server", ns_factory.listen(LOOPBACK))
        _, ns_uri = register_name_server(ns_factory, autoclean=0)
        out("name server: %s (its own, on loopback; no broadcast)" % ns_uri)
        await _step("starting the server", server.listen(LOOPBACK))
        uri = server.register(Greeter(reactor), NAME)
        host, port = ns_uri.host, ns_uri.port
        kept = keep_registered(NAME, uri, ns_host=host, ns_port=port, reactor=reactor)
        await _step("registering %s" % NAME, kept.when_registered(fail_fast=True))
        out("server: %s from the Twisted reactor, registered as %s" % (uri, NAME))
        pyroname = "PYRONAME:%s@%s:%d" % (NAME, host, port)
        for what, face in [("the Pyro4 client", _pyro4_process),
                           ("PyroDeferredService", _threaded_service),
                           ("the native client", _native_client)]:
            out("")
            await _step(what, defer.Deferred.fromCoroutine(face(pyroname, out, reactor)))
    finally:
        if kept is not None:
            await kept.stop()
        await server.close()
        await ns_factory.close()
    out("")
    out("done in %s: one reactor thread served the name server and all three clients"
        % total.s())


def run(reactor: Any) -> defer.Deferred[None]:
    """:func:`main` as a Deferred (for ``task.react``)."""
    return defer.Deferred.fromCoroutine(main(reactor))
