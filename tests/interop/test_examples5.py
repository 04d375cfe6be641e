"""Pyro5 5.17's own examples that apply, with unmodified ``Pyro5.api.Proxy`` clients.

Each test ports one example of Pyro5's ``examples/`` directory (MIT licensed, by Irmen de
Jong): its servant classes from ``server.py``, as they are, and the calls of its
``client.py`` in a worker thread, what it prints turned into assertions. Every test runs
against four servers with the same assertions, so a pass shows that ours behaves as Pyro5's
daemons do:

* :class:`OnOurReactor` and :class:`OnOurThreadPool`: ``Pyro4ProtocolFactory`` (servants in
  the reactor thread, or in a thread pool);
* :class:`OnPyro5Thread` and :class:`OnPyro5Multiplex`: Pyro5's own daemons.

Ported: attributes, handshake, streaming, instancemode, exceptions, batchedcalls, autoproxy,
callcontext. The others need what these tests leave out: a name server of Pyro5's own
(nameserverstress, ns-metadata: ours is in tests/nameserver/test_pyro5.py), Pyro5's
``Daemon`` internals (eventloop, gui_eventloop, socketpair, servertypes, unixdomainsock and
ssl as Daemon options, echoserver), interactive or multi-process programs (chatbox, banks,
robots, distributed-*, messagebus, stockquotes, warehouse, shoppingcart, filetransfer,
hugetransfer, http), or client-side features only (autoreconnect, autoretry, timeout,
threadproxysharing, circular, diffie-hellman, custom-serialization, thirdpartylib, timezones).
Adaptations: ``print`` in servants is dropped (the results carry what the test checks),
``time.sleep`` in a slow generator is shortened, and ``PYRONAME:`` becomes the object's URI.
"""

from __future__ import annotations

import itertools
import uuid

import Pyro5.api
import Pyro5.errors
import Pyro5.server
from Pyro5.api import behavior, current_context, expose, oneway
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

from pyro.protocol import Pyro4ProtocolFactory

from ..support.our_server import serve
from ..support.pyro5_peers import start_pyro5_daemon

# -- examples/attributes -------------------------------------------------------------------------

@expose
class Thingy:
    def __init__(self):
        self.sub = {"name": "value"}
        self.value = 42
        self._value = 123
        self.__value = 999

    def __dunder__(self):
        return "yep"

    def __len__(self):
        return 200

    def getValue(self):
        return self.value

    @property
    def prop_value(self):
        return self.value

    @prop_value.setter
    def prop_value(self, value):
        self.value = value

    @property
    def prop_sub(self):
        return self.sub


# -- examples/streaming --------------------------------------------------------------------------

@expose
class Streamer:
    def list(self):
        return [1, 2, 3, 4, 5, 6, 7, 8, 9]

    def iterator(self):
        return iter([1, 2, 3, 4, 5, 6, 7, 8, 9])

    def generator(self):
        i = 1
        while i < 10:
            yield i
            i += 1

    def fibonacci(self):
        a, b = 0, 1
        while True:
            yield a
            a, b = b, a + b

    @property
    def prop_iter(self):
        return iter([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])

    @property
    def prop_generator(self):
        return (x for x in range(10))


# -- examples/instancemode -----------------------------------------------------------------------

#: Instances are told apart by a serial number, not id(): a session's instance is dropped
#: when its proxy disconnects, and CPython may give the next one the same address.
_serials = itertools.count()


class _Numbered:
    def __init__(self):
        self.serial = next(_serials)


@behavior(instance_mode="single")
class SingleInstance(_Numbered):
    @expose
    def msg(self, message):
        return self.serial


@behavior(instance_mode="session", instance_creator=lambda clazz: clazz.create_instance())
class SessionInstance(_Numbered):
    @expose
    def msg(self, message):
        return self.serial, self.correlation_id

    @classmethod
    def create_instance(cls):
        obj = cls()
        obj.correlation_id = current_context.correlation_id
        return obj


