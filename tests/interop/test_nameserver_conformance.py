"""Pyro4 4.82's own name server tests, run against a name server on the reactor.

The tests come from Pyro4's ``tests/PyroTests/test_naming.py`` (the name server online) and
``test_naming2.py`` (its logic, which Pyro4 tests on a ``NameServer`` object in the same
process: here over the wire instead). Each keeps its Pyro4 name (``testLookupAndRegister``
becomes ``test_lookupAndRegister``) and, as far as possible, its body and its assertions: the
name server is Pyro4's own ``Pyro4.naming.NameServer``, served by our factory
(``register_name_server``) on trial's reactor and found by broadcast through our
``listen_broadcast``; the clients are unmodified Pyro4 (``locateNS``, ``resolve``, ``Proxy``,
``nsc``), run in threads (``client()``) so the reactor keeps serving.

Adapted, and why:

* Pyro4 starts ``startNS(host=<the machine's LAN address>)`` so that ``locateNS()`` without a
  host tries the broadcast first (it goes straight to ``NS_HOST`` only when that looks local:
  ``localhost``, ``::1``, ``127.*``). Our tests stay on loopback, so ``NS_HOST`` is 127.0.0.1
  spelled as one number, ``2130706433``, which does not look local but which the socket layer
  accepts; broadcasts go to 127.0.0.1 only (``BROADCAST_ADDRS``), to our responder's port.
  The tests that say "broadcast lookup" also check that the responder was asked.
* ``startNS``/``NameServerDaemon`` are ``serve_name_server`` / ``register_name_server`` here
  (``testBCstart``, ``testStartNSfunc``, ``testNAT``, ``testNameserverWithStmt``).
* ``testAutoClean`` sleeps 4 seconds; here the cleaner's timer runs on a ``task.Clock`` that
  the test moves by the same 4 seconds, while its probes are real connections. Pyro4's
  ``loop_delay`` (its thread's 2-second tick) does not exist on the reactor: a round runs every
  ``NS_AUTOCLEAN`` seconds. Pyro4's dead URI ``localhost:59999`` becomes a port that was free
  a moment ago (59999 is in the ephemeral range; a busy machine may be using it).
* ``test_naming2``'s ``ns.storage.close()`` lines are gone (the storage is closed by the
  factory, see ``test_nameserverWithStmt``); ``self.storageProvider.clear()`` runs here, in
  the test, on the storage the served name server uses.

Left out, and why:

* ``testNSmain`` (``Pyro4.naming.main``'s option parser): our name server's command line is
  ``python -m pyro ns`` (pyro/__main__.py), tested with the command line itself.
* ``testNameserverWithStmt``'s ``with`` blocks and "cannot reuse" check: our factory is
  closed with ``close()``, which returns a Deferred, not with a ``with`` block; the part that
  applies (closing releases the name server's storage) is ported.
* ``testNSCfunctions``'s ``removematching`` ("can't be tested, required user input", Pyro4
  says): tests/interop/test_nsc.py runs it, answering the question.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import unittest as std_unittest

import Pyro4
import Pyro4.constants
import Pyro4.core
import Pyro4.naming
import Pyro4.naming_storage
import Pyro4.nsc
import Pyro4.socketutil
from Pyro4.errors import CommunicationError, NamingError, PyroError
from twisted.internet import reactor, task
from twisted.trial import unittest

import pyro.server.factory
from pyro.nameserver import (
    BroadcastResponder,
    listen_broadcast,
    register_name_server,
    serve_name_server,
)
from pyro.protocol import Pyro4ProtocolFactory

from ..support.asynctest import async_test
from ..support.config import patch_config
from ..support.our_server import in_thread, serve
from ..support.pyro4_peers import free_port

config = Pyro4.config

#: 127.0.0.1 as Pyro4's locateNS does not recognise it (see the module's docstring).
LOOPBACK_NOT_LOOKING_LOCAL = "2130706433"


def client(function, *args, **kwargs):
    """Run blocking Pyro4 client code in a thread; a Deferred of its result."""
    return in_thread(function, *args, **kwargs)


class NameServerTestCase(unittest.TestCase):
    """Pyro4's setUp: a name server and its broadcast responder, and the config pointing there."""

    hmac = None
    ns_host = "127.0.0.1"  # the address in its URI (Pyro4: myIpAddress)

    def start_name_server(self, storage=None):
        self.factory = serve(self)
        if self.ns_host != "127.0.0.1":
            self.factory.setAddress(self.ns_host, self.factory.ports[0].getHost().port)
        self.nameserverObject, self.nsUri = register_name_server(self.factory, storage,
                                                                 hmac_key=self.hmac)
        self.bcserver = listen_broadcast(self.factory.uriFor(self.nameserverObject, nat=False),
                                         interface="127.0.0.1", port=0)
        self.addCleanup(self.bcserver.stopListening)
        patch_config(self, NS_PORT=self.nsUri.port, NS_BCPORT=self.bcserver.getHost().port,
                     NS_HOST=LOOPBACK_NOT_LOOKING_LOCAL, BROADCAST_ADDRS="127.0.0.1")

    def broadcasts(self):
        return self.bcserver.protocol.requests


