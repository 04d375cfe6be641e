"""When ``pyro.aio`` installs or adopts the reactor, what it refuses (and says), and that an
asyncio program ends with nothing left: no thread, no socket, no pending task, no warning.

Each test is a program in a process of its own (see :mod:`tests.aio.programs`).
"""

from __future__ import annotations

import ast

from .programs import run_failing, run_program

#: What is left once ``asyncio.run`` returned: printed last by the programs below.
LEFT_OVER = """
import gc
import socket
import threading

from twisted.internet import reactor

gc.collect()
for thread in threading.enumerate():  # a thread that is on its way out (the factory's own
    if thread is not threading.main_thread():  # pool is stopped by a thread) is not left
        thread.join(5)
print(repr({
    "reactor": type(reactor).__name__,
    "threads": [t.name for t in threading.enumerate() if t is not threading.main_thread()],
    "sockets": [s for s in gc.get_objects() if isinstance(s, socket.socket) and s.fileno() >= 0],
    "reactor running": reactor.running,
    "readers": len(reactor.getReaders()),
    "writers": len(reactor.getWriters()),
}))
"""

NOTHING_LEFT = {"reactor": "AsyncioSelectorReactor", "threads": [], "sockets": [],
                "reactor running": False, "readers": 0, "writers": 0}

#: A program that never mentions Twisted and closes what it opened.
TIDY_PROGRAM = """
import asyncio
import threading

import Pyro4

import pyro.aio
from tests.aio.servants import Plain, Waiter


async def main():
    async with pyro.aio.Server(threads=2) as server:
        await server.listen("tcp:0:interface=127.0.0.1")
        uri = server.register(Waiter())
        plain = server.register(Plain())
        async with pyro.aio.Proxy(uri) as proxy:
            print(repr(await asyncio.gather(proxy.asyncio_sleep(0.01, 1), proxy.both(0.01))))
            def blocking():  # a Pyro4 client in a thread, and the reactor's thread pool
                with Pyro4.Proxy(plain) as p:  # (name resolution of "localhost" uses it)
                    return p.slow(0.01)
            print(repr(await asyncio.to_thread(blocking)))
            async with pyro.aio.Proxy("PYRO:%s@localhost:%d" % (plain.object, plain.port)) as p:
                print(repr(await p.add(1, 1)))

asyncio.run(main())
""" + LEFT_OVER


def test_a_tidy_program_ends_with_nothing_left(loop_prelude: str) -> None:
    stdout, _ = run_program(TIDY_PROGRAM, prelude=loop_prelude)
    out = [ast.literal_eval(line) for line in stdout.splitlines()]
    assert out[:3] == [[1, ["deferred", "task", "fired"]], 0.01, 2]
    assert out[3] == NOTHING_LEFT


#: A program that forgets to close its server and proxy, leaving a call waiting: they are
#: closed when asyncio.run ends, and nothing is left either.
UNTIDY_PROGRAM = """
import asyncio

import pyro.aio
from tests.aio.servants import Waiter


async def main():
    server = pyro.aio.Server(threads=2)
    await server.listen("tcp:0:interface=127.0.0.1")
    proxy = pyro.aio.Proxy(server.register(Waiter()))
    print(repr(await proxy.asyncio_sleep(0, "called")))
    async def hang():
        await proxy.hang("asyncio")

    waiting = asyncio.create_task(hang())  # a task: asyncio.run cancels it
    await asyncio.sleep(0.1)
    return proxy, server, waiting  # kept alive: nobody closes them

kept = asyncio.run(main())
print(repr(kept[2].cancelled()))
""" + LEFT_OVER


def test_an_untidy_program_ends_with_nothing_left_either() -> None:
    stdout, _ = run_program(UNTIDY_PROGRAM)
    out = stdout.splitlines()
    assert out[0] == "'called'"
    assert out[1] == "servant cancelled while awaiting asyncio"
    assert out[2] == "True"
    assert ast.literal_eval(out[3]) == NOTHING_LEFT


#: A program whose main() fails while calls it never awaited (futures, not tasks: nothing
#: of asyncio.run's cancels them) are under way: they are cancelled when asyncio.run ends,
#: as its tasks are, rather than failed by the reactor's shutdown with an exception nobody
#: will retrieve (asyncio would print it, with a traceback, at exit).
FAILING_MAIN_PROGRAM = """
import asyncio

import pyro.aio
from tests.aio.servants import Waiter

kept = []

async def main():
    server = pyro.aio.Server()
    await server.listen("tcp:0:interface=127.0.0.1")
    proxy = pyro.aio.Proxy(server.register(Waiter()))
    kept.extend([proxy, server, asyncio.ensure_future(proxy.hang("deferred")),
                 asyncio.ensure_future(proxy.hang("asyncio"))])
    await asyncio.sleep(0.2)
    raise RuntimeError("main failed")

try:
    asyncio.run(main())
except RuntimeError as exc:
    print(repr(str(exc)))
print(repr([call.cancelled() for call in kept[2:]]))
del kept[:]
""" + LEFT_OVER


def test_calls_left_under_way_by_a_failing_main_end_cancelled() -> None:
    stdout, _ = run_program(FAILING_MAIN_PROGRAM)
    out = stdout.splitlines()
    assert sorted(out[:2]) == ["servant cancelled while awaiting asyncio",
                               "servant cancelled while awaiting deferred"]
    assert out[2:4] == ["'main failed'", "[True, True]"]
    assert ast.literal_eval(out[4]) == NOTHING_LEFT


