"""A name server on the reactor, for real: restarted on its port, with sql storage, with a key.

Real sockets on 127.0.0.1 and unmodified ``Pyro4.Proxy`` clients (in threads):

- ``keep_registered`` registers a name, the name server is closed and a new, empty one is
  started on the same port, and a fresh ``PYRONAME:`` lookup by a Pyro4 proxy works again
  once it has been registered again; ``stop()`` removes it;
- ``factory.close()`` closes the name server's storage (Pyro4's ``NameServerDaemon.close()``);
  with ``SqlStorage`` the names are in the file for the next name server, and no handle on
  the file is left open;
- ``hmac_key=`` on the factory and on the name server helpers;
- Pyro4's names for storages (``"sql:FILE"``...), with Pyro4's errors.

The waits for the restart are real (the keeper's interval is 0.1 s); every one is bounded.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import Pyro4
import Pyro4.naming
import Pyro4.naming_storage
from Pyro4 import constants, errors
from twisted.internet import reactor, task
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import TestCase

from pyro.nameserver import (
    keep_registered,
    open_storage,
    register_name_server,
    serve_name_server,
)
from pyro.protocol import DEFAULT_BACKLOG, Pyro4ProtocolFactory

from ..support import our_server
from ..support.asynctest import async_test
from ..support.config import patch_config

WAIT = 10.0  # seconds any one condition may take to come true


@Pyro4.expose
class Thing:
    def hello(self) -> str:
        return "hi"


async def eventually(condition: Any, what: str) -> None:
    """Poll ``condition()`` on the reactor (every 20 ms) until true, at most ``WAIT`` s."""
    deadline = reactor.seconds() + WAIT
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError("still not true after %s s: %s" % (WAIT, what))
        await task.deferLater(reactor, 0.02, lambda: None)


class KeepRegisteredTests(TestCase):
    def start_name_server(self, port: int = 0, **kwargs: Any) -> tuple[Any, Any, int]:
        factory = Pyro4ProtocolFactory()
        listening = reactor.listenTCP(port, factory, interface="127.0.0.1",
                                      backlog=DEFAULT_BACKLOG)
        factory.ports.append(listening)
        port = listening.getHost().port
        factory.setAddress("127.0.0.1", port)
        self.addCleanup(factory.close)
        nameserver, _ = register_name_server(factory, **kwargs)
        return factory, nameserver, port

    @async_test
    async def test_a_name_survives_a_name_server_restart(self) -> None:
        thing = our_server.serve(self).register(Thing())
        factory, nameserver, port = self.start_name_server()
        kept = keep_registered("example.kept", thing, ns_host="127.0.0.1", ns_port=port,
                               interval=0.1, backoff=lambda failures: 0.05, timeout=5)
        self.addCleanup(kept.stop)
        ns_uri = await kept.when_registered()
        self.assertEqual(str(ns_uri), "PYRO:Pyro.NameServer@127.0.0.1:%d" % port)
        pyroname = "PYRONAME:example.kept@127.0.0.1:%d" % port
        self.assertEqual(await our_server.call(pyroname, "hello"), "hi")

        await factory.close()  # the name server is gone...
        await eventually(lambda: kept.ns_uri is None, "the keeper noticed")
        _, restarted, _ = self.start_name_server(port)  # ... and back, empty, on its port
        self.assertRaises(errors.NamingError, restarted.lookup, "example.kept")
        await eventually(lambda: kept.registrations == 2, "registered again")

        def fresh_lookup() -> Any:
            with Pyro4.Proxy(pyroname) as proxy:
                return proxy.hello(), str(Pyro4.resolve(pyroname))

        self.assertEqual(await our_server.in_thread(fresh_lookup), ("hi", str(thing)))
        await kept.stop()
        self.assertRaises(errors.NamingError, restarted.lookup, "example.kept")

    @async_test
    async def test_with_an_hmac_key_and_metadata(self) -> None:
        thing = our_server.serve(self, hmac_key=b"secret").register(Thing())
        _, nameserver, port = self.start_name_server(hmac_key=b"secret")
        kept = keep_registered("example.keyed", thing, ns_host="127.0.0.1", ns_port=port,
                               hmac_key=b"secret", metadata={"role:worker"}, interval=0.1)
        self.addCleanup(kept.stop)
        await kept.when_registered()

        def blocking() -> Any:
            with Pyro4.Proxy("PYROMETA:role:worker@127.0.0.1:%d" % port) as proxy:
                proxy._pyroHmacKey = b"secret"  # used for the name server too
                return proxy.hello()

        self.assertEqual(await our_server.in_thread(blocking), "hi")
        await kept.stop()
        self.assertEqual(set(nameserver.list()), {constants.NAMESERVER_NAME})


class StorageTests(TestCase):
    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.path = os.path.join(self.directory, "names.sqlite")

    def tearDown(self) -> None:
        for name in os.listdir(self.directory):
            os.remove(os.path.join(self.directory, name))
        os.rmdir(self.directory)

    def open_handles(self) -> list[str]:
        fds = "/proc/self/fd"
        if not os.path.isdir(fds):
            self.skipTest("no /proc/self/fd to look for open files")
        names = []
        for fd in os.listdir(fds):
            try:
                names.append(os.readlink(os.path.join(fds, fd)))
            except OSError:
                pass
        return [name for name in names if name.startswith(self.path)]

    @async_test
    async def test_close_closes_sql_storage_and_the_names_are_kept(self) -> None:
        storage = Pyro4.naming_storage.SqlStorage(self.path)
        closed: list[bool] = []
        storage.close = lambda: closed.append(True)  # type: ignore[method-assign]
        factory = our_server.serve(self)
        nameserver, ns_uri = register_name_server(factory, storage)
        self.assertIs(nameserver.storage, storage)  # an empty storage is falsy: still used
        thing = str(factory.register(Thing()))

        def register() -> None:
            with Pyro4.Proxy(ns_uri) as ns:
                ns.register("example.persisted", thing, metadata={"kept"})

        await our_server.in_thread(register)
        self.assertEqual(closed, [])
        await factory.close()
        self.assertEqual(closed, [True])
        self.assertEqual(self.open_handles(), [])  # released: nothing holds the file

        again = our_server.serve(self)
        restarted, uri = register_name_server(again, Pyro4.naming_storage.SqlStorage(self.path))
        found, metadata = restarted.lookup("example.persisted", return_metadata=True)
        self.assertEqual((str(found), metadata), (thing, ["kept"]))
        self.assertEqual(str(restarted.lookup(constants.NAMESERVER_NAME)), str(uri))

    def test_close_closes_the_storage_once_the_connections_are_gone(self) -> None:
        events: list[str] = []
        factory = Pyro4ProtocolFactory()
        factory.setAddress("127.0.0.1", 9090)

        class Storage(Pyro4.naming.MemoryStorage):
            def close(self) -> None:
                events.append("closed with %d connections" % len(factory.protocols))

        register_name_server(factory, Storage())
        self.successResultOf(factory.close())
        self.assertEqual(events, ["closed with 0 connections"])

    def test_a_failing_close_is_logged(self) -> None:
        factory = Pyro4ProtocolFactory()
        factory.setAddress("127.0.0.1", 9090)

        class Storage(Pyro4.naming.MemoryStorage):
            def close(self) -> None:
                raise OSError("disk on fire")

        register_name_server(factory, Storage())
        self.successResultOf(factory.close())
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)


class HmacKeyTests(TestCase):
    @async_test
    async def test_the_factory_takes_the_key(self) -> None:
        factory = our_server.serve(self, hmac_key="secret")  # str or bytes, as Pyro4
        self.assertEqual(factory._pyroHmacKey, b"secret")
        uri = factory.register(Thing())

        def call(key: bytes | None) -> Any:
            with Pyro4.Proxy(uri) as proxy:
                proxy._pyroHmacKey = key
                return proxy.hello()

        self.assertEqual(await our_server.in_thread(call, b"secret"), "hi")
        with self.assertRaises(errors.CommunicationError) as failure:
            await our_server.in_thread(call, None)
        self.assertIn("hmac key config not symmetric", str(failure.exception))
        factory._pyroHmacKey = None  # still settable, as on a Pyro4 Daemon
        self.assertEqual(await our_server.in_thread(call, None), "hi")

    def test_register_name_server_sets_it_and_refuses_another(self) -> None:
        factory = Pyro4ProtocolFactory()
        factory.setAddress("127.0.0.1", 9090)
        register_name_server(factory, hmac_key="k1")
        self.assertEqual(factory._pyroHmacKey, b"k1")
        other = Pyro4ProtocolFactory(hmac_key=b"k1")
        other.setAddress("127.0.0.1", 9091)
        register_name_server(other, hmac_key=b"k1")  # the same key: fine
        third = Pyro4ProtocolFactory(hmac_key=b"k1")
        third.setAddress("127.0.0.1", 9092)
        self.assertRaises(ValueError, register_name_server, third, hmac_key=b"k2")
        self.assertEqual(third._pyroHmacKey, b"k1")

    @async_test
    async def test_serve_name_server_with_a_key(self) -> None:
        import io

        factory = await serve_name_server(reactor, "127.0.0.1", 0, broadcast=False,
                                          hmac_key=b"secret", out=io.StringIO())
        self.addCleanup(factory.close)
        port = factory.ports[0].getHost().port

        def locate(key: bytes | None) -> Any:
            with Pyro4.locateNS("127.0.0.1", port, hmac_key=key) as ns:
                return ns.count()

        self.assertEqual(await our_server.in_thread(locate, b"secret"), 1)
        with self.assertRaises(errors.NamingError):
            await our_server.in_thread(locate, None)


class StorageNameTests(TestCase):
    """Pyro4's names for storages (``NameServerDaemon(storage=...)``, ``-s``)."""

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.addCleanup(lambda: [os.remove(os.path.join(self.directory, name))
                                 for name in os.listdir(self.directory)]
                        and os.rmdir(self.directory))

    def test_memory_sql_and_dbm(self) -> None:
        self.assertIsInstance(open_storage(None), Pyro4.naming.MemoryStorage)
        self.assertIsInstance(open_storage("memory"), Pyro4.naming.MemoryStorage)
        sql = open_storage("sql:" + os.path.join(self.directory, "names.sqlite"))
        self.assertIsInstance(sql, Pyro4.naming_storage.SqlStorage)
        with capturedLogs() as events:
            dbm = open_storage("dbm:" + os.path.join(self.directory, "names.dbm"))
        self.assertIsInstance(dbm, Pyro4.naming_storage.DbmStorage)
        self.assertIn("Warning: the DbmStorage doesn't support metadata.",
                      [formatEvent(e) for e in events])
        storage = Pyro4.naming.MemoryStorage()
        self.assertIs(open_storage(storage), storage)

    def test_register_name_server_takes_the_names(self) -> None:
        factory = Pyro4ProtocolFactory()
        factory.setAddress("127.0.0.1", 9090)
        path = os.path.join(self.directory, "names.sqlite")
        nameserver, uri = register_name_server(factory, "sql:" + path)
        self.assertEqual(Pyro4.naming_storage.SqlStorage(path)[constants.NAMESERVER_NAME][0],
                         str(uri))

    def test_unknown_names_are_pyro4s_error_and_change_nothing(self) -> None:
        for bad in ("bogus", "sql:", "dbm:", "SQL:x"):
            with self.assertRaises(ValueError) as pyro4:
                Pyro4.naming.NameServerDaemon(port=0, storage=bad)  # fails before binding
            factory = Pyro4ProtocolFactory()
            factory.setAddress("127.0.0.1", 9090)
            with self.assertRaises(ValueError) as ours:
                register_name_server(factory, bad, hmac_key=b"key")
            self.assertEqual(str(ours.exception), str(pyro4.exception))
            self.assertEqual((list(factory.objectsById), factory._pyroHmacKey),
                             ([constants.DAEMON_NAME], None))


class ServeNameServerAutocleanTests(TestCase):
    @async_test
    async def test_ns_autoclean_is_read_and_checked_before_listening(self) -> None:
        import io

        from ..support.pyro4_peers import free_port

        port = free_port()
        patch_config(self, NS_AUTOCLEAN=1.0)
        with self.assertRaises(ValueError):
            await serve_name_server(reactor, "127.0.0.1", port, broadcast=False,
                                    out=io.StringIO())
        probe = reactor.listenTCP(port, Pyro4ProtocolFactory(), interface="127.0.0.1")
        await probe.stopListening()  # the port was free: nothing was left listening
        Pyro4.config.NS_AUTOCLEAN = 30.0  # PYRO_NS_AUTOCLEAN=30 python -m pyro ns
        factory = await serve_name_server(reactor, "127.0.0.1", 0, broadcast=False,
                                          out=io.StringIO())
        self.addCleanup(factory.close)
        cleaner = factory.objectsById[constants.NAMESERVER_NAME].cleaner
        self.assertEqual((cleaner.interval, cleaner.running), (30.0, True))
        await factory.close()
        self.assertFalse(cleaner.running)