class BCSetupTests(unittest.TestCase):
    @async_test
    async def test_BCstart(self):
        # startNS(enableBroadcast=False) -> no broadcast server
        factory = await serve_name_server(reactor, "127.0.0.1", 0, broadcast=False,
                                          out=io.StringIO())
        self.addCleanup(factory.close)
        self.assertEqual(len(factory.ports), 1)
        await factory.close()
        # startNS(enableBroadcast=True) -> a broadcast server
        factory = await serve_name_server(reactor, "127.0.0.1", 0, bchost="127.0.0.1",
                                          bcport=0, out=io.StringIO())
        self.addCleanup(factory.close)
        bcserver = factory.ports[1]
        self.assertIsNotNone(bcserver, "expected a BC server to be running")
        self.assertGreater(bcserver.fileno(), 1)
        self.assertIsNotNone(bcserver.socket)
        await factory.close()


class NameServerTests(NameServerTestCase):
    def setUp(self):
        self.start_name_server()

    def test_lookupUnixsockParsing(self):
        def body():
            # this must not raise AttributeError, it did before because of a parse bug
            with self.assertRaises(NamingError):
                Pyro4.naming.locateNS("./u:/tmp/pyro4-naming.usock")
        return client(body)

    def test_lookupAndRegister(self):
        def body():
            ns = Pyro4.naming.locateNS()  # broadcast lookup
            self.assertIsInstance(ns, Pyro4.core.Proxy)
            ns._pyroRelease()
            self.assertEqual(self.broadcasts(), 1)
            ns = Pyro4.naming.locateNS(self.nsUri.host)  # normal lookup
            self.assertIsInstance(ns, Pyro4.core.Proxy)
            uri = ns._pyroUri
            self.assertEqual("PYRO", uri.protocol)
            self.assertEqual(self.nsUri.host, uri.host)
            self.assertEqual(config.NS_PORT, uri.port)
            self.assertIsNone(ns._pyroHmacKey)
            ns._pyroRelease()
            ns = Pyro4.naming.locateNS(self.nsUri.host, config.NS_PORT, hmac_key=None)
            uri = ns._pyroUri
            self.assertEqual("PYRO", uri.protocol)
            self.assertEqual(self.nsUri.host, uri.host)
            self.assertEqual(config.NS_PORT, uri.port)
            self.assertIsNone(ns._pyroHmacKey)
            # check that we cannot register a stupid type
            self.assertRaises(TypeError, ns.register, "unittest.object1", 5555)
            # we can register str or URI, lookup always returns URI
            ns.register("unittest.object2", "PYRO:55555@host.com:4444")
            self.assertEqual(Pyro4.core.URI("PYRO:55555@host.com:4444"), ns.lookup("unittest.object2"))
            ns.register("unittest.object3", Pyro4.core.URI("PYRO:66666@host.com:4444"))
            self.assertEqual(Pyro4.core.URI("PYRO:66666@host.com:4444"), ns.lookup("unittest.object3"))
            ns._pyroRelease()
        return client(body)

    def test_lookupInvalidHmac(self):
        def body():
            with self.assertRaises(NamingError):
                Pyro4.naming.locateNS(self.nsUri.host, config.NS_PORT, hmac_key="invalidkey")
        return client(body)

    def test_daemonPyroObj(self):
        def body():
            uri = self.nsUri
            uri.object = Pyro4.constants.DAEMON_NAME
            with Pyro4.core.Proxy(uri) as daemonobj:
                daemonobj.ping()
                daemonobj.registered()
                try:
                    daemonobj.shutdown()
                    self.fail("should not succeed to call unexposed method on daemon")
                except AttributeError:
                    pass
        return client(body)

    def test_multi(self):
        def body():
            uristr = str(self.nsUri)
            p = Pyro4.core.Proxy(uristr)
            p._pyroBind()
            p._pyroRelease()
            for _ in range(5):
                uri = Pyro4.naming.resolve(uristr)
                p = Pyro4.core.Proxy(uri)
                p._pyroBind()
                p._pyroRelease()
            daemonUri = "PYRO:" + Pyro4.constants.DAEMON_NAME + "@" + uri.location
            for _ in range(6):
                _ = Pyro4.naming.resolve(daemonUri)
            uri = Pyro4.naming.resolve(daemonUri)
            pyronameUri = "PYRONAME:" + Pyro4.constants.NAMESERVER_NAME + "@" + uri.location
            for _ in range(6):
                _ = Pyro4.naming.resolve(pyronameUri)
        return client(body)

    def test_resolve(self):
        def body():
            resolved1 = Pyro4.naming.resolve(Pyro4.core.URI("PYRO:12345@host.com:4444"), hmac_key=None)
            resolved2 = Pyro4.naming.resolve("PYRO:12345@host.com:4444", hmac_key=None)
            self.assertTrue(type(resolved1) is Pyro4.core.URI)
            self.assertEqual(resolved1, resolved2)
            self.assertEqual("PYRO:12345@host.com:4444", str(resolved1))

            ns = Pyro4.naming.locateNS(self.nsUri.host, self.nsUri.port)
            host = "[" + self.nsUri.host + "]" if ":" in self.nsUri.host else self.nsUri.host
            uri = Pyro4.naming.resolve("PYRONAME:" + Pyro4.constants.NAMESERVER_NAME + "@" + host + ":" + str(self.nsUri.port))
            self.assertEqual("PYRO", uri.protocol)
            self.assertEqual(self.nsUri.host, uri.host)
            self.assertEqual(Pyro4.constants.NAMESERVER_NAME, uri.object)
            self.assertEqual(uri, ns._pyroUri)
            ns._pyroRelease()

            # broadcast lookup
            self.assertRaises(NamingError, Pyro4.naming.resolve, "PYRONAME:unknown_object")
            uri = Pyro4.naming.resolve("PYRONAME:" + Pyro4.constants.NAMESERVER_NAME)
            self.assertEqual(Pyro4.core.URI, type(uri))
            self.assertEqual("PYRO", uri.protocol)
            self.assertEqual(self.broadcasts(), 2)

            # test some errors
            self.assertRaises(NamingError, Pyro4.naming.resolve, "PYRONAME:unknown_object@" + host)
            self.assertRaises(TypeError, Pyro4.naming.resolve, 999)  # wrong arg type
        return client(body)

    def test_refuseDottedNames(self):
        patch_config(self, METADATA=False)

        def body():
            with Pyro4.naming.locateNS(self.nsUri.host, self.nsUri.port) as ns:
                # the name server should never have dotted names enabled
                self.assertRaises(AttributeError, ns.namespace.keys)
                self.assertIsNotNone(ns._pyroConnection)
            self.assertIsNone(ns._pyroConnection)
        return client(body)

    @async_test
    async def test_autoClean(self):
        patch_config(self, NS_AUTOCLEAN=0.0, COMMTIMEOUT=0.5)
        self.patch(Pyro4.naming.AutoCleaner, "max_unreachable_time", 1)
        self.patch(Pyro4.naming.AutoCleaner, "override_autoclean_min", True)
        factory = serve(self)
        ns, _ = register_name_server(factory)  # with Pyro4.naming.NameServerDaemon(port=0)
        self.assertIsNone(ns.cleaner)
        await factory.close()
        config.NS_AUTOCLEAN = 0.2
        clock = task.Clock()
        factory = serve(self)
        ns, _ = register_name_server(factory, clock=clock)
        self.assertIsNotNone(ns.cleaner)
        ns.register("test", "PYRO:test@localhost:%d" % free_port())
        self.assertEqual(2, ns.count())
        for _ in range(40):  # time.sleep(4), on the cleaner's clock; the probes are real
            clock.advance(0.1)
            if ns.cleaner.current_round is not None:
                await ns.cleaner.current_round
        self.assertEqual(1, ns.count(), "registration should be cleaned up")
        await factory.close()
        self.assertFalse(ns.cleaner.running)  # Pyro4: ns.cleaner_thread is None

    @async_test
    async def test_autoClean_keeps_what_answers(self):
        """Not in Pyro4: the same cleaner, and a registration whose server is up."""
        patch_config(self, COMMTIMEOUT=0.5)
        self.patch(Pyro4.naming.AutoCleaner, "max_unreachable_time", 1)
        self.patch(Pyro4.naming.AutoCleaner, "override_autoclean_min", True)
        clock = task.Clock()
        factory = serve(self)
        ns, _ = register_name_server(factory, autoclean=0.2, clock=clock)
        ns.register("alive", self.nsUri)  # a name server answers too
        ns.register("hmac.protected", serve(self, hmac_key=b"k").register(Pyro4.naming.NameServer()))
        for _ in range(40):
            clock.advance(0.1)
            if ns.cleaner.current_round is not None:
                await ns.cleaner.current_round
        self.assertEqual(set(ns.list()), {"Pyro.NameServer", "alive", "hmac.protected"})
        self.assertGreater(ns.cleaner.rounds, 10)


