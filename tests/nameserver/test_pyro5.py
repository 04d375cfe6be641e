"""One name server for both generations: Pyro5 clients find it, resolve names in it, list it.

``register_name_server`` on our factory; the clients are unmodified Pyro5 (``locate_ns``
directly and by broadcast, ``Proxy("PYRONAME:...")``, ``PYROMETA:``, the name server's own
methods, ``python -m Pyro5.nsc``) and Pyro4, on the same port and the same registry. The
broadcast responder listens on 127.0.0.1 port 0; Pyro5's ``BROADCAST_ADDRS`` and
``NS_BCPORT`` point there, so no packet leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import Pyro4
import Pyro4.errors
import Pyro5.api
import Pyro5.core
import Pyro5.errors
from Pyro4 import constants
from twisted.trial.unittest import TestCase

import pyro
from pyro.nameserver import listen_broadcast, register_name_server, serve_name_server

from ..support.asynctest import async_test
from ..support.config import patch_config
from ..support.our_server import in_thread, serve
from ..support.pyro4_peers import free_port
from ..support.pyro5_peers import patch_pyro5_config


@Pyro5.api.expose
class Thing5:
    def hello(self) -> str:
        return "hello from a Pyro5-style servant"


@Pyro4.expose
class Thing4:
    def hello(self) -> str:
        return "hello from a Pyro4-style servant"


class SharedRegistryTests(TestCase):
    def setUp(self) -> None:
        self.factory = serve(self)
        self.nameserver, self.ns_uri = register_name_server(self.factory)
        self.udp = listen_broadcast(self.ns_uri, interface="127.0.0.1", port=0)
        self.addCleanup(self.udp.stopListening)
        # Pyro5 looks at NS_HOST:NS_PORT first, then broadcasts (to 127.0.0.1 only here)
        patch_pyro5_config(self, NS_HOST="127.0.0.1", NS_PORT=self.ns_uri.port,
                           BROADCAST_ADDRS=["127.0.0.1"], NS_BCPORT=self.udp.getHost().port)
        patch_config(self, NS_HOST="127.0.0.1", NS_PORT=self.ns_uri.port,
                     BROADCAST_ADDRS="127.0.0.1", NS_BCPORT=self.udp.getHost().port)
        self.thing5 = self.factory.register(Thing5(), "thing5")
        self.thing4 = self.factory.register(Thing4(), "thing4")

    @async_test
    async def test_pyro5_locate_ns_directly(self) -> None:
        def located() -> Any:
            with Pyro5.api.locate_ns("127.0.0.1", self.ns_uri.port) as ns:
                ns.ping()
                return str(ns._pyroUri), sorted(ns._pyroMethods)

        uri, methods = await in_thread(located)
        self.assertEqual(uri, str(self.ns_uri))
        # Pyro5's name server API, not Pyro4's (which has no yplookup)
        self.assertEqual(methods, ["count", "list", "lookup", "ping", "register", "remove",
                                   "set_metadata", "yplookup"])
        self.assertEqual(self.udp.protocol.requests, 0)

    @async_test
    async def test_pyro5_locate_ns_by_broadcast(self) -> None:
        patch_pyro5_config(self, NS_HOST="192.0.2.1")  # not local: Pyro5 asks by broadcast

        def located() -> Any:
            with Pyro5.api.locate_ns() as ns:
                return str(ns._pyroUri), ns.count()

        uri, count = await in_thread(located)
        self.assertEqual((uri, count), (str(self.ns_uri), 1))
        self.assertEqual(self.udp.protocol.requests, 1)

    @async_test
    async def test_pyro4_registers_pyro5_resolves(self) -> None:
        def pyro4_registers() -> None:
            with Pyro4.Proxy(self.ns_uri) as ns:
                ns.register("example.four", self.thing4, metadata={"colour:green"})

        await in_thread(pyro4_registers)

        def pyro5_resolves() -> Any:
            with Pyro5.api.locate_ns() as ns:
                uri, metadata = ns.lookup("example.four", return_metadata=True)
            with Pyro5.api.Proxy("PYRONAME:example.four") as by_name:
                named = by_name.hello()
            with Pyro5.api.Proxy("PYROMETA:colour:green") as by_meta:
                meta = by_meta.hello()
            return type(uri), str(uri), metadata, named, meta

        kind, uri, metadata, named, meta = await in_thread(pyro5_resolves)
        self.assertIs(kind, Pyro5.core.URI)  # each generation gets its own URIs
        self.assertEqual(uri, str(self.thing4))
        self.assertEqual(metadata, {"colour:green"})
        self.assertEqual(named, meta)
        self.assertEqual(named, "hello from a Pyro4-style servant")

    @async_test
    async def test_pyro5_registers_pyro4_resolves(self) -> None:
        def pyro5_registers() -> None:
            with Pyro5.api.locate_ns() as ns:
                ns.register("example.five", str(self.thing5), metadata={"colour:blue"})
                ns.register("example.safe", str(self.thing5), safe=True)
                try:
                    ns.register("example.safe", str(self.thing4), safe=True)
                except Pyro5.errors.NamingError as exc:
                    return str(exc)

        self.assertEqual(await in_thread(pyro5_registers),
                         "name already registered: example.safe")

        def pyro4_resolves() -> Any:
            with Pyro4.locateNS() as ns:
                uri = ns.lookup("example.five")
                found = ns.list(metadata_all={"colour:blue"})
            with Pyro4.Proxy("PYRONAME:example.five") as proxy:
                return type(uri), found, proxy.hello()

        kind, found, hello = await in_thread(pyro4_resolves)
        self.assertIs(kind, Pyro4.core.URI)
        self.assertEqual(found, {"example.five": str(self.thing5)})
        self.assertEqual(hello, "hello from a Pyro5-style servant")
        # and the registry itself has it once, for both
        self.assertEqual(self.nameserver.lookup("example.five", return_metadata=True)[1],
                         ["colour:blue"])

    @async_test
    async def test_pyro5_name_server_api(self) -> None:
        self.nameserver.register("a.one", str(self.thing4), metadata={"x", "y"})
        self.nameserver.register("a.two", str(self.thing5), metadata={"y"})
        self.nameserver.register("b.three", str(self.thing5))

        def calls() -> Any:
            with Pyro5.api.locate_ns() as ns:
                result = {
                    "count": ns.count(),
                    "prefix": ns.list(prefix="a."),
                    "regex": ns.list(regex=r"a\.t.*"),
                    "meta": ns.list(prefix="a.", return_metadata=True),
                    "all": ns.yplookup(meta_all=["x", "y"], return_metadata=False),
                    "any": ns.yplookup(meta_any=["y"]),
                }
                ns.set_metadata("b.three", {"z"})
                result["set"] = ns.lookup("b.three", return_metadata=True)[1]
                result["removed"] = ns.remove(prefix="a.")
                result["left"] = sorted(ns.list())
                return result

        result = await in_thread(calls)
        self.assertEqual(result["count"], 4)  # (the name server is listed in itself)
        self.assertEqual(result["prefix"], {"a.one": str(self.thing4), "a.two": str(self.thing5)})
        self.assertEqual(result["regex"], {"a.two": str(self.thing5)})
        self.assertEqual(result["meta"]["a.one"], (str(self.thing4), {"x", "y"}))
        self.assertEqual(result["all"], {"a.one": str(self.thing4)})
        self.assertEqual(set(result["any"]), {"a.one", "a.two"})
        self.assertEqual(result["set"], {"z"})
        self.assertEqual(result["removed"], 2)
        self.assertEqual(result["left"], ["Pyro.NameServer", "b.three"])
        # the Pyro4 side sees the same registry
        self.assertEqual(sorted(self.nameserver.list()), ["Pyro.NameServer", "b.three"])

    @async_test
    async def test_pyro5_errors_from_the_name_server(self) -> None:
        def unknown() -> Any:
            with Pyro5.api.locate_ns() as ns:
                try:
                    ns.lookup("no.such.name")
                except Pyro5.errors.NamingError as exc:
                    return type(exc), str(exc)

        self.assertEqual(await in_thread(unknown),
                         (Pyro5.errors.NamingError, "unknown name: no.such.name"))

    @async_test
    async def test_pyro4_clients_still_get_pyro4s_name_server(self) -> None:
        def pyro4() -> Any:
            with Pyro4.locateNS() as ns:
                ns._pyroBind()
                return sorted(ns._pyroMethods)

        methods = await in_thread(pyro4)
        self.assertNotIn("yplookup", methods)
        self.assertIn("list", methods)

    def test_the_face_shares_storage_and_lock(self) -> None:
        face = self.factory.pyro5_faces[constants.NAMESERVER_NAME]
        self.assertIs(face, self.nameserver.pyro5)
        self.assertIs(face.storage, self.nameserver.storage)
        self.assertIs(face.lock, self.nameserver.lock)

    def test_no_face_when_pyro5_is_not_served(self) -> None:
        factory = serve(self, pyro_versions=(4,))
        nameserver, _ = register_name_server(factory)
        self.assertEqual(factory.pyro5_faces, {})
        self.assertFalse(hasattr(nameserver, "pyro5"))


class ServeNameServerTests(TestCase):
    """``serve_name_server`` (what ``python -m pyro ns`` runs) answers Pyro5 clients."""

    @async_test
    async def test_pyro5_clients_of_serve_name_server(self) -> None:
        from twisted.internet import reactor

        bcport = free_port()
        factory = await serve_name_server(reactor, host="127.0.0.1", port=0,
                                          bchost="127.0.0.1", bcport=0,
                                          out=open(os.devnull, "w"))
        self.addCleanup(factory.close)
        tcp, udp = factory.ports
        patch_pyro5_config(self, NS_HOST="192.0.2.1", BROADCAST_ADDRS=["127.0.0.1"],
                           NS_BCPORT=udp.getHost().port)
        del bcport

        def pyro5() -> Any:
            with Pyro5.api.locate_ns() as ns:  # by broadcast
                ns.register("served.name", "PYRO:x@127.0.0.1:1")
                return str(ns._pyroUri), ns.lookup("served.name")

        uri, looked_up = await in_thread(pyro5)
        self.assertEqual(uri, "PYRO:Pyro.NameServer@127.0.0.1:%d" % tcp.getHost().port)
        self.assertEqual(str(looked_up), "PYRO:x@127.0.0.1:1")


class Pyro5NscTests(TestCase):
    """``python -m Pyro5.nsc``, unmodified, against our name server."""

    def setUp(self) -> None:
        self.factory = serve(self)
        self.nameserver, self.ns_uri = register_name_server(self.factory)
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith("PYRO_")}
        root = str(Path(pyro.__file__).resolve().parent.parent)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, self.env.get("PYTHONPATH")]))

    async def nsc(self, *args: str, stdin: str = "") -> str:
        def run() -> Any:
            return subprocess.run([sys.executable, "-m", "Pyro5.nsc", "-n", "127.0.0.1", "-p",
                                   str(self.ns_uri.port), *args], env=self.env, input=stdin,
                                  capture_output=True, text=True, timeout=30)

        done = await in_thread(run)
        self.assertEqual((done.returncode, done.stderr), (0, ""), done.stdout)
        self.maxDiff = None
        return done.stdout

    @async_test
    async def test_every_command(self) -> None:
        self.nameserver.register("four.thing", "PYRO:four@192.0.2.4:4444", metadata={"c:four"})
        self.assertIn("Name server ping ok.", await self.nsc("ping"))
        self.assertIn("Registered five.thing",
                      await self.nsc("register", "five.thing", "PYRO:five@192.0.2.5:5555"))
        listed = await self.nsc("list")
        self.assertIn("four.thing --> PYRO:four@192.0.2.4:4444", listed)
        self.assertIn("five.thing --> PYRO:five@192.0.2.5:5555", listed)
        self.assertIn("metadata: {'c:four'}", listed)
        self.assertIn("five.thing", await self.nsc("listmatching", "fi.*"))
        self.assertIn("PYRO:four@192.0.2.4:4444", await self.nsc("lookup", "four.thing"))
        self.assertIn("four.thing", await self.nsc("yplookup_all", "c:four"))
        self.assertIn("four.thing", await self.nsc("yplookup_any", "c:four", "c:none"))
        self.assertIn("Metadata updated", await self.nsc("setmeta", "five.thing", "c:five"))
        self.assertEqual(self.nameserver.lookup("five.thing", return_metadata=True)[1],
                         ["c:five"])
        self.assertIn("Removed five.thing", await self.nsc("remove", "five.thing"))
        self.assertIn("1 items removed", await self.nsc("removematching", "four.*",
                                                            stdin="y\n"))
        self.assertEqual(sorted(self.nameserver.list()), ["Pyro.NameServer"])
