"""Servants under Twisted's asyncio reactor: ``async def`` methods and async generators run as
asyncio tasks, awaiting asyncio and Deferreds alike, called by unmodified ``Pyro4.Proxy``
clients (in threads of the program).

Each test is a program in a process of its own (see :mod:`tests.aio.programs`).
"""

from __future__ import annotations

import ast

from .programs import run_program

#: A Twisted program on the asyncio reactor (``reactor.run()``): the issue's first failure,
#: ``RuntimeError: await wasn't used with future`` for every call of a servant that awaits
#: asyncio, while one that awaits a Deferred must keep working.
TWISTED_PROGRAM = """
import asyncio

from twisted.internet import asyncioreactor

asyncioreactor.install(asyncio.new_event_loop())

import Pyro4
from twisted.internet import reactor, threads

from pyro.protocol import Pyro4ProtocolFactory
from tests.aio.servants import Waiter

factory = Pyro4ProtocolFactory()
port = reactor.listenTCP(0, factory, interface="127.0.0.1")
factory.setAddress("127.0.0.1", port.getHost().port)
uri = factory.register(Waiter())


def clients():
    with Pyro4.Proxy(uri) as proxy:
        print(repr(proxy.asyncio_sleep(0.1, "asyncio")))
        print(repr(proxy.deferred_sleep(0.01, "twisted")))
        print(repr(proxy.both(0.01)))
        print(repr(list(proxy.numbers(3))))


def finish(result):
    if result is not None:
        print("FAILED", result.getTraceback())
    factory.close().addBoth(lambda _: reactor.stop())


threads.deferToThread(clients).addBoth(finish)
reactor.run()
"""


def lines(stdout: str) -> list[object]:
    return [ast.literal_eval(line) for line in stdout.splitlines()]


def test_twisted_program_servants_await_asyncio_and_deferreds() -> None:
    stdout, _ = run_program(TWISTED_PROGRAM)
    assert lines(stdout) == ["asyncio", "twisted", ["deferred", "task", "fired"], [0, 1, 2]]


#: The same servants in a plain asyncio program (``pyro.aio.Server``), each kind at once.
SERVER_PROGRAM = """
import asyncio
import uuid

import Pyro4

import pyro.aio
from tests.aio.servants import Session, Waiter

seen_annotations = []


class Proxy(Pyro4.Proxy):
    def _pyroResponseAnnotations(self, annotations, msgtype):
        if "XSEE" in annotations:
            seen_annotations.append(annotations["XSEE"].decode())


def with_correlation(uri, method, *args):
    correlation = uuid.uuid4()
    Pyro4.current_context.correlation_id = correlation  # this thread's, sent as CORR
    with Proxy(uri) as proxy:
        return str(correlation), getattr(proxy, method)(*args)


def calls(uri, *calls):
    with Pyro4.Proxy(uri) as proxy:
        results = [getattr(proxy, method)(*args) for method, *args in calls]
        return [list(r) if hasattr(r, "__next__") else r for r in results]  # item streams


async def main():
    async with pyro.aio.Server(threads=2) as server:
        await server.listen("tcp:0:interface=127.0.0.1")
        waiter = server.register(Waiter(), "waiter")
        session = server.register(Session, "session")
        # ten concurrent calls, each with its own correlation id, all awaiting at once
        results = await asyncio.gather(*(
            asyncio.to_thread(with_correlation, waiter, "context", 0.05) for _ in range(10)))
        print(all(seen == [sent] * 3 for sent, seen in results))
        print(sorted(seen_annotations) == sorted(sent for sent, _ in results))
        # a blocking servant in the pool beside an awaiting one
        print(repr(await asyncio.gather(
            asyncio.to_thread(calls, waiter, ("blocking", 0.2)),
            asyncio.to_thread(calls, waiter, ("asyncio_sleep", 0.01, "not held up")))))
        # errors raised after an await, and from an awaited Deferred
        def failures():
            with Pyro4.Proxy(waiter) as proxy:
                out = []
                for method in ("fails", "fails_deferred"):
                    try:
                        getattr(proxy, method)()
                    except ValueError as exc:
                        out.append((str(exc), "raise ValueError" in "".join(exc._pyroTraceback)))
                return out
        print(repr(await asyncio.to_thread(failures)))
        # item streams of async generators, one awaiting asyncio and Twisted in turns
        print(repr(await asyncio.to_thread(calls, waiter, ("numbers", 4))))
        def mixed():
            Pyro4.current_context.correlation_id = correlation = uuid.uuid4()
            with Pyro4.Proxy(waiter) as proxy:
                return all(c == str(correlation) for _, c in proxy.mixed_numbers(4))
        print(await asyncio.to_thread(mixed))
        # oneway calls that await, then a batch of awaiting calls
        def oneway_and_batch():
            with Pyro4.Proxy(waiter) as proxy:
                for value in range(5):
                    proxy.remember(value)
                batch = Pyro4.batch(proxy)
                batch.asyncio_sleep(0.01, "a")
                batch.deferred_sleep(0.01, "b")
                batch.recall(5)
                return list(batch())
        print(repr(await asyncio.to_thread(oneway_and_batch)))
        # session servants: one instance per connection, calls in order
        print(repr(await asyncio.gather(*(
            asyncio.to_thread(calls, session, ("increment",), ("increment",), ("increment",))
            for _ in range(3)))))

asyncio.run(main())
"""


def test_asyncio_program_serves_every_kind_of_servant() -> None:
    stdout, _ = run_program(SERVER_PROGRAM)
    out = lines(stdout)
    assert out[0] is True, "a call saw another call's correlation id after an await"
    assert out[1] is True, "an annotation set after an await did not reach its reply"
    blocked, quick = out[2]
    assert blocked[0].startswith("PoolThread-pyro.protocol servants") and quick == ["not held up"]
    assert out[3] == [("failed after an await", True), ("caught 'from a Deferred'", True)]
    assert out[4] == [[0, 1, 2, 3]]
    assert out[5] is True
    assert out[6] == ["a", "b", [0, 1, 2, 3, 4]]
    assert out[7] == [[1, 2, 3]] * 3


#: A servant still waiting when the program ends is cancelled with the loop's other tasks
#: (what it awaited with it: the Deferred's timer too), and the program still ends clean.
CANCEL_PROGRAM = """
import asyncio

import pyro.aio
from tests.aio.servants import Waiter


async def main():
    waiter = Waiter()
    async with pyro.aio.Server() as server:
        await server.listen("tcp:0:interface=127.0.0.1")
        uri = server.register(waiter)
        async with pyro.aio.Proxy(uri) as proxy:
            for how in ("asyncio", "deferred"):
                try:
                    await asyncio.wait_for(proxy.hang(how), 0.2)
                except asyncio.TimeoutError:
                    print("client gave up on", how, flush=True)
    print("main returns", flush=True)
    return waiter


waiter = asyncio.run(main())
from twisted.internet import reactor

print(sorted(waiter.cancelled), len(reactor.getDelayedCalls()))
"""


def test_servants_left_waiting_are_cancelled_when_the_program_ends() -> None:
    stdout, _ = run_program(CANCEL_PROGRAM)
    out = stdout.splitlines()
    assert out[:3] == ["client gave up on asyncio", "client gave up on deferred", "main returns"]
    assert sorted(out[3:5]) == ["servant cancelled while awaiting asyncio",
                                "servant cancelled while awaiting deferred"]
    assert out[5] == "['asyncio', 'deferred'] 0"