class NameServerTests0000(NameServerTestCase):
    ns_host = "0.0.0.0"  # Pyro4: startNS(host=""); the socket here stays on 127.0.0.1

    def setUp(self):
        self.start_name_server()
        host_check = self.nsUri.host
        self.assertEqual("0.0.0.0", host_check, "for hostname \"\" the resulting ip must be 0.0.0.0 (or ipv6 equivalent)")
        patch_config(self, NS_HOST=self.nsUri.host)

    def test_BCLookup0000(self):
        def body():
            ns = Pyro4.naming.locateNS()  # broadcast lookup
            self.assertIsInstance(ns, Pyro4.core.Proxy)
            self.assertNotEqual("0.0.0.0", ns._pyroUri.host, "returned location must not be 0.0.0.0 when running on 0.0.0.0")
            ns._pyroRelease()
            self.assertEqual(self.broadcasts(), 1)
        return client(body)


class NameServerTestsHmac(NameServerTestCase):
    hmac = b"test_key"

    def setUp(self):
        self.start_name_server()

    def test_lookupAndRegister(self):
        def body():
            ns = Pyro4.naming.locateNS()  # broadcast lookup without providing hmac still works
            self.assertIsInstance(ns, Pyro4.core.Proxy)
            self.assertIsNone(ns._pyroHmacKey)   # ... but no hmac is set on the proxy
            ns._pyroRelease()
            ns = Pyro4.naming.locateNS(hmac_key=b"test_key")  # broadcast lookup providing hmac
            self.assertIsInstance(ns, Pyro4.core.Proxy)
            self.assertEqual(b"test_key", ns._pyroHmacKey)  # ... sets the hmac on the proxy
            ns._pyroRelease()
            ns = Pyro4.naming.locateNS(self.nsUri.host, config.NS_PORT, hmac_key=b"test_key")
            uri = ns._pyroUri
            self.assertEqual("PYRO", uri.protocol)
            self.assertEqual(self.nsUri.host, uri.host)
            self.assertEqual(config.NS_PORT, uri.port)
            self.assertEqual(b"test_key", ns._pyroHmacKey)
            ns._pyroRelease()
            self.assertEqual(self.broadcasts(), 2)
        return client(body)

    def test_resolve(self):
        def body():
            uri = Pyro4.naming.resolve("PYRONAME:Pyro.NameServer", hmac_key=b"test_key")
            self.assertEqual("PYRO", uri.protocol)
            self.assertEqual(self.nsUri.host, uri.host)
            self.assertEqual(config.NS_PORT, uri.port)
        return client(body)

    def test_pyroname(self):
        def body():
            with Pyro4.core.Proxy("PYRONAME:Pyro.NameServer") as p:
                p._pyroHmacKey = b"test_key"
                p.ping()   # the resolve() that is done should also use the hmac key
        return client(body)

    def test_resolveWrongHmac(self):
        def body():
            with self.assertRaises(CommunicationError) as ex:
                Pyro4.naming.resolve("PYRONAME:Pyro.NameServer", hmac_key=b"wrong_key")
            emsg = str(ex.exception)
            self.assertTrue(emsg.startswith("cannot connect to "))
            self.assertTrue(emsg.endswith("message hmac mismatch"))
        return client(body)

    def test_resolveAsymmetricHmacUsage(self):
        def body():
            with self.assertRaises(CommunicationError) as ex:
                Pyro4.naming.resolve("PYRONAME:Pyro.NameServer", hmac_key=None)
            emsg = str(ex.exception)
            self.assertTrue(emsg.startswith("cannot connect to "))
            self.assertTrue(emsg.endswith("hmac key config not symmetric"))
        return client(body)


