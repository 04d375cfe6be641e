"""``pyro.aio.Proxy`` as an asyncio program uses it: against Pyro4's own daemons (thread and
multiplex), against our server in the same program, and through a Pyro4 name server.

Each test is a program in a process of its own (see :mod:`tests.aio.programs`).
"""

from __future__ import annotations

import ast
import sys

from .programs import run_program

#: Every kind of use of the proxy; the program prints the outcomes, one repr per server.
PROXY_PROGRAM = """
import asyncio

import Pyro4
import Pyro4.errors

import pyro.aio
from tests.aio.servants import Plain
from tests.support.pyro4_peers import start_pyro4_daemon


async def exercise(uri):
    out = {}
    async with pyro.aio.Proxy(uri) as proxy:
        out["add"] = await proxy.add(1, 2)
        out["gather"] = await asyncio.gather(*(proxy.add(i, i) for i in range(20)))
        out["getattr"] = await proxy.getattr("value")
        await proxy.setattr("value", 7)
        out["setattr"] = await proxy.getattr("value")
        out["call"] = await proxy.call("close")
        batch = proxy.batch()
        batch.add(1, 1)
        batch.fail("in a batch")
        batch.add(2, 2)
        try:
            await batch.send()
        except ValueError as exc:
            out["batch failed"] = (str(exc), exc._pyroBatchResults)
        batch.add(1, 2)
        batch.add(3, 4)
        out["batch"] = await batch.send()
        out["stream"] = [item async for item in await proxy.numbers(5)]
        async with await proxy.numbers(1000) as stream:
            out["stream closed early"] = [await stream.__anext__(), await stream.next()]
        try:
            await proxy.fail("boom")
        except ValueError as exc:
            out["error"] = (str(exc), bool(exc._pyroTraceback))
        try:
            await asyncio.wait_for(proxy.slow(1.0), 0.1)
        except asyncio.TimeoutError:
            out["wait_for"] = "gave up"
        call = asyncio.ensure_future(proxy.slow(1.0))
        await asyncio.sleep(0.05)
        call.cancel()
        try:
            await call
        except asyncio.CancelledError:
            out["cancelled"] = True
        proxy.timeout = 0.1
        try:
            await proxy.slow(1.0)
        except Pyro4.errors.TimeoutError as exc:
            out["timeout"] = str(exc)
        proxy.timeout = None
        out["after"] = await proxy.add(2, 2)
        child = await proxy.child()
        out["child"] = (type(child).__name__, await child.add(5, 5))
    return out


async def main():
    for servertype in ("thread", "multiplex"):
        peer = start_pyro4_daemon(servertype)
        try:
            print(repr(await exercise(peer.register(Plain(), "plain"))), flush=True)
        finally:
            await asyncio.to_thread(peer.stop)
    async with pyro.aio.Server(threads=4) as server:
        await server.listen("tcp:0:interface=127.0.0.1")
        print(repr(await exercise(server.register(Plain(), "plain"))), flush=True)

asyncio.run(main())
"""

EXPECTED = {
    "add": 3,
    "gather": [2 * i for i in range(20)],
    "getattr": 1,
    "setattr": 7,
    "call": "a remote method called close",
    "batch failed": ("in a batch", [2]),
    "batch": [3, 7],
    "stream": [0, 1, 2, 3, 4],
    "stream closed early": [0, 1],
    "error": ("boom", True),
    "wait_for": "gave up",
    "cancelled": True,
    "timeout": "call timed out after 0.1 seconds",
    "after": 4,
    "child": ("Proxy", 10),
}


def test_proxy_against_pyro4_daemons_and_our_server(loop_prelude: str) -> None:
    stdout, _ = run_program(PROXY_PROGRAM, prelude=loop_prelude)
    results = [ast.literal_eval(line) for line in stdout.splitlines()]
    assert results == [EXPECTED] * 3  # Pyro4's thread and multiplex daemons, our server


#: Names through a Pyro4 name server: ``PYRONAME:`` proxies, locate_ns, resolve.
NAMING_PROGRAM = """
import asyncio

import pyro.aio
from tests.aio.servants import Plain
from tests.support.pyro4_peers import start_pyro4_daemon, start_pyro4_nameserver


async def main():
    ns_peer = start_pyro4_nameserver()
    daemon = start_pyro4_daemon()
    try:
        uri = daemon.register(Plain())
        ns_peer.register_name("example.plain", uri)
        host, port = ns_peer.location.rsplit(":", 1)
        async with await pyro.aio.locate_ns(host, int(port), broadcast=False) as ns:
            print(repr(sorted(await ns.list())))
        resolved = await pyro.aio.resolve("PYRONAME:example.plain", ns_uri=ns_peer.uri)
        print(repr(str(resolved) == str(uri)))
        async with pyro.aio.Proxy("PYRONAME:example.plain", ns_uri=ns_peer.uri) as plain:
            print(repr(await plain.add(20, 22)))
    finally:
        await asyncio.gather(asyncio.to_thread(daemon.stop), asyncio.to_thread(ns_peer.stop))

asyncio.run(main())
"""