@behavior(instance_mode="percall")
class PercallInstance(_Numbered):
    @expose
    def msg(self, message):
        return self.serial


# -- examples/exceptions -------------------------------------------------------------------------

@expose
class TestClass:
    def div(self, arg1, arg2):
        return arg1 / arg2

    def error(self):
        raise ValueError("a valueerror! Great!")

    def error2(self):
        return ValueError("a valueerror! Great!")

    def othererr(self):
        raise RuntimeError("a runtime error!")

    @oneway
    def onewayerr(self):
        raise ValueError("error in oneway call!")

    def complexerror(self):
        x = Foo()
        x.crash()

    def unserializable(self):
        return TestClass.unserializable


class Foo:
    def crash(self):
        self.crash2("going down...")

    def crash2(self, arg):
        # this statement will crash on purpose:
        x = arg // 2
        return x


# -- examples/batchedcalls -----------------------------------------------------------------------

@expose
class Thing:
    def __init__(self):
        self.total = 0

    def multiply(self, a, b):
        return a * b

    def add(self, a, b):
        return a + b

    def divide(self, a, b):
        return a // b

    def error(self):
        return 1 // 0

    def delay(self, seconds):
        return seconds

    def printmessage(self, message):
        return 0

    def increment(self):
        self.total += 1
        return self.total


# -- examples/autoproxy --------------------------------------------------------------------------

@expose
class AutoThing:
    def __init__(self, name):
        self.name = name

    def getName(self):
        return self.name


@expose
class Factory:
    def __init__(self, daemon):
        self.daemon = daemon

    def createSomething(self, name):
        thing = AutoThing(name)
        self.daemon.register(thing)
        return thing


# -- examples/callcontext ------------------------------------------------------------------------

@expose
class EchoServer:
    def echo(self, message):
        ctx = current_context
        return {"message": message, "correlation_id": str(ctx.correlation_id),
                "annotations": {k: bytes(v).decode() for k, v in ctx.annotations.items()}}

    @oneway
    def oneway_echo(self, message):
        return None


# -- the tests -----------------------------------------------------------------------------------