def test_another_reactor_installed_is_refused_with_what_to_do() -> None:
    status, _, stderr = run_failing("""
        import asyncio

        from twisted.internet import reactor  # the platform's default reactor

        import pyro.aio

        async def main():
            await pyro.aio.Proxy("PYRO:thing@127.0.0.1:1").add(1, 2)

        asyncio.run(main())
        """)
    assert status == 1
    assert ("pyro._reactor.ReactorMismatch: pyro.aio needs Twisted's asyncio reactor, but the "
            "global reactor is already twisted.internet.") in stderr  # epoll, kqueue, select
    assert "twisted.internet.asyncioreactor.install()" in stderr


def test_no_running_loop_is_refused() -> None:
    status, _, stderr = run_failing("""
        import pyro.aio

        pyro.aio.Proxy("PYRO:thing@127.0.0.1:1").add(1, 2)
        """)
    assert status == 1
    assert "pyro.aio is used from coroutines running in an asyncio event loop" in stderr


def test_an_asyncio_reactor_on_another_loop_is_refused() -> None:
    status, _, stderr = run_failing("""
        import asyncio

        from twisted.internet import asyncioreactor

        asyncioreactor.install(asyncio.new_event_loop())

        import pyro.aio

        async def main():
            await pyro.aio.Proxy("PYRO:thing@127.0.0.1:1").add(1, 2)

        asyncio.run(main())  # a new loop: not the reactor's
        """)
    assert status == 1
    assert "Twisted's asyncio reactor is installed on another asyncio event loop" in stderr


def test_a_second_asyncio_run_is_refused() -> None:
    status, stdout, stderr = run_failing("""
        import asyncio

        import pyro.aio
        from tests.aio.servants import Plain

        async def main():
            async with pyro.aio.Server() as server:
                await server.listen("tcp:0:interface=127.0.0.1")
                async with pyro.aio.Proxy(server.register(Plain())) as proxy:
                    print(await proxy.add(1, 2), flush=True)

        asyncio.run(main())
        asyncio.run(main())
        """)
    assert (status, stdout) == (1, "3\n")
    assert stderr.splitlines()[-1] == (  # not "installed on another loop... do not install it"
        "pyro._reactor.ReactorMismatch: pyro.aio's reactor ran on the loop of an earlier "
        "asyncio.run, and was shut down when it ended; a process has one reactor, on one "
        "loop, started once: run the whole program in one asyncio.run(main())")


#: The reactor installed by the program on its own loop, which it runs itself: adopted; the
#: program shuts it down with pyro.aio.shutdown() before closing the loop: no task is left
#: (and pyro.aio used after that says why it cannot be).
OWN_LOOP_PROGRAM = """
import asyncio

from twisted.internet import asyncioreactor

loop = asyncio.new_event_loop()
asyncioreactor.install(loop)

import pyro.aio
from tests.aio.servants import Plain


async def main():
    async with pyro.aio.Server(threads=1) as server:
        await server.listen("tcp:0:interface=127.0.0.1")
        async with pyro.aio.Proxy(server.register(Plain())) as proxy:
            print(repr(await proxy.slow(0.01)))

loop.run_until_complete(main())
loop.run_until_complete(pyro.aio.shutdown())
print(repr(asyncio.all_tasks(loop)))
try:
    loop.run_until_complete(main())
except pyro.aio.ReactorMismatch as exc:
    print(repr(str(exc).startswith("Twisted's reactor on this loop was shut down already")))
loop.close()
""" + LEFT_OVER


def test_a_program_running_its_own_loop() -> None:
    stdout, _ = run_program(OWN_LOOP_PROGRAM)
    out = [ast.literal_eval(line) for line in stdout.splitlines()]
    assert out == [0.01, set(), True, NOTHING_LEFT]  # used again after shutdown: refused


#: A Twisted program on the asyncio reactor (reactor.run()) with asyncio code inside: the
#: running reactor is used as it is, and stopped by the program as usual.
TWISTED_PROGRAM = """
import asyncio

from twisted.internet import asyncioreactor

asyncioreactor.install(asyncio.new_event_loop())

from twisted.internet import defer, reactor

import pyro.aio
from tests.aio.servants import Plain


async def main():
    async with pyro.aio.Server() as server:
        await server.listen("tcp:0:interface=127.0.0.1")
        async with pyro.aio.Proxy(server.register(Plain())) as proxy:
            return await proxy.add(2, 3)


def start():  # called once the loop runs (callWhenRunning would be too early for a task)
    d = defer.Deferred.fromFuture(asyncio.ensure_future(main()))
    d.addBoth(print)
    d.addBoth(lambda _: reactor.stop())

reactor.callLater(0, start)
reactor.run()
"""


def test_a_twisted_program_on_the_asyncio_reactor() -> None:
    stdout, _ = run_program(TWISTED_PROGRAM)
    assert stdout == "5\n"


#: A tidy program that gave up on a call running in the server's thread pool: the servant
#: finishes after the server was closed and the loop with it; its result, which nobody
#: awaits, must not be reported as an unhandled error ("Event loop is closed").
POOL_CALL_OUTLIVES_THE_LOOP = """
import asyncio

import pyro.aio
from tests.aio.servants import Waiter


async def main():
    async with pyro.aio.Server(threads=2) as server:
        await server.listen("tcp:0:interface=127.0.0.1")
        async with pyro.aio.Proxy(server.register(Waiter())) as proxy:
            try:
                await asyncio.wait_for(proxy.blocking(0.5), 0.1)
            except asyncio.TimeoutError:
                print(repr("gave up"))

asyncio.run(main())
""" + LEFT_OVER  # (which waits for the pool's thread: the servant ends after the loop)


def test_a_pool_call_that_outlives_the_loop_ends_quietly() -> None:
    stdout, _ = run_program(POOL_CALL_OUTLIVES_THE_LOOP)
    out = [ast.literal_eval(line) for line in stdout.splitlines()]
    assert out == ["gave up", NOTHING_LEFT]
