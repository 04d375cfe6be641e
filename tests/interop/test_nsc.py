"""Pyro4's name server tool, ``python -m Pyro4.nsc``, against our name server: every command.

Each command is a real ``nsc`` process, unmodified, told where the name server is the way a
user tells it: ``PYRO_NS_HOST``/``PYRO_NS_PORT`` in the environment (``-n``/``-p`` once), with
broadcasts confined to loopback (``PYRO_BROADCAST_ADDRS=127.0.0.1``, ``PYRO_NS_BCPORT`` our
responder's port). The name server is Pyro4's ``NameServer`` served by our factory on trial's
reactor; each test asserts what ``nsc`` printed and what the name server then holds.

Pyro4 4.82's ``nsc`` has ten commands: ``register remove removematching lookup list
listmatching listmeta_all listmeta_any setmeta ping`` (``yplookup_all``/``yplookup_any`` are
Pyro5's; 4.82 refuses them, see ``test_pyro5_commands_are_not_pyro4s``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import Pyro4
from Pyro4 import constants, errors
from twisted.trial.unittest import TestCase

import pyro
from pyro.nameserver import listen_broadcast, register_name_server

from ..support.asynctest import async_test
from ..support.our_server import in_thread, serve
from ..support.pyro4_peers import free_port

THING = "PYRO:thing@192.0.2.1:1111"
OTHER = "PYRO:other@192.0.2.2:2222"
META = "['class:Pyro4.naming.NameServer']"


class NscTestCase(TestCase):
    hmac_key: bytes | None = None

    def setUp(self) -> None:
        self.factory = serve(self)
        self.nameserver, self.ns_uri = register_name_server(self.factory,
                                                            hmac_key=self.hmac_key)
        self.udp = listen_broadcast(self.ns_uri, interface="127.0.0.1", port=0)
        self.addCleanup(self.udp.stopListening)
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith("PYRO_")}
        self.env.update(PYRO_NS_HOST="127.0.0.1", PYRO_NS_PORT=str(self.ns_uri.port),
                        PYRO_BROADCAST_ADDRS="127.0.0.1",
                        PYRO_NS_BCPORT=str(self.udp.getHost().port), PYTHONUNBUFFERED="1")
        root = str(Path(pyro.__file__).resolve().parent.parent)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, self.env.get("PYTHONPATH")]))

    async def nsc(self, *args: str, stdin: str = "", env: dict[str, str] | None = None,
                  status: int = 0) -> str:
        """Run ``python -m Pyro4.nsc ARGS``; its standard output (stderr must be empty)."""
        def run() -> Any:
            return subprocess.run([sys.executable, "-m", "Pyro4.nsc", *args], input=stdin,
                                  env={**self.env, **(env or {})}, capture_output=True,
                                  text=True, timeout=30)

        done = await in_thread(run)
        self.assertEqual(done.returncode, status, done.stderr)
        if status == 0:
            self.assertEqual(done.stderr, "")
        return done.stdout if status == 0 else done.stderr

    def names(self) -> dict[str, Any]:
        return self.nameserver.list(return_metadata=True)


class NscTests(NscTestCase):

    @async_test
    async def test_ping(self) -> None:
        self.assertEqual(await self.nsc("ping"), "Name server ping ok.\n")

    @async_test
    async def test_ping_verbose_with_options_instead_of_the_environment(self) -> None:
        env = {"PYRO_NS_HOST": "192.0.2.99", "PYRO_NS_PORT": str(free_port())}
        out = await self.nsc("-v", "-n", "127.0.0.1", "-p", str(self.ns_uri.port), "ping",
                             env=env)
        self.assertEqual(out, "Locating name server...\nName server found: %s\n"
                              "Name server ping ok.\nDone.\n" % self.ns_uri)

    @async_test
    async def test_found_by_broadcast(self) -> None:
        env = {"PYRO_NS_HOST": "2130706433",  # 127.0.0.1 not looking local: broadcast first
               "PYRO_NS_PORT": str(free_port())}
        out = await self.nsc("-v", "ping", env=env)
        self.assertIn("Name server found: %s\n" % self.ns_uri, out)
        self.assertEqual(self.udp.protocol.requests, 1)

    @async_test
    async def test_register_then_lookup(self) -> None:
        self.assertEqual(await self.nsc("register", "example.thing", THING),
                         "Registered example.thing\n")
        self.assertEqual(str(self.nameserver.lookup("example.thing")), THING)
        self.assertEqual(await self.nsc("lookup", "example.thing"), THING + "\n")
        # nsc registers with safe=True
        self.assertEqual(await self.nsc("register", "example.thing", OTHER),
                         "Error: NamingError - name already registered: example.thing\n")
        self.assertEqual(str(self.nameserver.lookup("example.thing")), THING)
        self.assertEqual(await self.nsc("register", "example.bad", "not-a-uri"),
                         "Error: PyroError - invalid uri\n")
        self.assertEqual(await self.nsc("lookup", "example.missing"),
                         "Error: NamingError - unknown name: example.missing\n")
        self.assertEqual(await self.nsc("lookup", constants.NAMESERVER_NAME),
                         "%s\nmetadata: %s\n" % (self.ns_uri, META))

    @async_test
    async def test_list_and_listmatching(self) -> None:
        self.nameserver.register("example.a", THING)
        self.nameserver.register("example.b", OTHER, metadata={"tag"})
        self.nameserver.register("other.c", THING)
        everything = await self.nsc("list")
        self.assertEqual(everything, "\n".join([
            "--------START LIST ",
            "Pyro.NameServer --> %s" % self.ns_uri,
            "    metadata: %s" % META,
            "example.a --> %s" % THING,
            "example.b --> %s" % OTHER,
            "    metadata: ['tag']",
            "other.c --> %s" % THING,
            "--------END LIST ", ""]))
        self.assertEqual(await self.nsc("list", "example."), "\n".join([
            "--------START LIST - prefix 'example.'",
            "example.a --> %s" % THING,
            "example.b --> %s" % OTHER,
            "    metadata: ['tag']",
            "--------END LIST - prefix 'example.'", ""]))
        self.assertEqual(await self.nsc("listmatching", r".*\.[ac]$"), "\n".join([
            r"--------START LIST - regex '.*\.[ac]$'",
            "example.a --> %s" % THING,
            "other.c --> %s" % THING,
            r"--------END LIST - regex '.*\.[ac]$'", ""]))
        self.assertEqual(await self.nsc("listmatching", "(broken"),
                         "Error: NamingError - invalid regex: missing ), unterminated "
                         "subpattern at position 0\n")

    @async_test
    async def test_remove(self) -> None:
        self.nameserver.register("example.a", THING)
        self.assertEqual(await self.nsc("remove", "example.a"), "Removed example.a\n")
        self.assertNotIn("example.a", self.names())
        self.assertEqual(await self.nsc("remove", "example.a"), "Nothing removed\n")
        self.assertEqual(await self.nsc("remove", constants.NAMESERVER_NAME), "Nothing removed\n")
        self.assertIn(constants.NAMESERVER_NAME, self.names())

    @async_test
    async def test_removematching_asks_first(self) -> None:
        for name in ("example.a", "example.b", "keep.c"):
            self.nameserver.register(name, THING)
        question = "Potentially removing lots of items from the Name server. Are you sure (y/n)?"
        self.assertEqual(await self.nsc("removematching", "example.*", stdin="n\n"), question)
        self.assertEqual(len(self.names()), 4)
        self.assertEqual(await self.nsc("removematching", "example.*", stdin="y\n"),
                         question + "2 items removed.\n")
        self.assertEqual(set(self.names()), {constants.NAMESERVER_NAME, "keep.c"})
        self.assertEqual(await self.nsc("removematching", ".*", stdin="Y\n"),
                         question + "1 items removed.\n")  # never the name server itself
        self.assertEqual(set(self.names()), {constants.NAMESERVER_NAME})

    @async_test
    async def test_setmeta_and_listmeta(self) -> None:
        self.nameserver.register("example.a", THING)
        self.nameserver.register("example.b", OTHER, metadata={"blue"})
        self.assertEqual(await self.nsc("setmeta", "example.a", "red", "round"),
                         "Metadata updated\n")
        self.assertEqual(set(self.names()["example.a"][1]), {"red", "round"})
        shown = list(self.nameserver.list(prefix="example.a", return_metadata=True)["example.a"][1])
        self.assertEqual(await self.nsc("listmeta_all", "red", "round"), "\n".join([
            "--------START LIST  - searched by metadata",
            "example.a --> %s" % THING,
            "    metadata: %s" % shown,  # (a set, listed by the server: its order)
            "--------END LIST  - searched by metadata", ""]))
        self.assertEqual(await self.nsc("listmeta_all", "red", "blue"),
                         "--------START LIST  - searched by metadata\n"
                         "--------END LIST  - searched by metadata\n")
        out = await self.nsc("listmeta_any", "red", "blue")
        self.assertIn("example.a --> %s\n" % THING, out)
        self.assertIn("example.b --> %s\n    metadata: ['blue']\n" % OTHER, out)
        self.assertEqual(await self.nsc("setmeta", "example.a"), "Metadata cleared\n")
        self.assertEqual(self.names()["example.a"][1], [])
        self.assertEqual(await self.nsc("setmeta", "example.missing", "x"),
                         "Error: NamingError - unknown name: example.missing\n")

    @async_test
    async def test_wrong_arguments(self) -> None:
        self.assertIn("requires two arguments: name uri",
                      await self.nsc("register", "only-a-name", status=1))
        self.assertIn("error: invalid or missing command", await self.nsc("frobnicate", status=2))

    @async_test
    async def test_pyro5_commands_are_not_pyro4s(self) -> None:
        for command in ("yplookup_all", "yplookup_any"):
            self.assertIn("error: invalid or missing command",
                          await self.nsc(command, "tag", status=2))

    @async_test
    async def test_no_name_server(self) -> None:
        await self.factory.close()
        await self.udp.stopListening()
        self.assertEqual(await self.nsc("ping"), "Error: Failed to locate the nameserver\n")


class NscHmacTests(NscTestCase):
    """Commands against a name server with an HMAC key, given as Pyro4 users give it
    (``PYRO_HMAC_KEY``); without it, ``nsc`` cannot connect."""

    hmac_key = b"nsc-secret"
    test_ping = NscTests.test_ping
    test_register_then_lookup = NscTests.test_register_then_lookup
    test_setmeta_and_listmeta = NscTests.test_setmeta_and_listmeta

    def setUp(self) -> None:
        super().setUp()
        self.env["PYRO_HMAC_KEY"] = self.hmac_key.decode()

    @async_test
    async def test_without_the_key(self) -> None:
        env = dict(self.env)
        del env["PYRO_HMAC_KEY"]
        self.env = env
        # Pyro4's locateNS: the direct try fails, then the broadcast answers and its proxy is
        # returned unconnected, so the failure shows at the first call
        self.assertEqual(await self.nsc("ping"),
                         "Error: CommunicationError - cannot connect to ('127.0.0.1', %d): hmac "
                         "key config not symmetric\n" % self.ns_uri.port)

        def blocking() -> None:
            with Pyro4.locateNS("127.0.0.1", self.ns_uri.port) as ns:
                ns.ping()

        with self.assertRaises(errors.NamingError):
            await in_thread(blocking)