class OurAdditionsTests(NameServerTestCase):
    """Not in Pyro4: what we put on Pyro4's name server is not reachable remotely."""

    def setUp(self):
        self.start_name_server()

    def test_the_cleaner_attribute_is_not_remote(self):
        def body():
            with Pyro4.Proxy(self.nsUri) as ns:
                self.assertNotIn("cleaner", ns._pyroAttrs | ns._pyroMethods)
                with self.assertRaises(AttributeError):
                    ns.cleaner  # noqa: B018
        return client(body)


# -- test_naming2.py: the name server's logic, over the wire ----------------------------------


class OfflineNameServerTests(NameServerTestCase):
    """Pyro4 calls these methods on a ``NameServer`` object; here a ``Pyro4.Proxy`` calls the
    one our factory serves, with the storage the test clears."""

    def setUp(self):
        self.storageProvider = Pyro4.naming.MemoryStorage()
        self.start_name_server(self.storageProvider)

    def tearDown(self):
        self.storageProvider.clear()
        self.storageProvider.close()

    def run_with_ns(self, body):
        def run():
            with Pyro4.Proxy(self.nsUri) as ns:
                body(ns)
        return client(run)

    def test_register(self):
        def body(ns):
            self.storageProvider.clear()
            ns.ping()
            ns.register("test.object1", "PYRO:000000@host.com:4444")
            ns.register("test.object2", "PYRO:222222@host.com:4444")
            ns.register("test.object3", "PYRO:333333@host.com:4444")
            self.assertEqual("PYRO:000000@host.com:4444", str(ns.lookup("test.object1")))
            ns.register("test.object1", "PYRO:111111@host.com:4444")  # registering again should be ok by default
            self.assertEqual("PYRO:111111@host.com:4444", str(ns.lookup("test.object1")), "should be new uri")
            ns.register("test.sub.objectA", Pyro4.core.URI("PYRO:AAAAAA@host.com:4444"))
            ns.register("test.sub.objectB", Pyro4.core.URI("PYRO:BBBBBB@host.com:4444"))

            # if safe=True, a registration of an existing name should give a NamingError
            self.assertRaises(NamingError, ns.register, "test.object1", "PYRO:X@Y:5555", safe=True)

            self.assertRaises(TypeError, ns.register, None, None)
            self.assertRaises(TypeError, ns.register, 4444, 4444)
            self.assertRaises(TypeError, ns.register, "test.wrongtype", 4444)
            self.assertRaises(TypeError, ns.register, 4444, "PYRO:X@Y:5555")

            self.assertRaises(NamingError, ns.lookup, "unknown_object")

            uri = ns.lookup("test.object3")
            self.assertEqual(Pyro4.core.URI("PYRO:333333@host.com:4444"), uri)  # lookup always returns URI
            ns.remove("unknown_object")
            ns.remove("test.object1")
            ns.remove("test.object2")
            ns.remove("test.object3")
            all_objs = ns.list()
            self.assertEqual(2, len(all_objs))  # 2 leftover objects
            self.assertRaises(PyroError, ns.register, "test.nonurivalue", "THISVALUEISNOTANURI")
        return self.run_with_ns(body)

    def test_remove(self):
        def body(ns):
            self.storageProvider.clear()
            ns.register(Pyro4.constants.NAMESERVER_NAME, "PYRO:nameserver@host:555")
            for i in range(20):
                ns.register("test.%d" % i, "PYRO:obj@host:555")
            self.assertEqual(21, len(ns.list()))
            self.assertEqual(0, ns.remove("wrong"))
            self.assertEqual(0, ns.remove(prefix="wrong"))
            self.assertEqual(0, ns.remove(regex="wrong.*"))
            self.assertEqual(1, ns.remove("test.0"))
            self.assertEqual(20, len(ns.list()))
            self.assertEqual(11, ns.remove(prefix="test.1"))  # 1, 10-19
            self.assertEqual(8, ns.remove(regex=r"test\.."))  # 2-9
            self.assertEqual(1, len(ns.list()))
        return self.run_with_ns(body)

    def test_removeProtected(self):
        def body(ns):
            self.storageProvider.clear()
            ns.register(Pyro4.constants.NAMESERVER_NAME, "PYRO:nameserver@host:555")
            self.assertEqual(0, ns.remove(Pyro4.constants.NAMESERVER_NAME))
            self.assertEqual(0, ns.remove(prefix="Pyro"))
            self.assertEqual(0, ns.remove(regex="Pyro.*"))
            self.assertIn(Pyro4.constants.NAMESERVER_NAME, ns.list())
        return self.run_with_ns(body)

    def test_unicodeNames(self):
        def body(ns):
            self.storageProvider.clear()
            uri = Pyro4.core.URI("PYRO:unicode" + chr(0x20ac) + "@host:5555")
            ns.register("unicodename" + chr(0x20ac), uri)
            x = ns.lookup("unicodename" + chr(0x20ac))
            self.assertEqual(uri, x)
        return self.run_with_ns(body)

    def test_list(self):
        def body(ns):
            self.storageProvider.clear()
            ns.register("test.objects.1", "PYRONAME:something1")
            ns.register("test.objects.2", "PYRONAME:something2")
            ns.register("test.objects.3", "PYRONAME:something3")
            ns.register("test.other.a", "PYRONAME:somethingA")
            ns.register("test.other.b", "PYRONAME:somethingB")
            ns.register("test.other.c", "PYRONAME:somethingC")
            ns.register("entirely.else", "PYRONAME:meh")
            objects = ns.list()
            self.assertEqual(7, len(objects))
            objects = ns.list(prefix="nothing")
            self.assertEqual(0, len(objects))
            objects = ns.list(prefix="test.")
            self.assertEqual(6, len(objects))
            objects = ns.list(regex=r".+other..")
            self.assertEqual(3, len(objects))
            self.assertIn("test.other.a", objects)
            self.assertEqual("PYRONAME:somethingA", objects["test.other.a"])
            objects = ns.list(regex=r"\d\d\d\d\d\d\d\d\d\d")
            self.assertEqual(0, len(objects))
            self.assertRaises(NamingError, ns.list, regex="((((((broken")
        return self.run_with_ns(body)

    def test_metadataRegisterInvalidTypes(self):
        def body(ns):
            with self.assertRaises(TypeError):
                ns.register("meta1", "PYRO:meta1@localhost:1111", metadata=12345)   # metadata must be iterable
            with self.assertRaises(TypeError):
                ns.register("meta1", "PYRO:meta1@localhost:1111", metadata="string")   # metadata must not be str
        return self.run_with_ns(body)

    def test_metadataListInvalidTypes(self):
        def body(ns):
            with self.assertRaises(TypeError):
                ns.list(metadata_all=12345)
            with self.assertRaises(TypeError):
                ns.list(metadata_all="string")
            with self.assertRaises(TypeError):
                ns.list(metadata_any=12345)
            with self.assertRaises(TypeError):
                ns.list(metadata_any="string")
        return self.run_with_ns(body)

    def test_metadata(self):
        def body(ns):
            self.storageProvider.clear()
            # register some names with metadata, and perform simple lookups
            ns.register("meta1", "PYRO:meta1@localhost:1111", metadata={"a", "b", "c"})
            ns.register("meta2", "PYRO:meta2@localhost:2222", metadata={"x", "y", "z"})
            ns.register("meta3", "PYRO:meta3@localhost:3333", metadata=["p", "q", "r", "r", "q"])
            uri = ns.lookup("meta1")
            self.assertEqual("meta1", uri.object)
            uri, metadata = ns.lookup("meta1", return_metadata=True)
            self.assertEqual("meta1", uri.object)
            self.assertSetEqual({"a", "b", "c"}, set(metadata))
            uri = ns.lookup("meta2")
            self.assertEqual("meta2", uri.object)
            uri, metadata = ns.lookup("meta2", return_metadata=True)
            self.assertEqual("meta2", uri.object)
            self.assertSetEqual({"x", "y", "z"}, set(metadata))
            uri, metadata = ns.lookup("meta3", return_metadata=True)
            self.assertEqual("meta3", uri.object)
            self.assertIsInstance(metadata, list)
            self.assertSetEqual({"p", "q", "r"}, set(metadata))
            # get a list of everything, without and with metadata
            reg = ns.list()
            self.assertDictEqual({'meta1': 'PYRO:meta1@localhost:1111', 'meta2': 'PYRO:meta2@localhost:2222',
                                  'meta3': 'PYRO:meta3@localhost:3333'}, reg)
            reg = ns.list(return_metadata=True)
            uri1, meta1 = reg["meta1"]
            uri2, meta2 = reg["meta2"]
            self.assertEqual("PYRO:meta1@localhost:1111", uri1)
            self.assertSetEqual({"a", "b", "c"}, set(meta1))
            self.assertEqual("PYRO:meta2@localhost:2222", uri2)
            self.assertSetEqual({"x", "y", "z"}, set(meta2))
            # filter on metadata subset
            reg = ns.list(metadata_all={"a", "c"}, return_metadata=False)
            self.assertEqual(1, len(reg))
            self.assertEqual("PYRO:meta1@localhost:1111", reg["meta1"])
            reg = ns.list(metadata_all={"a", "c"}, return_metadata=True)
            self.assertEqual(1, len(reg))
            uri1, meta1 = reg["meta1"]
            self.assertEqual("PYRO:meta1@localhost:1111", uri1)
            self.assertSetEqual({"a", "b", "c"}, set(meta1))
            reg = ns.list(metadata_all={"a", "wrong"})
            self.assertEqual({}, reg)
            reg = ns.list(metadata_all={"a", "b", "c", "wrong"})
            self.assertEqual({}, reg)
            reg = ns.list(metadata_all={"a", "c", "x"})
            self.assertEqual({}, reg)
            # update some metadata
            with self.assertRaises(NamingError):
                ns.set_metadata("notexistingname", set())
            ns.set_metadata("meta1", {"one", "two", "three"})
            uri, meta = ns.lookup("meta1", return_metadata=True)
            self.assertSetEqual({"one", "two", "three"}, set(meta))
            # check that a collection is converted to a set
            ns.set_metadata("meta1", ["one", "two", "three", "three", "two"])
            uri, meta = ns.lookup("meta1", return_metadata=True)
            self.assertIsInstance(meta, list)
            self.assertSetEqual({"one", "two", "three"}, set(meta))
            # remove record that has some metadata
            ns.remove("meta1")
            ns.remove("meta3")
            self.assertEqual(["meta2"], list(ns.list().keys()))
            # other list filters
            reg = ns.list(prefix="meta", return_metadata=True)
            self.assertEqual(1, len(reg))
            self.assertSetEqual({"x", "y", "z"}, set(reg["meta2"][1]))
            reg = ns.list(regex="meta2.*", return_metadata=True)
            self.assertEqual(1, len(reg))
            self.assertSetEqual({"x", "y", "z"}, set(reg["meta2"][1]))
            self.assertEqual(1, ns.count())
        return self.run_with_ns(body)

    def test_metadataAny(self):
        def body(ns):
            self.storageProvider.clear()
            # register some names with metadata, and perform simple lookups
            ns.register("meta1", "PYRO:meta1@localhost:1111", metadata={"a", "b", "c"})
            ns.register("meta2", "PYRO:meta2@localhost:2222", metadata={"x", "y", "z"})
            ns.register("meta3", "PYRO:meta3@localhost:2222", metadata={"k", "l", "m"})
            result = ns.list(metadata_any={"1", "2", "3"})
            self.assertEqual({}, result)
            result = ns.list(metadata_any={"1", "2", "a"})
            self.assertEqual(1, len(result))
            self.assertIn("meta1", result)
            result = ns.list(metadata_any={"1", "2", "a", "z"})
            self.assertEqual(2, len(result))
            self.assertIn("meta1", result)
            self.assertIn("meta2", result)
        return self.run_with_ns(body)

    def test_emptyMetadata(self):
        def body(ns):
            self.storageProvider.clear()
            # register some names with metadata, and perform simple lookups
            ns.register("meta1", "PYRO:meta1@localhost:1111", metadata=[])
            uri, meta = ns.lookup("meta1", return_metadata=True)
            self.assertEqual([], meta)
            registrations = ns.list(return_metadata=True)
            for name in registrations:
                uri, meta = registrations[name]
                self.assertEqual([], meta)
            ns.set_metadata("meta1", [])
        return self.run_with_ns(body)

    def test_listNoMultipleFilters(self):
        def body(ns):
            with self.assertRaises(ValueError):
                ns.list(prefix="a", regex="a")
            with self.assertRaises(ValueError):
                ns.list(prefix="a", metadata_all=[])
        return self.run_with_ns(body)

    @async_test
    async def test_nameserverWithStmt(self):
        closed = []
        self.storageProvider.close = lambda: closed.append(True)
        self.assertIsNotNone(self.nameserverObject)
        await self.factory.close()
        self.assertEqual(closed, [True])  # Pyro4: ns.nameserver is None, its storage closed
        await self.factory.close()
        self.assertEqual(closed, [True])

    def test_NSCfunctions(self):
        def body(ns):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                Pyro4.nsc.handleCommand(ns, None, ["foo"])
                self.assertTrue(out.getvalue().startswith("Error: KeyError "))
                Pyro4.nsc.handleCommand(ns, None, ["ping"])
                self.assertTrue(out.getvalue().endswith("ping ok.\n"))
                Pyro4.nsc.handleCommand(ns, None, ["lookup", "WeirdName"])
                self.assertTrue(out.getvalue().endswith("Error: NamingError - unknown name: WeirdName\n"))
                Pyro4.nsc.handleCommand(ns, None, ["list"])
                self.assertTrue(out.getvalue().endswith("END LIST \n"))
                Pyro4.nsc.handleCommand(ns, None, ["listmatching", "name.$"])
                self.assertTrue(out.getvalue().endswith("END LIST - regex 'name.$'\n"))
                self.assertNotIn("name1", out.getvalue())
                Pyro4.nsc.handleCommand(ns, None, ["register", "name1", "PYRO:obj1@hostname:9999"])
                self.assertTrue(out.getvalue().endswith("Registered name1\n"))
                Pyro4.nsc.handleCommand(ns, None, ["remove", "name2"])
                self.assertTrue(out.getvalue().endswith("Nothing removed\n"))
                Pyro4.nsc.handleCommand(ns, None, ["listmatching", "name.$"])
                self.assertIn("name1 --> PYRO:obj1@hostname:9999", out.getvalue())
        return self.run_with_ns(body)


