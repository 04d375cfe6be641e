"""``pyro.aio.Proxy`` as an asyncio program uses it: against Pyro4's own daemons (thread and
multiplex), against our server in the same program, and through a Pyro4 name server.

Each test is a program in a process of its own (see :mod:`tests.aio.programs`).
"""

from __future__ import annotations

import ast

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
