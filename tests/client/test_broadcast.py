"""Finding the name server as Pyro4's ``locateNS`` does: local first, UDP broadcast, NS_HOST.

Two halves. :class:`BroadcastLookupUnitTests` drives :func:`pyro.client.locate_ns` on a
``MemoryReactorClock`` with a fake UDP port: every datagram, every timer and every connection
attempt is visible, nothing sleeps. :class:`BroadcastLookupTests` runs against Pyro4's own
``BroadcastServer`` and name server on the real reactor, on the loopback interface only (the
broadcast address is ``127.255.255.255``; no test sends to the real network).

``Pyro4.config`` is global: every test sets the items the lookup reads (``NS_HOST``,
``NS_PORT``, ``NS_BCPORT``, ``BROADCAST_ADDRS``, ``PREFER_IP_VERSION``) and cleanups restore
them.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import tempfile
from typing import Any

import Pyro4
import Pyro4.naming
from Pyro4 import constants, errors
from Pyro4.core import URI
from twisted.internet import defer, reactor, task, threads
from twisted.internet.interfaces import IReactorUDP, IReadDescriptor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from pyro.client import DeferredProxy, locate_ns, naming, resolve

from ..support import our_server, pyro4_peers
from ..support.asynctest import async_test, failure_of
from ..support.config import patch_config
from .test_unit import NS_META, SERPENT, Peer

# -- helpers -----------------------------------------------------------------------------




def free_udp_port(host: str = "") -> int:
    """A UDP port that was free a moment ago (on every interface by default)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@functools.lru_cache(maxsize=1)