class ExampleTests:
    timeout = 30

    def serve(self, *objects):
        """Register ``objects`` (or classes) on this test's server: their URIs as strings."""
        raise NotImplementedError

    def client(self, function):
        return threads.deferToThread(function)

    def test_attributes(self):
        (uri,) = self.serve(Thingy())

        def client():
            with Pyro5.api.Proxy(uri) as p:
                self.assertEqual(p.prop_value, 42)
                p.prop_value += 500
                self.assertEqual(p.prop_value, 542)
                self.assertEqual(p.getValue(), 542)
                self.assertEqual(p.__dunder__(), "yep")
            with Pyro5.api.Proxy(uri) as p:
                for name in ("sub", "value", "_value", "__value"):
                    with self.assertRaises(AttributeError):
                        getattr(p, name)
            with Pyro5.api.Proxy(uri) as p:
                value = p.prop_sub
                p.prop_sub.update({"test": "nope"})  # only updates the local copy
                self.assertEqual(p.prop_sub, value)
                with self.assertRaises(Exception) as caught:
                    _ = p.prop_sub.foobar.attribute
                self.assertIsNone(getattr(caught.exception, "_pyroTraceback", None))
        return self.client(client)

    def test_handshake(self):
        (uri,) = self.serve(Thingy())

        class CustomHandshakeProxy(Pyro5.api.Proxy):
            def _pyroValidateHandshake(self, response):
                object.__setattr__(self, "response", response)

        def client():
            with CustomHandshakeProxy(uri) as proxy:
                proxy._pyroHandshake = "pancakes"
                proxy._pyroBind()
                self.assertEqual(proxy.response, ["how", "are", "you", "doing"])
            with CustomHandshakeProxy(uri) as proxy:
                proxy._pyroHandshake = "waffles"
                with self.assertRaises(Pyro5.errors.CommunicationError) as caught:
                    proxy._pyroBind()
                self.assertIn("wrong secret code, connection refused", str(caught.exception))
        return self.client(client)

    def test_streaming(self):
        (uri,) = self.serve(Streamer())

        def client():
            with Pyro5.api.Proxy(uri) as p:
                self.assertEqual(p.list(), list(range(1, 10)))
                self.assertEqual(list(p.iterator()), list(range(1, 10)))
                self.assertEqual(list(p.generator()), list(range(1, 10)))
                self.assertEqual(list(p.prop_iter), list(range(1, 11)))
                self.assertEqual(list(p.prop_generator), list(range(10)))
                fib = p.fibonacci()
                self.assertEqual([next(fib) for _ in range(10)],
                                 [0, 1, 1, 2, 3, 5, 8, 13, 21, 34])
                fib.close()
        return self.client(client)

    def test_instancemode(self):
        percall, session, single = self.serve(PercallInstance, SessionInstance, SingleInstance)

        def client():
            ids = []
            for _ in range(2):
                with Pyro5.api.Proxy(session) as p:
                    Pyro5.api.current_context.correlation_id = corr = uuid.uuid4()
                    try:
                        answers = [p.msg("hello") for _ in range(3)]
                    finally:
                        Pyro5.api.current_context.correlation_id = None
                    self.assertEqual(len({id_ for id_, _ in answers}), 1)  # one per session
                    self.assertEqual({str(c) for _, c in answers}, {str(corr)})
                    ids.append(answers[0][0])
            self.assertNotEqual(ids[0], ids[1])  # a new proxy, a new session
            singles = set()
            for _ in range(3):
                with Pyro5.api.Proxy(single) as p:
                    singles.update(p.msg("hello") for _ in range(3))
            self.assertEqual(len(singles), 1)  # the same always, even over proxies
            with Pyro5.api.Proxy(percall) as p:
                self.assertEqual(len({p.msg("hello") for _ in range(3)}), 3)  # new each call
        return self.client(client)

    def test_exceptions(self):
        (uri,) = self.serve(TestClass())

        def client():
            with Pyro5.api.Proxy(uri) as test:
                self.assertAlmostEqual(test.div(2.0, 9.0), 2.0 / 9.0)
                with self.assertRaises(ZeroDivisionError):
                    test.div(2, 0)
                with self.assertRaises(ValueError):
                    test.error()
                result = test.error2()  # returned, not raised
                self.assertIsInstance(result, ValueError)
                self.assertEqual(str(result), "a valueerror! Great!")
                with self.assertRaises(RuntimeError):
                    test.othererr()
                self.assertIsNone(test.onewayerr())  # a oneway call simply succeeds
                with self.assertRaises(Pyro5.errors.PyroError) as caught:
                    test.unserializable()
                self.assertIn("unsupported serialized class", str(caught.exception))
                with self.assertRaises(TypeError) as caught:
                    test.complexerror()
                exc = caught.exception
                remote = "".join(Pyro5.errors.get_pyro_traceback(type(exc), exc,
                                                                 exc.__traceback__))
                self.assertIn("x = arg // 2", remote)
                self.assertIn("self.crash2('going down...')", remote.replace('"', "'"))
        return self.client(client)

    def test_batchedcalls(self):
        thing = Thing()
        (uri,) = self.serve(thing)

        def client():
            with Pyro5.api.Proxy(uri) as p:
                batch = Pyro5.api.BatchProxy(p)
                self.assertIsNone(batch.multiply(7, 6))
                batch.add(10, 20)
                batch.divide(999, 3)
                batch.error()  # 1//0: the batch stops here
                batch.add(1, 1)
                results = batch()
                self.assertEqual([next(results), next(results), next(results)], [42, 30, 333])
                with self.assertRaises(ZeroDivisionError):
                    next(results)
                with self.assertRaises(StopIteration):
                    next(results)
                batch = Pyro5.api.BatchProxy(p)
                for _ in range(5):
                    batch.increment()
                self.assertEqual(list(batch()), [1, 2, 3, 4, 5])
                batch = Pyro5.api.BatchProxy(p)
                batch.increment()
                self.assertIsNone(batch(oneway=True))
                self.assertEqual(p.increment(), 7)  # after the oneway batch, on its connection
        return self.client(client)

    def test_autoproxy(self):
        (uri,) = self.serve(Factory(self.daemon))

        def client():
            with Pyro5.api.Proxy(uri) as factory:
                thing = factory.createSomething("thing one")
                with thing:
                    self.assertIsInstance(thing, Pyro5.api.Proxy)
                    self.assertEqual(thing.getName(), "thing one")
        return self.client(client)

    def test_callcontext(self):
        (uri,) = self.serve(EchoServer())

        def client():
            ctx = Pyro5.api.current_context
            ctx.correlation_id = corr = uuid.uuid4()
            ctx.annotations = {"XYZZ": b"Hello, I am a custom annotation from the proxy!"}
            try:
                with Pyro5.api.Proxy(uri) as proxy:
                    reply = proxy.echo("hello")
                    self.assertIsNone(proxy.oneway_echo("hello"))
            finally:
                ctx.correlation_id, ctx.annotations = None, {}
            self.assertEqual(reply["correlation_id"], str(corr))
            self.assertEqual(reply["annotations"]["XYZZ"],
                             "Hello, I am a custom annotation from the proxy!")
        return self.client(client)


