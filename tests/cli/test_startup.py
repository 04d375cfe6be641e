"""pyro.cli.startup in this process: the service ``serve`` and ``twistd pyro-serve`` run, with
a name server of ours (NameServerService) on 127.0.0.1, and the twistd plugin objects."""

from __future__ import annotations

from typing import Any

import Pyro4
from twisted.application.service import IServiceMaker
from twisted.internet import defer, reactor, task
from twisted.logger import capturedLogs
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import TestCase

from pyro.cli import tap
from pyro.cli.registration import NameServerError
from pyro.cli.specs import LoadedObject, ObjectSpec
from pyro.cli.startup import ServeCommandService
from pyro.service import NameServerService

from ..support import our_server
from ..support.asynctest import async_test, failure_of
from ..support.pyro4_peers import free_port


@Pyro4.expose
class Thing:
    def hello(self) -> str:
        return "hi"


def loaded(name: str | None, value: Any = None) -> LoadedObject:
    return LoadedObject(ObjectSpec("mod", "thing", name), value if value is not None else Thing())


class ServeCommandServiceTests(TestCase):
    async def name_server(self) -> NameServerService:
        ns = NameServerService("tcp:0:interface=127.0.0.1", broadcast=False)
        ns.privilegedStartService()
        ns.startService()
        self.addCleanup(ns.stopService)
        await ns.ready
        return ns

    def start(self, service: ServeCommandService) -> defer.Deferred[Any]:
        service.privilegedStartService()
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        return service.ready

    @async_test
    async def test_serves_registers_and_unregisters(self) -> None:
        ns = await self.name_server()
        port = ns.server.port.getHost().port
        service = ServeCommandService(
            [loaded("example.thing"), loaded(None)], ["tcp:0:interface=127.0.0.1"], ns=True,
            ns_host="127.0.0.1", ns_port=port)
        served = await self.start(service)
        (named, uri), (unnamed, other) = served
        self.assertEqual(named.spec.name, "example.thing")
        self.assertEqual(str(uri), "PYRO:example.thing@127.0.0.1:%d"
                         % service.servers[0].port.getHost().port)
        self.assertTrue(other.object.startswith("obj_"))
        self.assertEqual(str(ns.nameserver.lookup("example.thing")), str(uri))
        self.assertEqual(set(ns.nameserver.list()), {"Pyro.NameServer", "example.thing"})
        self.assertEqual(await our_server.call(uri, "hello"), "hi")
        await service.stopService()
        self.assertEqual(set(ns.nameserver.list()), {"Pyro.NameServer"})
        self.assertEqual(service.factory.ports, [])

    @async_test
    async def test_a_name_that_names_another_object_now_is_left_alone(self) -> None:
        ns = await self.name_server()
        service = ServeCommandService(
            [loaded("example.thing")], ["tcp:0:interface=127.0.0.1"], ns=True,
            ns_host="127.0.0.1", ns_port=ns.server.port.getHost().port)
        await self.start(service)
        ns.nameserver.register("example.thing", "PYRO:successor@127.0.0.1:1")
        with capturedLogs() as events:
            await service.stopService()
        self.assertEqual(str(ns.nameserver.lookup("example.thing")),
                         "PYRO:successor@127.0.0.1:1")
        self.assertIn("left example.thing in the name server: it points to "
                      "PYRO:successor@127.0.0.1:1 now",
                      [e["log_format"].format(**e) for e in events])

    @async_test
    async def test_uris_name_the_nat_address(self) -> None:
        ns = await self.name_server()
        service = ServeCommandService(
            [loaded("example.thing")], ["tcp:0:interface=127.0.0.1"], ns=True,
            ns_host="127.0.0.1", ns_port=ns.server.port.getHost().port, nathost="localhost")
        ((_, uri),) = await self.start(service)
        port = service.servers[0].port.getHost().port
        self.assertEqual(str(uri), "PYRO:example.thing@localhost:%d" % port)
        self.assertEqual(str(ns.nameserver.lookup("example.thing")), str(uri))
        self.assertEqual(await our_server.call(uri, "hello"), "hi")

    @async_test
    async def test_no_name_server_fails_ready(self) -> None:
        port = free_port()
        service = ServeCommandService([loaded("example.thing")], ["tcp:0:interface=127.0.0.1"],
                                      ns=True, ns_host="127.0.0.1", ns_port=port)
        error = await failure_of(self.start(service))
        self.assertIsInstance(error, NameServerError)
        self.assertEqual(str(error), (
            "cannot register 'example.thing': no name server at 127.0.0.1:%d (cannot "
            "connect to 127.0.0.1:%d: Connection was refused by other side: 111: "
            "Connection refused.)" % (port, port)))

    @async_test
    async def test_a_refused_registration_fails_ready(self) -> None:
        ns = await self.name_server()

        class ReadOnly(dict):  # type: ignore[type-arg]
            def __setitem__(self, name: str, value: Any) -> None:
                raise OSError("the storage is read-only")

            def close(self) -> None:
                pass

        ns.nameserver.storage = ReadOnly(ns.nameserver.storage)
        service = ServeCommandService(
            [loaded("example.thing")], ["tcp:0:interface=127.0.0.1"], ns=True,
            ns_host="127.0.0.1", ns_port=ns.server.port.getHost().port)
        error = await failure_of(self.start(service))
        self.assertIsInstance(error, NameServerError)
        self.assertEqual(str(error), "cannot register 'example.thing' in the name server: "
                                     "OSError: the storage is read-only")
        self.assertEqual(len(service.registrations), 1)  # stopping the service stops it
        await service.stopService()
        self.assertEqual(service.registrations, [])

    @async_test
    async def test_a_lost_name_is_registered_again_after_the_interval(self) -> None:
        ns = await self.name_server()
        service = ServeCommandService(
            [loaded("example.thing")], ["tcp:0:interface=127.0.0.1"], ns=True,
            ns_host="127.0.0.1", ns_port=ns.server.port.getHost().port, ns_interval=0.05)
        ((_, uri),) = await self.start(service)
        (kept,) = service.registrations
        self.assertEqual(kept.interval, 0.05)
        ns.nameserver.remove("example.thing")
        for _ in range(200):  # at most 10 s
            if kept.registrations == 2:
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(str(ns.nameserver.lookup("example.thing")), str(uri))

    @async_test
    async def test_the_same_object_twice(self) -> None:
        thing = Thing()
        service = ServeCommandService([loaded("a", thing), loaded("b", thing)],
                                      ["tcp:0:interface=127.0.0.1"])
        error = await failure_of(self.start(service))
        self.assertEqual(str(error), "cannot serve mod:thing=b: object or class already has "
                                     "a Pyro id")