def loopback_broadcast_works() -> bool:
    """Whether a datagram to 127.255.255.255 reaches a socket bound to 0.0.0.0 here (it does
    on Linux, gVisor included; not on every platform)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        server.bind(("0.0.0.0", 0))
        server.settimeout(1.0)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            client.sendto(b"probe", ("127.255.255.255", server.getsockname()[1]))
            return server.recvfrom(100)[0] == b"probe"
        except OSError:
            return False


def hosts_file(testcase: TestCase, *lines: str) -> None:
    """Point the lookup at a hosts file of our own (it decides whether 127.0.1.1 is tried)."""
    fd, path = tempfile.mkstemp(prefix="hosts-")
    with os.fdopen(fd, "w") as file:
        file.write("".join(line + "\n" for line in lines))
    testcase.addCleanup(os.remove, path)
    testcase.patch(naming, "_HOSTS_FILE", path)


class FakeUDPPort:
    """What ``listenUDP`` returns in the unit tests: records datagrams, can refuse some."""

    def __init__(self, protocol: DatagramProtocol, port: int, interface: str,
                 unreachable: set[str]):
        self.protocol = protocol
        self.port = port
        self.interface = interface
        self.unreachable = unreachable
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.broadcast = False
        self.stopped = False

    def write(self, datagram: bytes, addr: tuple[str, int]) -> None:
        assert not self.stopped
        if addr[0] in self.unreachable:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        self.written.append((datagram, addr))

    def setBroadcastAllowed(self, enabled: bool) -> None:
        self.broadcast = enabled

    def stopListening(self) -> defer.Deferred[None]:
        self.stopped = True
        self.protocol.doStop()
        return defer.succeed(None)

    def receive(self, datagram: bytes, sender: tuple[str, int] = ("192.0.2.9", 9091)) -> None:
        assert not self.stopped
        self.protocol.datagramReceived(datagram, sender)


@implementer(IReactorUDP)
class UDPMemoryReactor(MemoryReactorClock):
    """``MemoryReactorClock`` plus a fake ``listenUDP``."""

    def __init__(self) -> None:
        super().__init__()
        self.udpPorts: list[FakeUDPPort] = []
        self.unreachable: set[str] = set()

    def listenUDP(self, port: int, protocol: DatagramProtocol, interface: str = "",
                  maxPacketSize: int = 8192) -> FakeUDPPort:
        fake = FakeUDPPort(protocol, port, interface, self.unreachable)
        self.udpPorts.append(fake)
        protocol.makeConnection(fake)  # as Twisted's udp.Port: startProtocol runs now
        return fake


GET = b"GET_NSURI"


# -- unit tests --------------------------------------------------------------------------


class BroadcastLookupUnitTests(TestCase):
    def setUp(self) -> None:
        self.reactor = UDPMemoryReactor()
        patch_config(self, NS_HOST="127.0.0.1", NS_PORT=9090, NS_BCPORT=9091,
                           BROADCAST_ADDRS="<broadcast>, 0.0.0.0", PREFER_IP_VERSION=4)
        hosts_file(self, "127.0.0.1 localhost")

    def tearDown(self) -> None:
        self.assertEqual(self.reactor.getDelayedCalls(), [], "a timer was left behind")
        for port in self.reactor.udpPorts:
            self.assertTrue(port.stopped, "a UDP port was left open")

    def locate(self, *args: Any, **kwargs: Any) -> defer.Deferred[DeferredProxy]:
        return locate_ns(*args, reactor=self.reactor, **kwargs)

    def tcp_attempts(self) -> list[tuple[str, int]]:
        return [(host, port) for host, port, *_ in self.reactor.tcpClients]

    def name_server(self, index: int = -1) -> Peer:
        """Play the name server on a connection attempt: accept it, answer the handshake."""
        peer = Peer(self.reactor, index).accept()
        connect = peer.connect_ok(meta=NS_META)
        self.assertEqual(SERPENT.deserializeData(connect.data)["object"],
                         constants.NAMESERVER_NAME)
        return peer

    def close(self, proxy: DeferredProxy, peer: Peer) -> None:
        closed = proxy.close()
        peer.lose()
        self.successResultOf(closed)

    def test_local_name_server_first(self) -> None:
        d = self.locate()
        self.assertEqual(self.tcp_attempts(), [("127.0.0.1", 9090)])
        peer = self.name_server()
        proxy = self.successResultOf(d)
        self.assertEqual(str(proxy.uri), "PYRO:Pyro.NameServer@127.0.0.1:9090")
        self.assertEqual(self.reactor.udpPorts, [], "no broadcast when the local one answers")
        self.close(proxy, peer)

    def test_broadcast_after_the_local_attempt(self) -> None:
        d = self.locate()
        Peer(self.reactor, -1).refuse()
        (udp,) = self.reactor.udpPorts
        self.assertEqual((udp.port, udp.interface), (0, ""))
        self.assertTrue(udp.broadcast)
        self.assertEqual(udp.written, [(GET, ("<broadcast>", 9091)), (GET, ("0.0.0.0", 9091))])
        udp.receive(b"PYRO:Pyro.NameServer@192.0.2.7:9999")
        self.assertTrue(udp.stopped)
        self.assertEqual(self.tcp_attempts()[-1], ("192.0.2.7", 9999))
        peer = self.name_server()
        proxy = self.successResultOf(d)
        self.assertEqual(str(proxy.uri), "PYRO:Pyro.NameServer@192.0.2.7:9999")
        self.close(proxy, peer)

    def test_three_rounds_of_0_7_seconds_then_ns_host(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1")  # not local: no direct attempt first
        d = self.locate()
        self.assertEqual(self.tcp_attempts(), [])
        (udp,) = self.reactor.udpPorts
        self.assertEqual(len(udp.written), 2)
        self.reactor.advance(0.69)
        self.assertEqual(len(udp.written), 2)
        self.reactor.advance(0.01)
        self.assertEqual(len(udp.written), 4)  # round two: the same datagrams again
        self.reactor.advance(0.7)
        self.assertEqual(len(udp.written), 6)
        self.assertFalse(udp.stopped)
        self.assertEqual(self.tcp_attempts(), [])
        self.reactor.advance(0.7)
        self.assertTrue(udp.stopped)
        self.assertEqual(self.tcp_attempts(), [("192.0.2.1", 9090)])
        Peer(self.reactor, -1).refuse()
        failure = self.failureResultOf(d, errors.NamingError)
        self.assertEqual(str(failure.value), "Failed to locate the nameserver")

    def test_falls_back_to_ns_host(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1", NS_PORT=9191)
        d = self.locate()
        self.reactor.pump([0.7] * 3)
        self.assertEqual(self.tcp_attempts(), [("192.0.2.1", 9191)])
        peer = self.name_server()
        proxy = self.successResultOf(d)
        self.assertEqual(str(proxy.uri), "PYRO:Pyro.NameServer@192.0.2.1:9191")
        self.close(proxy, peer)

    def test_the_local_address_is_not_tried_twice(self) -> None:
        # Pyro4 would connect to NS_HOST:NS_PORT again after the broadcast; that address
        # just refused us, so the lookup fails with the first attempt's error instead
        d = self.locate()
        Peer(self.reactor, -1).refuse()
        self.reactor.pump([0.7] * 3)
        self.failureResultOf(d, errors.NamingError)
        self.assertEqual(self.tcp_attempts(), [("127.0.0.1", 9090)])

    def test_garbage_replies_are_ignored(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1")
        d = self.locate()
        (udp,) = self.reactor.udpPorts
        for garbage in (b"", b"hello", b"\xff\xfe\x00", b"GET_NSURI",
                        b"PYRONAME:Pyro.NameServer@192.0.2.7:9999", b"PYRO:missing-location",
                        b"PYRO:Pyro.NameServer@192.0.2.7:99999999",
                        b"PYRO:Pyro.NameServer@./u:/tmp/ns.socket"):
            udp.receive(garbage)
        self.assertNoResult(d)
        self.assertFalse(udp.stopped)
        self.reactor.advance(1.0)  # a reply in a later round counts, as in Pyro4
        udp.receive(b"PYRO:Pyro.NameServer@192.0.2.7:9999")
        self.assertTrue(udp.stopped)
        udp.protocol.datagramReceived(b"PYRO:Pyro.NameServer@192.0.2.8:1", ("192.0.2.8", 1))
        self.assertEqual(self.tcp_attempts(), [("192.0.2.7", 9999)])
        peer = self.name_server()
        self.close(self.successResultOf(d), peer)

    def test_broadcast_disabled(self) -> None:
        d = self.locate(broadcast=False)
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)
        self.assertEqual(self.reactor.udpPorts, [])

    def test_broadcast_disabled_goes_straight_to_ns_host(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1")
        d = self.locate(broadcast=False)
        self.assertEqual(self.tcp_attempts(), [("192.0.2.1", 9090)])
        self.assertEqual(self.reactor.udpPorts, [])
        peer = self.name_server()
        self.close(self.successResultOf(d), peer)

    def test_ipv6_preference_skips_broadcast(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1", PREFER_IP_VERSION=6)
        d = self.locate()
        self.assertEqual(self.reactor.udpPorts, [])
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)

    def test_a_reactor_without_udp_skips_broadcast(self) -> None:
        self.reactor = MemoryReactorClock()  # type: ignore[assignment]
        self.reactor.udpPorts = []  # type: ignore[attr-defined]
        patch_config(self, NS_HOST="192.0.2.1")
        d = self.locate()
        self.assertEqual(self.tcp_attempts(), [("192.0.2.1", 9090)])
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)

    def test_the_port_argument_as_pyro4_uses_it(self) -> None:
        # locateNS(port=p) without a host: p for the local attempt *and* as the UDP port of
        # the broadcast; the NS_HOST fallback uses NS_PORT
        d = self.locate(port=5555)
        self.assertEqual(self.tcp_attempts(), [("127.0.0.1", 5555)])
        Peer(self.reactor, -1).refuse()
        (udp,) = self.reactor.udpPorts
        self.assertEqual({addr[1] for _, addr in udp.written}, {5555})
        self.reactor.pump([0.7] * 3)
        self.assertEqual(self.tcp_attempts(), [("127.0.0.1", 5555), ("127.0.0.1", 9090)])
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)

    def test_an_explicit_host_is_the_only_place_looked(self) -> None:
        d = self.locate("192.0.2.3", 7777)
        self.assertEqual(self.tcp_attempts(), [("192.0.2.3", 7777)])
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)
        self.assertEqual(self.reactor.udpPorts, [])

    def test_debian_127_0_1_1(self) -> None:
        hosts_file(self, "127.0.0.1 localhost", "127.0.1.1  myhost.example myhost  # Debian")
        d = self.locate()
        Peer(self.reactor, -1).refuse()
        self.assertEqual(self.tcp_attempts(), [("127.0.0.1", 9090), ("127.0.1.1", 9090)])
        self.assertEqual(self.reactor.udpPorts, [])
        peer = self.name_server()
        self.close(self.successResultOf(d), peer)

    def test_localhost_and_ipv6_loopback_are_local(self) -> None:
        for ns_host, expected in (("localhost", ("127.0.0.1", 9090)), ("::1", ("::1", 9090))):
            patch_config(self, NS_HOST=ns_host)
            d = self.locate(broadcast=False)
            self.assertEqual(self.tcp_attempts()[-1], expected)
            Peer(self.reactor, -1).refuse()
            self.failureResultOf(d, errors.NamingError)

    def test_answer_that_cannot_be_reached_is_final(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1")
        d = self.locate()
        self.reactor.udpPorts[0].receive(b"PYRO:Pyro.NameServer@192.0.2.7:9999")
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)
        self.assertEqual(self.tcp_attempts(), [("192.0.2.7", 9999)])  # as Pyro4: no fallback

    def test_send_errors_do_not_end_the_lookup(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1")
        self.reactor.unreachable.add("<broadcast>")
        d = self.locate()
        (udp,) = self.reactor.udpPorts
        self.assertEqual(udp.written, [(GET, ("0.0.0.0", 9091))])
        udp.receive(b"PYRO:Pyro.NameServer@127.0.0.1:9999")
        peer = self.name_server()
        self.close(self.successResultOf(d), peer)

    def test_addresses_twisted_cannot_send_to_are_skipped(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1",
                           BROADCAST_ADDRS="nshost.example, '', ::1, 192.0.2.255")
        d = self.locate()
        (udp,) = self.reactor.udpPorts
        self.assertEqual(udp.written, [(GET, ("0.0.0.0", 9091)), (GET, ("192.0.2.255", 9091))])
        self.reactor.pump([0.7] * 3)
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)

    def test_no_usable_address_means_no_broadcast(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1", BROADCAST_ADDRS="nshost.example")
        d = self.locate()
        self.assertEqual(self.reactor.udpPorts, [])
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)

    def test_timings_are_read_at_each_lookup(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1")
        self.patch(naming, "BROADCAST_TRIES", 1)
        self.patch(naming, "BROADCAST_WAIT", 0.1)
        d = self.locate()
        self.reactor.advance(0.1)
        self.assertTrue(self.reactor.udpPorts[0].stopped)
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)

    def test_cancel_during_the_broadcast(self) -> None:
        patch_config(self, NS_HOST="192.0.2.1")
        d = self.locate()
        self.reactor.advance(0.3)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertTrue(self.reactor.udpPorts[0].stopped)
        self.assertEqual(self.tcp_attempts(), [])

    def test_patient_resolve_with_broadcast(self) -> None:
        d = resolve("PYRONAME:thing", reactor=self.reactor, patient=True, max_tries=2,
                    backoff=lambda attempt: 5.0)
        Peer(self.reactor, -1).refuse()  # attempt 1: no local name server ...
        self.reactor.pump([0.7] * 3)  # ... no answer to the broadcast
        self.assertNoResult(d)
        self.assertEqual(len(self.reactor.udpPorts), 1)
        self.reactor.advance(5.0)  # attempt 2
        self.assertEqual(self.tcp_attempts(), [("127.0.0.1", 9090)] * 2)
        Peer(self.reactor, -1).refuse()
        self.reactor.udpPorts[1].receive(b"PYRO:Pyro.NameServer@192.0.2.7:9999")
        ns = self.name_server()
        (lookup,) = ns.received()
        self.assertEqual(Peer.call_of(lookup), (constants.NAMESERVER_NAME, "lookup", ("thing",), {}))
        ns.reply(lookup, URI("PYRO:obj@192.0.2.7:4444"))
        ns.lose()
        self.assertEqual(str(self.successResultOf(d)), "PYRO:obj@192.0.2.7:4444")

    def test_patient_resolve_gives_up(self) -> None:
        d = resolve("PYRONAME:thing", reactor=self.reactor, patient=True, max_tries=2,
                    backoff=lambda attempt: 5.0)
        Peer(self.reactor, -1).refuse()
        self.reactor.pump([0.7] * 3)
        self.reactor.advance(5.0)
        Peer(self.reactor, -1).refuse()
        self.reactor.pump([0.7] * 3)
        self.failureResultOf(d, errors.NamingError)
        self.assertEqual(len(self.reactor.udpPorts), 2)

    def test_resolve_without_broadcast(self) -> None:
        d = resolve("PYRONAME:thing", reactor=self.reactor, broadcast=False)
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)
        self.assertEqual(self.reactor.udpPorts, [])

    def test_resolve_uses_the_uri_location_without_broadcast(self) -> None:
        d = resolve("PYRONAME:thing@192.0.2.5:6000", reactor=self.reactor)
        self.assertEqual(self.tcp_attempts(), [("192.0.2.5", 6000)])
        Peer(self.reactor, -1).refuse()
        self.failureResultOf(d, errors.NamingError)
        self.assertEqual(self.reactor.udpPorts, [])


# -- against Pyro4's BroadcastServer and name server, on the real reactor ------------------


@Pyro4.expose
class Echo:
    def echo(self, value: Any) -> Any:
        return value


class CountingBroadcastServer(Pyro4.naming.BroadcastServer):
    """Pyro4's broadcast responder, counting the datagrams it read."""

    requests = 0

    def processRequest(self) -> None:
        self.requests += 1
        super().processRequest()