class _Ours(ExampleTests):
    """Ours. ``register`` is Pyro4's: it refuses an object or class that still has a
    ``_pyroId`` from another daemon (a class registered by an earlier test here) unless
    ``force=True``, where Pyro5's refuses only what is registered in the same daemon; the
    servants here are registered with ``force=True`` for that reason."""

    threaded = False

    def setUp(self):
        pool = None
        if self.threaded:
            pool = ThreadPool(minthreads=1, maxthreads=8, name="servants")
            pool.start()
            self.addCleanup(pool.stop)

        class CustomDaemon(Pyro4ProtocolFactory):  # examples/handshake's, as it is
            def validateHandshake(self, conn, data):
                if data == "pancakes":
                    return ["how", "are", "you", "doing"]
                if data == "hello":  # (every other example's proxy)
                    return super().validateHandshake(conn, data)
                raise ValueError("wrong secret code, connection refused")

        self.daemon = serve(self, CustomDaemon(threadpool=pool))

    def serve(self, *objects):
        return [str(self.daemon.register(obj, force=True)) for obj in objects]


class OnOurReactor(_Ours, unittest.TestCase):
    """Ours, servants in the reactor thread."""


class OnOurThreadPool(_Ours, unittest.TestCase):
    """Ours, servants in a thread pool."""

    threaded = True


class _Pyro5Daemon(ExampleTests):
    servertype = "thread"

    def setUp(self):
        class CustomDaemon(Pyro5.server.Daemon):
            def validateHandshake(self, conn, data):
                if data == "pancakes":
                    return ["how", "are", "you", "doing"]
                if data == "hello":
                    return super().validateHandshake(conn, data)
                raise ValueError("wrong secret code, connection refused")

        peer = start_pyro5_daemon(self.servertype, daemon_class=CustomDaemon)
        self.addCleanup(threads.deferToThread, peer.stop)
        self.daemon = peer.daemon

    def serve(self, *objects):
        return [str(self.daemon.register(obj)) for obj in objects]


class OnPyro5Thread(_Pyro5Daemon, unittest.TestCase):
    servertype = "thread"


class OnPyro5Multiplex(_Pyro5Daemon, unittest.TestCase):
    servertype = "multiplex"

