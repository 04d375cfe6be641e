"""pyro.nameserver: Pyro4's name server on our factory, found by broadcast like Pyro4's own.

The responder is checked alone with a recording transport, then for real: a Pyro4
``locateNS()`` (in a thread) and our ``locate_ns()`` find the name server by a UDP query to
127.0.0.1 (``BROADCAST_ADDRS``) on a free port (``NS_BCPORT``), while ``NS_HOST:NS_PORT``
points at a port where nothing listens, so only the broadcast can find it.
"""

from __future__ import annotations

import socket
from typing import Any

import Pyro4
import Pyro4.naming
from Pyro4 import constants
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from pyro.client import locate_ns
from pyro.nameserver import (
    REQUEST_NSURI,
    BroadcastResponder,
    listen_broadcast,
    register_name_server,
)

from .support import our_server
from .support.asynctest import async_test
from .support.config import patch_config
from .support.pyro4_peers import free_port


@Pyro4.expose
class Thing:
    def hello(self) -> str:
        return "hi"


class RecordingDatagrams:
    def __init__(self) -> None:
        self.written: list[tuple[bytes, Any]] = []

    def write(self, datagram: bytes, addr: Any) -> None:
        self.written.append((datagram, addr))


class ResponderTests(TestCase):
    def responder(self, uri: str) -> tuple[BroadcastResponder, RecordingDatagrams]:
        responder = BroadcastResponder(uri)
        transport = RecordingDatagrams()
        responder.transport = transport  # type: ignore[assignment]
        return responder, transport

    def test_answers_the_query_with_the_uri(self) -> None:
        responder, transport = self.responder("PYRO:Pyro.NameServer@192.0.2.7:9090")
        responder.datagramReceived(REQUEST_NSURI, ("127.0.0.1", 5555))
        self.assertEqual(transport.written,
                         [(b"PYRO:Pyro.NameServer@192.0.2.7:9090", ("127.0.0.1", 5555))])
        self.assertEqual(responder.requests, 1)

    def test_ignores_anything_else(self) -> None:
        responder, transport = self.responder("PYRO:Pyro.NameServer@192.0.2.7:9090")
        for junk in (b"", b"GET_NSURI\n", b"get_nsuri", b"\xff" * 100):
            responder.datagramReceived(junk, ("127.0.0.1", 5555))
        self.assertEqual((transport.written, responder.requests), ([], 0))

    def test_every_interface_is_answered_with_the_one_that_reaches_the_client(self) -> None:
        responder, transport = self.responder("PYRO:Pyro.NameServer@0.0.0.0:9090")
        responder.datagramReceived(REQUEST_NSURI, ("127.0.0.1", 5555))
        self.assertEqual(transport.written[0][0], b"PYRO:Pyro.NameServer@127.0.0.1:9090")
        self.assertEqual(str(responder.ns_uri), "PYRO:Pyro.NameServer@0.0.0.0:9090")  # kept


class NameServerOnTheReactorTests(TestCase):
    def setUp(self) -> None:
        self.factory = our_server.serve(self)
        self.nameserver, self.ns_uri = register_name_server(self.factory)
        self.udp = listen_broadcast(self.ns_uri, interface="127.0.0.1", port=0)
        self.addCleanup(self.udp.stopListening)
        # nothing listens at NS_HOST:NS_PORT: only the broadcast query can find the server
        patch_config(self, NS_HOST="127.0.0.1", NS_PORT=free_port(),
                               BROADCAST_ADDRS="127.0.0.1", NS_BCPORT=self.udp.getHost().port)

    def test_it_lists_itself_as_pyro4_does(self) -> None:
        uri, metadata = self.nameserver.lookup(constants.NAMESERVER_NAME, return_metadata=True)
        self.assertEqual((str(uri), set(metadata)),
                         (str(self.ns_uri), {"class:Pyro4.naming.NameServer"}))

    @async_test
    async def test_pyro4_locate_ns_finds_it_by_broadcast(self) -> None:
        thing = self.factory.register(Thing())

        def blocking() -> Any:
            with Pyro4.locateNS() as ns:
                found = str(ns._pyroUri)
                ns.register("example.thing", thing)
            with Pyro4.Proxy("PYRONAME:example.thing") as proxy:  # located the same way
                return found, proxy.hello()

        found, hello = await our_server.in_thread(blocking)
        self.assertEqual((found, hello), (str(self.ns_uri), "hi"))
        self.assertEqual(self.udp.protocol.requests, 2)  # one per locateNS()

    @async_test
    async def test_our_locate_ns_finds_it_by_broadcast(self) -> None:
        proxy = await locate_ns()
        self.addCleanup(proxy.close)
        self.assertEqual(str(proxy.uri), str(self.ns_uri))
        self.assertEqual(await proxy.ping(), None)
        self.assertEqual(self.udp.protocol.requests, 1)

    def test_default_port_and_interface_are_pyro4s(self) -> None:
        port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        port.bind(("127.0.0.1", 0))
        number = port.getsockname()[1]
        port.close()
        patch_config(self, NS_BCPORT=number, NS_BCHOST="127.0.0.1")
        udp = listen_broadcast(self.ns_uri, reactor=reactor)
        self.addCleanup(udp.stopListening)
        self.assertEqual((udp.getHost().host, udp.getHost().port), ("127.0.0.1", number))


# -- python -m pyro ns: the command, as a user runs it -----------------------------------------


def test_the_ns_command_serves_and_answers_broadcasts() -> None:
    """``python -m pyro ns``, started like ``python -m Pyro4.naming``, is found by Pyro4
    clients directly and by broadcast; SIGTERM stops it cleanly."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pyro

    env = {name: value for name, value in os.environ.items() if not name.startswith("PYRO_")}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(pyro.__file__).resolve().parent.parent), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "pyro", "ns", "-n", "127.0.0.1", "-p", "0",
               "--bchost", "127.0.0.1", "--bcport", "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(3)]
        assert lines[0].startswith("NS running on 127.0.0.1:"), lines
        assert lines[1].startswith("Broadcast server running on 127.0.0.1:"), lines
        assert lines[2].startswith("URI = PYRO:Pyro.NameServer@127.0.0.1:"), lines
        ns_port = int(lines[0].split()[3].rsplit(":", 1)[1])
        bc_port = int(lines[1].rsplit(":", 1)[1])
        with Pyro4.locateNS("127.0.0.1", ns_port) as ns:
            assert str(ns._pyroUri) == lines[2][len("URI = "):]
            assert constants.NAMESERVER_NAME in ns.list()
        saved = {name: getattr(Pyro4.config, name)
                 for name in ("NS_HOST", "NS_PORT", "BROADCAST_ADDRS", "NS_BCPORT")}
        try:
            Pyro4.config.NS_HOST, Pyro4.config.NS_PORT = "127.0.0.1", free_port()
            Pyro4.config.BROADCAST_ADDRS, Pyro4.config.NS_BCPORT = "127.0.0.1", bc_port
            with Pyro4.locateNS() as ns:  # nothing at NS_HOST:NS_PORT: found by broadcast
                assert ns._pyroUri.port == ns_port
        finally:
            for name, value in saved.items():
                setattr(Pyro4.config, name, value)
        process.terminate()
        assert process.wait(20) == 0
        stderr = process.stderr.read() if process.stderr else ""
        assert "Traceback" not in stderr, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(20)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