@implementer(IReadDescriptor)
class _ReactorDriven:
    """Serve a Pyro4 ``BroadcastServer`` from the reactor: its socket is readable, so
    ``processRequest``'s ``recvfrom`` does not block, and no thread is needed."""

    def __init__(self, server: Pyro4.naming.BroadcastServer):
        self.server = server

    def fileno(self) -> int:
        return self.server.fileno()

    def doRead(self) -> None:
        self.server.processRequest()

    def connectionLost(self, reason: Any) -> None:
        pass

    def logPrefix(self) -> str:
        return "Pyro4 BroadcastServer"


class Responder(DatagramProtocol):
    """A broadcast responder of our own that answers with the given datagrams, in order."""

    noisy = False

    def __init__(self, *replies: bytes):
        self.replies = replies
        self.requests: list[bytes] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.requests.append(datagram)
        for reply in self.replies:
            self.transport.write(reply, addr)


class BroadcastLookupTests(TestCase):
    def setUp(self) -> None:
        self.bcport = free_udp_port()
        # NS_HOST is local but nobody listens on NS_PORT: the direct attempt is refused at
        # once, and the broadcast has to find the name server
        patch_config(self, NS_HOST="127.0.0.1", NS_PORT=pyro4_peers.free_port(),
                           NS_BCPORT=self.bcport, BROADCAST_ADDRS="127.0.0.1",
                           PREFER_IP_VERSION=4)
        hosts_file(self, "127.0.0.1 localhost")

    def broadcast_server(self, ns_uri: URI, bchost: str = "127.0.0.1"
                         ) -> CountingBroadcastServer:
        server = CountingBroadcastServer(ns_uri, bchost=bchost, bcport=self.bcport)
        driven = _ReactorDriven(server)
        reactor.addReader(driven)

        def stop() -> None:
            reactor.removeReader(driven)
            server.close()

        self.addCleanup(stop)
        return server

    def responder(self, *replies: bytes) -> Responder:
        responder = Responder(*replies)
        port = reactor.listenUDP(self.bcport, responder, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return responder

    def name_server(self) -> pyro4_peers.Pyro4NameServerPeer:
        ns = pyro4_peers.serve_pyro4_nameserver(self)
        ns.register_name("test.thing", "PYRO:thing@127.0.0.1:1")
        return ns

    async def locate(self, **kwargs: Any) -> DeferredProxy:
        proxy = await locate_ns(**kwargs)
        self.addCleanup(proxy.close)
        return proxy

    @async_test
    async def test_real_broadcast_finds_the_name_server(self) -> None:
        if not loopback_broadcast_works():
            raise self.skipTest("no broadcast on the loopback interface here")
        patch_config(self, BROADCAST_ADDRS="127.255.255.255")
        ns = self.name_server()
        server = self.broadcast_server(ns.uri, bchost="0.0.0.0")
        proxy = await self.locate()
        self.assertEqual(str(proxy.uri), str(ns.uri))
        self.assertEqual(str(await proxy.lookup("test.thing")), "PYRO:thing@127.0.0.1:1")
        self.assertGreaterEqual(server.requests, 1)
        # Pyro4's own locateNS, in a thread, finds the same one the same way
        pyro4_proxy = await threads.deferToThread(Pyro4.locateNS)
        self.assertEqual(str(pyro4_proxy._pyroUri), str(ns.uri))
        pyro4_proxy._pyroRelease()

    @async_test
    async def test_broadcast_server_answers(self) -> None:
        ns = self.name_server()
        server = self.broadcast_server(ns.uri)
        proxy = await self.locate()
        self.assertEqual(str(proxy.uri), str(ns.uri))
        self.assertEqual(server.requests, 1)
        # a PYRONAME: URI without a location resolves the same way, through a DeferredProxy
        resolved = await resolve("PYRONAME:test.thing")
        self.assertEqual(str(resolved), "PYRO:thing@127.0.0.1:1")
        self.assertEqual(server.requests, 2)

    @async_test
    async def test_broadcast_disabled(self) -> None:
        ns = self.name_server()
        server = self.broadcast_server(ns.uri)
        exc = await failure_of(locate_ns(broadcast=False))
        self.assertIsInstance(exc, errors.NamingError)
        exc = await failure_of(resolve("PYRONAME:test.thing", broadcast=False))
        self.assertIsInstance(exc, errors.NamingError)
        proxy = DeferredProxy("PYRONAME:test.thing", broadcast=False)
        self.addCleanup(proxy.close)
        exc = await failure_of(proxy.connect())
        self.assertIsInstance(exc, errors.NamingError)
        self.assertEqual(server.requests, 0)

    @async_test
    async def test_no_answer_fails_in_time(self) -> None:
        self.patch(naming, "BROADCAST_TRIES", 2)
        self.patch(naming, "BROADCAST_WAIT", 0.2)
        responder = self.responder()  # hears the queries, says nothing
        start = reactor.seconds()
        exc = await failure_of(locate_ns())
        elapsed = reactor.seconds() - start
        self.assertIsInstance(exc, errors.NamingError)
        self.assertEqual(str(exc), "Failed to locate the nameserver")
        self.assertEqual(responder.requests, [b"GET_NSURI"] * 2)
        self.assertGreaterEqual(elapsed, 0.35)
        self.assertLess(elapsed, 3.0)
        # trial checks that the query's UDP port and timers are gone

    @async_test
    async def test_garbage_reply_is_ignored(self) -> None:
        ns = self.name_server()
        responder = self.responder(b"garbage", b"\x00\xff" * 20, str(ns.uri).encode())
        proxy = await self.locate()
        self.assertEqual(str(proxy.uri), str(ns.uri))
        self.assertEqual(responder.requests, [b"GET_NSURI"])

    @async_test
    async def test_only_garbage_falls_back(self) -> None:
        self.patch(naming, "BROADCAST_TRIES", 1)
        self.patch(naming, "BROADCAST_WAIT", 0.2)
        self.responder(b"garbage")
        exc = await failure_of(locate_ns())
        self.assertIsInstance(exc, errors.NamingError)

    @async_test
    async def test_patient_proxy_waits_for_a_broadcast_answer(self) -> None:
        self.patch(naming, "BROADCAST_TRIES", 1)
        self.patch(naming, "BROADCAST_WAIT", 0.05)
        factory = our_server.serve(self)
        uri = factory.register(Echo())
        proxy = DeferredProxy("PYRONAME:late.thing", patient=True, patient_tries=200,
                              backoff=lambda attempt: 0.02)
        self.addCleanup(proxy.close)
        call = proxy.echo(42)
        await task.deferLater(reactor, 0.3, lambda: None)
        self.assertFalse(call.called)  # still looking, no thread involved
        ns = await threads.deferToThread(pyro4_peers.start_pyro4_nameserver)
        self.addCleanup(lambda: threads.deferToThread(ns.stop))
        ns.register_name("late.thing", uri)
        self.broadcast_server(ns.uri)
        self.assertEqual(await call, 42)