class NameServerDaemonTests(unittest.TestCase):
    """``test_naming2``'s tests of ``startNS`` and the command line tools' parsers (Pyro4 runs
    them once per storage, as methods of ``OfflineNameServerTests``; once is enough here)."""

    @async_test
    async def test_startNSfunc(self):
        ns1 = await serve_name_server(reactor, "127.0.0.1", 0, broadcast=False,
                                      out=io.StringIO())
        self.addCleanup(ns1.close)
        ns2 = await serve_name_server(reactor, "127.0.0.1", 0, bchost="127.0.0.1", bcport=0,
                                      out=io.StringIO())
        self.addCleanup(ns2.close)
        uri1 = ns1.uriFor(Pyro4.constants.NAMESERVER_NAME)
        self.assertIsInstance(uri1, Pyro4.core.URI)
        self.assertIsInstance(ns1, Pyro4ProtocolFactory)
        self.assertEqual(len(ns1.ports), 1)  # bc1 is None
        bc2 = ns2.ports[1]
        self.assertIsInstance(bc2.protocol, BroadcastResponder)
        self.assertTrue(hasattr(bc2, "fileno"))
        _ = bc2.protocol.datagramReceived
        await ns1.close()
        await ns2.close()

    def test_NSCmain(self):
        oldstdout = sys.stdout
        oldstderr = sys.stderr
        try:
            sys.stdout = io.StringIO()
            sys.stderr = io.StringIO()
            self.assertRaises(SystemExit, Pyro4.nsc.main, ["--invalidarg"])
            self.assertTrue("no such option" in sys.stderr.getvalue())
            sys.stderr.truncate(0)
            sys.stdout.truncate(0)
            self.assertRaises(SystemExit, Pyro4.nsc.main, ["-h"])
            self.assertTrue("show this help message" in sys.stdout.getvalue())
        finally:
            sys.stdout = oldstdout
            sys.stderr = oldstderr

    @async_test
    async def test_NAT(self):
        class NatFactory(Pyro4ProtocolFactory):  # Pyro4: startNS(nathost=..., natport=...)
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.natLocationStr = "nathosttest:12345"

        self.patch(pyro.server.factory, "Pyro4ProtocolFactory", NatFactory)
        ns = await serve_name_server(reactor, "127.0.0.1", 0, bchost="127.0.0.1", bcport=0,
                                     out=io.StringIO())
        self.addCleanup(ns.close)
        uri = ns.uriFor(Pyro4.constants.NAMESERVER_NAME)
        bc = ns.ports[1].protocol
        self.assertEqual("nathosttest:12345", uri.location)
        self.assertEqual("nathosttest:12345", ns.uriFor("thing").location)
        self.assertNotEqual("nathosttest:12345", bc.ns_uri.location, "broadcast location must not be the NAT location")
        await ns.close()


