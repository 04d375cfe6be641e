"""pyro.service: ServerService on a MemoryReactor (where and when it binds, what stopping
does), NameServerService for real on 127.0.0.1 (found by broadcast, Pyro4's rules for when
not to answer broadcasts, storage, settings passed on), both inside a MultiService."""

from __future__ import annotations

import errno
from typing import Any

import Pyro4
import Pyro4.naming
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactor, RaisingMemoryReactor
from twisted.trial.unittest import TestCase

import pyro.service
from pyro.client import locate_ns
from pyro.protocol import Pyro4ProtocolFactory
from pyro.service import BroadcastListenError, NameServerService, ServerService

from .support import our_server
from .support.asynctest import async_test, failure_of
from .support.config import patch_config
from .support.pyro4_peers import free_port


@Pyro4.expose
class Thing:
    def hello(self) -> str:
        return "hi"


class ServerServiceTests(TestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactor()
        self.factory = Pyro4ProtocolFactory(reactor=self.reactor)

    def test_binds_in_privileged_start_once(self) -> None:
        service = ServerService(self.factory, "tcp:9090:interface=127.0.0.1:backlog=4096")
        service.privilegedStartService()
        self.assertEqual(self.reactor.tcpServers, [(9090, self.factory, 4096, "127.0.0.1")])
        port = self.successResultOf(service.whenListening())
        self.assertEqual((service.port, self.factory.ports), (port, [port]))
        service.startService()  # (twistd calls both)
        self.assertEqual(len(self.reactor.tcpServers), 1)

    def test_binds_in_start_when_not_privileged_first(self) -> None:
        service = ServerService(self.factory, TCP4ServerEndpoint(self.reactor, 0))
        waiting = service.whenListening()
        self.assertNoResult(waiting)
        service.startService()
        self.assertEqual(self.successResultOf(waiting), self.factory.ports[0])

    def test_a_port_that_cannot_be_bound_raises_at_once(self) -> None:
        in_use = CannotListenError("127.0.0.1", 9090, OSError(errno.EADDRINUSE, "in use"))
        factory = Pyro4ProtocolFactory(reactor=RaisingMemoryReactor(listenException=in_use))
        service = ServerService(factory, "tcp:9090:interface=127.0.0.1")
        with self.assertRaises(CannotListenError) as raised:
            service.privilegedStartService()
        self.assertIs(raised.exception, in_use)
        self.failureResultOf(service.whenListening(), CannotListenError)

    def test_stopping_drains_the_factory_with_the_grace_period(self) -> None:
        drains: list[Any] = []
        self.factory.drain = lambda timeout: drains.append(timeout) or defer.succeed(None)
        service = ServerService(self.factory, "tcp:0", grace=2.5)
        service.startService()
        self.assertIsNone(self.successResultOf(service.stopService()))
        self.assertEqual((drains, service.running), ([2.5], False))

    @async_test
    async def test_services_sharing_a_factory_stop_together(self) -> None:
        factory = Pyro4ProtocolFactory()
        parent = MultiService()
        for _ in range(2):
            ServerService(factory, "tcp:0:interface=127.0.0.1").setServiceParent(parent)
        parent.privilegedStartService()
        parent.startService()
        self.assertEqual(len(factory.ports), 2)
        uri = factory.register(Thing())
        self.assertEqual(await our_server.call(uri, "hello"), "hi")
        await parent.stopService()
        self.assertEqual((factory.ports, factory.protocols), ([], set()))


class NameServerServiceTests(TestCase):
    def start(self, service: NameServerService) -> defer.Deferred[Any]:
        service.privilegedStartService()
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        return service.ready

    @async_test
    async def test_serves_and_answers_broadcasts(self) -> None:
        service = NameServerService("tcp:0:interface=127.0.0.1", bchost="127.0.0.1", bcport=0)
        uri = await self.start(service)
        self.assertEqual(str(uri), "PYRO:Pyro.NameServer@127.0.0.1:%d" % service.server.port
                         .getHost().port)
        # nothing at NS_HOST:NS_PORT: only the broadcast responder can tell where it is
        patch_config(self, NS_HOST="127.0.0.1", NS_PORT=free_port(),
                     BROADCAST_ADDRS="127.0.0.1",
                     NS_BCPORT=service.broadcast_port.getHost().port)
        ns = await locate_ns()
        self.assertEqual(str(ns.uri), str(uri))
        await ns.register("example.thing", "PYRO:thing@127.0.0.1:1")
        await ns.close()
        self.assertEqual(str(service.nameserver.lookup("example.thing")),
                         "PYRO:thing@127.0.0.1:1")
        broadcast = service.broadcast_port
        await service.stopService()
        self.assertEqual((service.factory.ports, broadcast.connected), ([], False))

    @async_test
    async def test_no_broadcast_on_loopback_unless_a_bchost_is_given(self) -> None:
        service = NameServerService("tcp:0:interface=127.0.0.1")
        await self.start(service)
        self.assertEqual((service.broadcast_port, service.broadcast_note),
                         (None, "Not starting broadcast server for localhost."))

    @async_test
    async def test_no_broadcast_when_told(self) -> None:
        service = NameServerService("tcp:0:interface=127.0.0.1", broadcast=False,
                                    bchost="127.0.0.1")
        await self.start(service)
        self.assertEqual((service.broadcast_port, service.broadcast_note),
                         (None, "Not starting broadcast server."))

    @async_test
    async def test_a_broadcast_port_in_use(self) -> None:
        taken = NameServerService("tcp:0:interface=127.0.0.1", bchost="127.0.0.1", bcport=0)
        await self.start(taken)
        service = NameServerService("tcp:0:interface=127.0.0.1", bchost="127.0.0.1",
                                    bcport=taken.broadcast_port.getHost().port)
        error = await failure_of(self.start(service))
        self.assertIsInstance(error, BroadcastListenError)

    @async_test
    async def test_a_storage_object_is_used_and_closed(self) -> None:
        class Recording(Pyro4.naming.MemoryStorage):
            closed = False

            def close(self) -> None:
                self.closed = True

        storage = Recording()
        service = NameServerService("tcp:0:interface=127.0.0.1", storage=storage)
        await self.start(service)
        self.assertIs(service.nameserver.storage, storage)
        self.assertIn("Pyro.NameServer", storage)
        await service.stopService()
        self.assertTrue(storage.closed)

    @async_test
    async def test_settings_go_to_register_name_server(self) -> None:
        calls: list[Any] = []
        real = pyro.service.register_name_server

        def recording(factory: Any, storage: Any, **kwargs: Any) -> Any:
            calls.append((storage, kwargs))
            return real(factory, storage, **kwargs)

        self.patch(pyro.service, "register_name_server", recording)
        service = NameServerService("tcp:0:interface=127.0.0.1", autoclean=30.0,
                                    hmac_key=b"k3y")
        await self.start(service)
        ((storage, kwargs),) = calls
        self.assertIsInstance(storage, Pyro4.naming.MemoryStorage)
        self.assertEqual(kwargs, {"autoclean": 30.0, "hmac_key": b"k3y"})
        self.assertEqual(service.factory._pyroHmacKey, b"k3y")

    @async_test
    async def test_names_the_host_and_the_nat_address(self) -> None:
        service = NameServerService("tcp:0:interface=127.0.0.1", host="localhost",
                                    nathost="ns.example.org")
        await self.start(service)
        port = service.server.port.getHost().port
        self.assertEqual((str(service.internal_uri), str(service.uri)),
                         ("PYRO:Pyro.NameServer@localhost:%d" % port,
                          "PYRO:Pyro.NameServer@ns.example.org:%d" % port))