def test_names_through_a_pyro4_name_server() -> None:
    stdout, _ = run_program(NAMING_PROGRAM)
    assert [ast.literal_eval(line) for line in stdout.splitlines()] == [
        ["Pyro.NameServer", "example.plain"], True, 42]


#: A call is a future and, to asyncio, a coroutine: tasks, task groups, cancellation through
#: them; sent at once all the same; a call nobody awaits is no "coroutine never awaited".
TASKS_PROGRAM = """
import asyncio
import gc
import sys

import pyro.aio
from tests.aio.servants import Plain
from tests.support.pyro4_peers import start_pyro4_daemon


async def cancelled(task):
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


async def exercise(uri, servant):
    out = {}
    async with pyro.aio.Proxy(uri) as proxy:
        call = proxy.add(1, 2)
        out["kinds"] = (asyncio.isfuture(call), asyncio.iscoroutine(call))
        out["create_task"] = await asyncio.create_task(call)
        out["a task of a done call"] = await asyncio.create_task(call)

        gate = proxy.gate()  # reaches the servant with nobody awaiting it, and no task
        out["sent at once"] = await asyncio.to_thread(servant.arrived.wait, 30)
        out["gate"] = await asyncio.create_task(gate)

        slow = proxy.slow(1.0)
        task = asyncio.create_task(slow)
        await asyncio.sleep(0.05)
        task.cancel()
        out["task cancelled"] = (await cancelled(task), slow.cancelled())
        slow = proxy.slow(1.0)
        task = asyncio.create_task(slow)
        task.cancel()  # before the task first ran
        out["task cancelled at once"] = (await cancelled(task), slow.cancelled())
        slow = proxy.slow(1.0)
        slow.close()  # a coroutine dropped unrun
        out["closed"] = slow.cancelled()
        slow = proxy.slow(1.0)
        try:
            await asyncio.wait_for(asyncio.create_task(slow), 0.1)
        except asyncio.TimeoutError:
            out["wait_for a task"] = slow.cancelled()

        done, _ = await asyncio.wait([asyncio.create_task(proxy.add(i, i)) for i in range(3)])
        out["wait for tasks"] = sorted(task.result() for task in done)
        if sys.version_info >= (3, 11):
            bare = proxy.add(1, 1)
            try:
                await asyncio.wait([bare])
            except TypeError as exc:
                out["wait refuses a bare call"] = str(exc)
            out["the refused call"] = await bare
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(proxy.add(i, 1)) for i in range(5)]
            out["TaskGroup"] = [task.result() for task in tasks]
            slow = proxy.slow(1.0)
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(slow)
                    group.create_task(proxy.fail("in a group"))
            except BaseExceptionGroup as exc:
                out["TaskGroup failed"] = ([str(e) for e in exc.exceptions], slow.cancelled())

        finished = asyncio.Event()
        proxy.add(5, 5).add_done_callback(lambda _: finished.set())  # nobody awaits it
        await finished.wait()
        gc.collect()  # (a native coroutine would say "never awaited" now)
        out["after"] = await proxy.add(2, 2)
    return out


async def main():
    peer = start_pyro4_daemon("thread")
    try:
        servant = Plain()
        print(repr(await exercise(peer.register(servant, "plain"), servant)), flush=True)
    finally:
        await asyncio.to_thread(peer.stop)
    async with pyro.aio.Server(threads=4) as server:
        await server.listen("tcp:0:interface=127.0.0.1")
        servant = Plain()
        print(repr(await exercise(server.register(servant, "plain"), servant)), flush=True)

asyncio.run(main())
"""


def test_calls_are_coroutines_to_asyncio(loop_prelude: str) -> None:
    stdout, _ = run_program(TASKS_PROGRAM, prelude=loop_prelude)
    expected = {
        "kinds": (True, True),
        "create_task": 3,
        "a task of a done call": 3,
        "sent at once": True,
        "gate": "through",
        "task cancelled": (True, True),
        "task cancelled at once": (True, True),
        "closed": True,
        "wait_for a task": True,
        "wait for tasks": [0, 2, 4],
        "after": 4,
    }
    if sys.version_info >= (3, 11):
        expected.update({
            "wait refuses a bare call": "Passing coroutines is forbidden, use tasks explicitly.",
            "the refused call": 2,
            "TaskGroup": [1, 2, 3, 4, 5],
            "TaskGroup failed": (["in a group"], True),
        })
    results = [ast.literal_eval(line) for line in stdout.splitlines()]
    assert results == [expected] * 2  # Pyro4's thread daemon, our server