class OfflineNameServerTestsDbmStorage(OfflineNameServerTests):
    def setUp(self):
        if Pyro4.naming_storage.dbm is None:
            raise std_unittest.SkipTest("dbm must be available")
        self.directory = tempfile.mkdtemp()
        self.storageProvider = Pyro4.naming_storage.DbmStorage(os.path.join(self.directory, "pyro-test.dbm"))
        self.start_name_server(self.storageProvider)

    def tearDown(self):
        super().tearDown()
        for name in os.listdir(self.directory):
            os.remove(os.path.join(self.directory, name))
        os.rmdir(self.directory)

    def test_metadata(self):
        raise std_unittest.SkipTest("dbmstorage doesn't support metadata")

    def test_metadataAny(self):
        raise std_unittest.SkipTest("dbmstorage doesn't support metadata")


class OfflineNameServerTestsSqlStorage(OfflineNameServerTests):
    def setUp(self):
        if Pyro4.naming_storage.sqlite3 is None:
            raise std_unittest.SkipTest("sqlite3 must be available")
        self.directory = tempfile.mkdtemp()
        self.storageProvider = Pyro4.naming_storage.SqlStorage(os.path.join(self.directory, "pyro-test.sqlite"))
        self.start_name_server(self.storageProvider)

    def tearDown(self):
        super().tearDown()
        for name in os.listdir(self.directory):
            os.remove(os.path.join(self.directory, name))
        os.rmdir(self.directory)