class PluginTests(TestCase):
    def test_twisted_finds_both_plugins(self) -> None:
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("pyro-serve", makers)
        self.assertIn("pyro-ns", makers)
        self.assertIs(makers["pyro-serve"].options, tap.ServeOptions)
        self.assertIs(makers["pyro-ns"].options, tap.NameServerOptions)

    def test_options_are_the_commands_and_mistakes_are_usage_errors(self) -> None:
        options = tap.NameServerOptions()
        options.parseOptions(["-n", "127.0.0.1", "-p", "0", "-s", "memory"])
        self.assertEqual((options.config.prog, options.config.listen),
                         ("twistd pyro-ns", "tcp:0:interface=127.0.0.1:backlog=4096"))
        with self.assertRaises(usage.UsageError) as raised:
            tap.ServeOptions().parseOptions(["nosuchmodule:thing"])
        self.assertEqual(str(raised.exception), "cannot import module 'nosuchmodule' "
                                                "(nosuchmodule:thing): no such module")
        self.assertIn("--listen ENDPOINT", tap.ServeOptions().getUsage())

    def test_make_service(self) -> None:
        options = tap.ServeOptions()
        options.parseOptions(["tests.cli.test_startup:Thing=example.thing", "--threads", "3"])
        wrapper = tap.serve.makeService(options)
        self.assertIsInstance(wrapper, tap.TwistdService)
        service = wrapper.service
        self.assertIsInstance(service, ServeCommandService)
        self.assertEqual(list(wrapper), [service])
        self.assertEqual(service.factory.threads, 3)
        self.assertEqual([o.value for o in service.objects], [Thing])
        ns_options = tap.NameServerOptions()
        ns_options.parseOptions(["-n", "127.0.0.1", "-p", "0", "-x"])
        self.assertIsInstance(tap.ns.makeService(ns_options).service, NameServerService)
