"""Pyro5 5.17's own server tests, run against ``Pyro4ProtocolFactory`` with real Pyro5 clients.

The tests come from Pyro5's ``tests/test_server.py`` (``TestServerOnce``,
``TestServerThreadNoTimeout`` and ``TestServerMultiplexNoTimeout``, ``TestServerBrokenHandshake``).
Each keeps its Pyro5 name (``testBatchProxy`` becomes ``test_batchProxy``) and, as far as
possible, its body: an unmodified ``Pyro5.api.Proxy`` talks over 127.0.0.1 to our factory,
served by trial's reactor; the client code runs in a thread (``client()``). As in the port of
Pyro4's tests (``test_conformance.py``), every test runs twice:

* :class:`ServerTestsReactorThread`: servant calls in the reactor thread (the closest relative
  of Pyro5's "multiplex" server); slow servants return Deferreds there (``_slow``);
* :class:`ServerTestsThreadPool`: servant calls in a ``threadpool=`` (Pyro5's "thread" server).

Where Pyro5 measures wall-clock time to show that something did (not) wait, the port uses a
gate (a servant that waits until the test opens it) instead; where it sleeps to let a linger
time pass, the item streams get a ``task.Clock``.

Pyro5's ``test_server_timeout.py`` (the same server tests with ``COMMTIMEOUT = 2.0``, which
gives Pyro5's clients, and its servers' sockets, a timeout) is ported in
``test_conformance5_timeout.py``: these tests again, with the real clients' ``COMMTIMEOUT``,
and the server side of it (the factory's ``idle_timeout`` beside Pyro5's thread server).

Left out, and why:

* ``testSerializedBlob``, ``testSerializedBlobMessage``: Pyro5's ``SerializedBlob`` class
  alone, no server (``testProxySerializedBlobArg`` is ported).
* ``testRegisterWeak``: ``register(obj, weak=True)`` is an option of Pyro5's ``Daemon``; the
  factory's ``register`` is Pyro4's, which has no weak registrations.
* ``testNatPortIPv6``: the NAT arguments of Pyro5's ``Daemon`` constructor; the factory
  takes its URI address from ``setAddress`` / ``natLocationStr`` (tested with Pyro4 clients).
* ``testSerializeConnected``: serializes and copies a ``Pyro5.api.Proxy`` in the client,
  without the server being involved beyond plain calls (which every other test makes).
* ``TestMetaAndExpose``, ``TestExposeDecorator``, ``TestBehaviorDecorator``, ``TestSimpleServe``:
  Pyro5's decorators, ``_get_exposed_members`` and ``serve()`` (which starts Pyro5's own
  daemon), no server of ours involved; what they decide is what our server applies (its
  exposure tests with Pyro5-decorated servants are in tests/server/test_pyro5.py).
"""

from __future__ import annotations

import Pyro5
import Pyro5.api
import Pyro5.callcontext
import Pyro5.client
import Pyro5.errors
import Pyro5.protocol
import Pyro5.serializers
import Pyro5.server
import serpent
from twisted.internet import defer, reactor
from twisted.internet.defer import DeferredQueue
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

from pyro.protocol import Pyro4ProtocolFactory

from ..support.our_server import in_thread, serve
from ..support.pyro5_peers import patch_pyro5_config

# the port of Pyro4's tests has the same helpers: Pyro4's @expose marks them for Pyro5 too
from .test_conformance import Gate, RecordingFactory, Resource, _slow, use_stream_clock

config = Pyro5.config


class NonserializableError(Exception):
    pass


@Pyro5.server.expose
class ServerTestObject:
    """Pyro5's ServerTestObject, with the same exposed members (``testProxyMetadata``)."""

    something = 99
    dict_attr = {}
    _done = None  # a DeferredQueue the test sets: slow methods report when they finished

    def __init__(self):
        self._dictionary = {"number": 42}
        self.dict_attr = {"number2": 43}
        self._value = 12345
        self.items = list("qwerty")

    def _notify(self, what):
        if self._done is not None:
            reactor.callFromThread(self._done.put, what)

    def getDict(self):
        return self._dictionary

    def getDictAttr(self):
        return self.dict_attr

    def multiply(self, x, y):
        return x * y

    def divide(self, x, y):
        return x // y

    def ping(self):
        pass

    def echo(self, obj):
        return obj

    def blob(self, blob):
        return blob.info, blob.deserialized()

    @Pyro5.server.oneway
    def oneway_delay(self, delay):
        result = _slow(delay, None)
        if isinstance(result, defer.Deferred):
            return result.addCallback(lambda _: self._notify("oneway_delay"))
        self._notify("oneway_delay")

    def delay(self, delay):
        result = _slow(delay, "slept %d seconds" % delay)
        self._notify("delay")
        return result

    def delayAndId(self, delay, id):
        return _slow(delay, "slept for " + str(id))

    def testargs(self, x, *args, **kwargs):
        return [x, list(args), kwargs]

    def nonserializableException(self):
        raise NonserializableError(("xantippe", lambda x: 0))

    @Pyro5.server.oneway
    def oneway_multiply(self, x, y):
        return x * y

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, newvalue):
        self._value = newvalue

    @property
    def dictionary(self):
        return self._dictionary

    def iterator(self):
        return iter(["one", "two", "three"])

    def generator(self):
        yield "one"
        yield "two"
        yield "three"
        yield "four"
        yield "five"

    def response_annotation(self):
        # part of the annotations tests
        if "XYZZ" not in Pyro5.callcontext.current_context.annotations:
            raise ValueError("XYZZ should be present in annotations in the daemon")
        if Pyro5.callcontext.current_context.annotations["XYZZ"] != b"data from proxy via new api":
            raise ValueError("XYZZ annotation has wrong data")
        Pyro5.callcontext.current_context.response_annotations["ANN2"] = \
            b"daemon annotation via new api"
        return {"annotations_in_daemon": Pyro5.callcontext.current_context.annotations}

    def new_test_object(self):
        return ServerTestObject()

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, item):
        return self.items[item]


class NotEverythingExposedClass:
    def __init__(self, name):
        self.name = name

    @Pyro5.server.expose
    def getName(self):
        return self.name

    def unexposed(self):
        return "you should not see this"


@Pyro5.server.expose
@Pyro5.server.behavior(instance_mode="single")
class ResourceService:
    def __init__(self):
        self.resources = set()  # the allocated resources

    def allocate(self, name):
        resource = Resource(name, self.resources)
        self.resources.add(resource)
        Pyro5.callcontext.current_context.track_resource(resource)

    def free(self, name):
        resources = {r for r in self.resources if r.name == name}
        self.resources -= resources
        for r in resources:
            r.close()
            Pyro5.callcontext.current_context.untrack_resource(r)

    def list(self):
        return [r.name for r in self.resources]


def _fresh_context():
    """Pyro5's client side reads ``current_context`` (annotations, correlation id) of its
    thread; the reactor's pool threads run many clients, so each starts clean."""
    Pyro5.callcontext.current_context.__init__()


def client(function, *args, **kwargs):
    """Run blocking Pyro5 client code in a thread; a Deferred of its result."""
    def run():
        _fresh_context()
        try:
            return function(*args, **kwargs)
        finally:
            _fresh_context()

    return in_thread(run)


class _ServerTests:
    threaded = False
    timeout = 30

    def setUp(self):
        patch_pyro5_config(self, SERIALIZER="serpent", LOGWIRE=False)
        old_pool_size = reactor.getThreadPool().max
        reactor.suggestThreadPoolSize(30)
        self.addCleanup(reactor.suggestThreadPoolSize, old_pool_size)
        self.pool = None
        if self.threaded:
            self.pool = ThreadPool(minthreads=1, maxthreads=16, name="servants")
            self.pool.start()
            self.addCleanup(self.pool.stop)
        self.factory = serve(self, RecordingFactory(threadpool=self.pool))
        self.obj = ServerTestObject()
        self.obj._done = DeferredQueue()
        self.objectUri = Pyro5.api.URI(str(self.factory.register(self.obj, "something")))
        self.factory.register(NotEverythingExposedClass("hello"), "unexposed")
        self.gate = Gate()
        self.gateUri = Pyro5.api.URI(str(self.factory.register(self.gate, "gate")))
        self.addCleanup(self.gate._unlock)

    # TestServerOnce ----------------------------------------------------------------------

    def test_pingMessage(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                p._pyroBind()
                conn = p._pyroConnection
                msg = Pyro5.protocol.SendingMessage(Pyro5.protocol.MSG_PING, 42, 999, 0,
                                                    b"something")
                conn.send(msg.data)
                msg = Pyro5.protocol.recv_stub(conn, [Pyro5.protocol.MSG_PING])
                self.assertEqual(msg.type, Pyro5.protocol.MSG_PING)
                self.assertEqual(msg.seq, 999)
                self.assertEqual(msg.data, b"pong")
                Pyro5.protocol.SendingMessage.ping(p._pyroConnection)  # the convenience method
        return client(body)

    def test_sequence(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                p.echo(1)
                p.echo(2)
                p.echo(3)
                self.assertEqual(p._pyroSeq, 3, "should have 3 method calls")
                p._pyroSeq = 999  # no effect: it is the reply from the server that is checked
                self.assertEqual(p.echo(42), 42)
        return client(body)

    def test_metaOnAttrs(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                self.assertEqual(p.multiply(5, 11), 55)
                x = p.getDict()
                self.assertEqual(x, {"number": 42})
                p.dictionary.update({"more": 666})  # the property is a local copy
                x = p.getDict()
                self.assertEqual(x, {"number": 42})  # not updated remotely
            with Pyro5.client.Proxy(self.objectUri) as p:
                with self.assertRaises(AttributeError):
                    p.dict_attr.update({"more": 666})  # meta only works for exposed properties
        return client(body)

    def test_someArgumentTypes(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                self.assertEqual(p.testargs(1), [1, [], {}])
                self.assertEqual(p.testargs(1, 2, 3, a=4), [1, [2, 3], {"a": 4}])
                self.assertEqual(p.testargs(1, **{"a": 2}), [1, [], {"a": 2}])
        return client(body)

    def test_unicodeKwargs(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                self.assertEqual(p.testargs(1, **{chr(65): 2}), [1, [], {chr(65): 2}])
                result = p.testargs(chr(0x20ac), **{chr(0x20ac): 2})
                self.assertEqual(result[0], chr(0x20ac))
                key = list(result[2].keys())[0]
                self.assertEqual(key, chr(0x20ac))
        return client(body)

    def test_normalProxy(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                self.assertEqual(p.multiply(7, 6), 42)
        return client(body)

    def test_exceptions(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                with self.assertRaises(ZeroDivisionError):
                    p.divide(1, 0)
                with self.assertRaises(TypeError):
                    p.multiply("a", "b")
        return client(body)

    def test_proxyMetadata(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                # unconnected proxies have empty metadata
                self.assertEqual(p._pyroAttrs, set())
                self.assertEqual(p._pyroMethods, set())
                self.assertEqual(p._pyroOneway, set())
                # connecting it should obtain metadata
                p._pyroBind()
                self.assertEqual(p._pyroAttrs, {"value", "dictionary"})
                self.assertEqual(p._pyroMethods, {
                    "echo", "getDict", "divide", "nonserializableException", "ping",
                    "oneway_delay", "delayAndId", "delay", "testargs", "multiply",
                    "oneway_multiply", "getDictAttr", "iterator", "generator",
                    "response_annotation", "blob", "new_test_object", "__iter__", "__len__",
                    "__getitem__"})
                self.assertEqual(p._pyroOneway, {"oneway_multiply", "oneway_delay"})
                p._pyroAttrs = None
                p._pyroGetMetadata()
                self.assertEqual(p._pyroAttrs, {"value", "dictionary"})
                p._pyroAttrs = None
                p._pyroGetMetadata(self.objectUri.object)
                self.assertEqual(p._pyroAttrs, {"value", "dictionary"})
                p._pyroAttrs = None
                p._pyroGetMetadata(known_metadata={"attrs": set(), "oneway": set(),
                                                   "methods": {"ping"}})
                self.assertEqual(p._pyroAttrs, set())
        return client(body)

    def test_proxyAttrsMetadataOn(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                a = p.value  # as soon as an attribute is used, the metadata is obtained
                self.assertEqual(a, 12345)
                a = p.multiply
                self.assertIsInstance(a, Pyro5.client._RemoteMethod)
                with self.assertRaises(AttributeError):
                    _ = p.non_existing_attribute
            with Pyro5.client.Proxy(self.objectUri) as p:
                p.value = 42  # setting attributes also gets the metadata
                self.assertEqual(p.value, 42)
                self.assertIn("value", p._pyroAttrs)
        return client(body)

    def test_proxyAnnotations(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                Pyro5.callcontext.current_context.annotations = {"XYZZ": b"invalid test data"}
                with self.assertRaises(ValueError):
                    p.response_annotation()
                Pyro5.callcontext.current_context.annotations = {
                    "XYZZ": b"data from proxy via new api"}
                response = p.response_annotation()
                self.assertEqual(
                    Pyro5.callcontext.current_context.response_annotations["ANN2"],
                    b"daemon annotation via new api")
                daemon_annotations = response["annotations_in_daemon"]
                self.assertEqual(serpent.tobytes(daemon_annotations["XYZZ"]),
                                 b"data from proxy via new api")
        return client(body)

    def test_exposedRequired(self):
        # Pyro5: self.daemon.proxyFor("unexposed"); ours: pyro5_proxy_for, same metadata
        proxy = self.factory.pyro5_proxy_for("unexposed")

        def body():
            with proxy as p:
                self.assertEqual(p._pyroMethods, {"getName"})
                self.assertEqual(p.getName(), "hello")
                with self.assertRaises(AttributeError) as e:
                    p.unexposed()
                expected_msg = "remote object '%s' has no exposed attribute or method " \
                               "'unexposed'" % p._pyroUri
                self.assertEqual(str(e.exception), expected_msg)
                with self.assertRaises(AttributeError) as e:
                    p.unexposed_set = 999
                expected_msg = "remote object '%s' has no exposed attribute 'unexposed_set'" \
                               % p._pyroUri
                self.assertEqual(str(e.exception), expected_msg)
                # and the server refuses it too, when the client does not check
                with self.assertRaises(AttributeError) as e:
                    p._pyroInvoke("unexposed", (), {})
                self.assertIn("unexposed", str(e.exception))

        def in_thread_proxy():
            proxy._pyroClaimOwnership()
            body()

        return client(in_thread_proxy)

    def test_properties(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                _ = p.value
                self.assertEqual(p._pyroAttrs, {"value", "dictionary"})
                with self.assertRaises(AttributeError):
                    _ = p.something
                with self.assertRaises(AttributeError):
                    _ = p._dictionary
                with self.assertRaises(AttributeError):
                    _ = p._value
                self.assertEqual(p.value, 12345)
                self.assertEqual(p.dictionary, {"number": 42})
        return client(body)

    def test_hasAttr(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                self.assertTrue(hasattr(p, "multiply"))
                self.assertTrue(hasattr(p, "oneway_multiply"))
                self.assertTrue(hasattr(p, "value"))
                self.assertFalse(hasattr(p, "_value"))
                self.assertFalse(hasattr(p, "_dictionary"))
                self.assertFalse(hasattr(p, "non_existing_attribute"))
        return client(body)

    def test_proxyMetadataKnown(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                self.assertEqual(p._pyroAttrs, set())
                self.assertEqual(p._pyroMethods, set())
                self.assertEqual(p._pyroOneway, set())
                # set some metadata manually, they should be overwritten at connection time
                p._pyroMethods = set("abc")
                p._pyroAttrs = set("xyz")
                p._pyroBind()
                self.assertNotEqual(p._pyroAttrs, set("xyz"))
                self.assertNotEqual(p._pyroMethods, set("abc"))
                self.assertNotEqual(p._pyroOneway, set())
        return client(body)

    def test_nonserializableException_other(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                with self.assertRaises(Pyro5.errors.PyroError) as x:
                    p.nonserializableException()
                exc = x.exception
                tblines = "\n".join(Pyro5.errors.get_pyro_traceback(type(exc), exc,
                                                                    exc.__traceback__))
                self.assertIn("unsupported serialized class", tblines)
        return client(body)

    def test_batchProxy(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                batch = Pyro5.client.BatchProxy(p)
                self.assertIsNone(batch.multiply(7, 6))
                self.assertIsNone(batch.divide(999, 3))
                self.assertIsNone(batch.ping())
                self.assertIsNone(batch.divide(999, 0))  # force an error here
                self.assertIsNone(batch.multiply(3, 4))  # this call should not be performed
                results = batch()
                self.assertEqual(next(results), 42)
                self.assertEqual(next(results), 333)
                self.assertIsNone(next(results))
                with self.assertRaises(ZeroDivisionError):
                    next(results)  # 999//0 should raise this error
                with self.assertRaises(StopIteration):
                    next(results)  # no more results after the error
        return client(body)

    @defer.inlineCallbacks
    def test_batchOneway(self):
        """Pyro5 times a oneway batch holding a ``delay(1)``: it returns at once. Here the
        batch waits at the gate instead, which stays shut until the client has returned."""
        def body():
            with Pyro5.client.Proxy(self.gateUri) as p:
                batch = Pyro5.client.BatchProxy(p)
                self.assertIsNone(batch.multiply(7, 6))
                self.assertIsNone(batch.wait("in the batch"))  # a wait must not matter
                self.assertIsNone(batch.multiply(3, 4))
                results = batch(oneway=True)
                self.assertIsNone(results)

        yield client(body)
        self.assertEqual((yield self.gate._entered.get()), "in the batch")
        self.gate._unlock()
        self.assertEqual((yield self.gate._passed.get()), "in the batch")

    def test_pyroTracebackNormal(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                with self.assertRaises(ZeroDivisionError) as x:
                    p.divide(999, 0)  # force error here
                exc = x.exception
                tb = "".join(Pyro5.errors.get_pyro_traceback(type(exc), exc, exc.__traceback__))
                self.assertIn("Remote traceback:", tb)  # validate if remote tb is present
                self.assertIn("ZeroDivisionError", tb)  # the error
                self.assertIn("return x // y", tb)  # the statement
        return client(body)

    def test_pyroTracebackBatch(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                batch = Pyro5.client.BatchProxy(p)
                self.assertIsNone(batch.divide(999, 0))  # force an exception here
                results = batch()
                with self.assertRaises(ZeroDivisionError) as x:
                    next(results)
                exc = x.exception
                tb = "".join(Pyro5.errors.get_pyro_traceback(type(exc), exc, exc.__traceback__))
                self.assertIn("Remote traceback:", tb)
                self.assertIn("ZeroDivisionError", tb)
                self.assertIn("return x // y", tb)
                with self.assertRaises(StopIteration):
                    next(results)
        return client(body)

    def test_autoProxy(self):
        name = ServerTestObject.__module__ + ".ServerTestObject"
        Pyro5.serializers.SerializerBase.register_dict_to_class(
            name, lambda cn, d: ServerTestObject())
        self.addCleanup(Pyro5.serializers.SerializerBase.unregister_dict_to_class, name)
        obj = ServerTestObject()

        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                result = p.echo(obj)
                self.assertIsInstance(result, ServerTestObject,
                                      "non-pyro object must be returned as normal class")
                self.factory.register(obj)
                result = p.echo(obj)
                self.assertIsInstance(result, Pyro5.client.Proxy,
                                      "serialized pyro object must be a proxy")
                self.factory.register(ServerTestObject)
                new_result = result.new_test_object()
                self.assertIsInstance(new_result, Pyro5.client.Proxy,
                                      "serialized pyro object must be a proxy")
                self.factory.unregister(ServerTestObject)
                self.factory.unregister(obj)
                result = p.echo(obj)
                self.assertIsInstance(result, ServerTestObject,
                                      "unregistered pyro object must be normal class again")
                result._pyroRelease() if isinstance(result, Pyro5.client.Proxy) else None
                new_result._pyroRelease()
        return client(body)

    def test_connectOnce(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as proxy:
                self.assertTrue(proxy._pyroBind(), "first bind should always connect")
                self.assertFalse(proxy._pyroBind(), "second bind should not connect again")
        return client(body)

    def test_maxMsgSize(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                bigobject = [42] * 1000
                result = p.echo(bigobject)
                self.assertEqual(bigobject, result)
                try:
                    config.MAX_MESSAGE_SIZE = 999
                    with self.assertRaises(Pyro5.errors.ProtocolError):
                        _ = p.echo(bigobject)  # message too large
                finally:
                    config.MAX_MESSAGE_SIZE = 1024 * 1024 * 1024
        return client(body)

    def test_maxMsgSize_on_the_server(self):
        """Not Pyro5's: the same limit, hit by the server (the client's is left large)."""
        self.factory.max_message_size = 999

        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                with self.assertRaises(Pyro5.errors.CommunicationError):
                    p.echo([42] * 1000)
        return client(body)

    def test_iterator(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                iterator = p.iterator()
                self.assertIsInstance(iterator, Pyro5.client._StreamResultIterator)
                self.assertEqual(next(iterator), "one")
                self.assertEqual(next(iterator), "two")
                self.assertEqual(next(iterator), "three")
                with self.assertRaises(StopIteration):
                    next(iterator)
                iterator.close()
        return client(body)

    def test_lenAndIterAndIndexing(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                self.assertEqual(len(p), 6)
                values = list(iter(p))
                self.assertEqual(values, ["q", "w", "e", "r", "t", "y"])
                self.assertEqual([p[i] for i in range(6)], ["q", "w", "e", "r", "t", "y"])
                with self.assertRaises(IndexError):
                    _ = p[6]
        return client(body)

    def test_generator(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                generator = p.generator()
                self.assertIsInstance(generator, Pyro5.client._StreamResultIterator)
                self.assertEqual([next(generator) for _ in range(5)],
                                 ["one", "two", "three", "four", "five"])
                with self.assertRaises(StopIteration):
                    next(generator)
                with self.assertRaises(StopIteration):
                    next(generator)
                generator.close()
                generator = p.generator()
                _ = [v for v in generator]
                with self.assertRaises(StopIteration):
                    next(generator)
                generator.close()
        return client(body)

    @defer.inlineCallbacks
    def test_cleanup(self):
        proxies = [Pyro5.client.Proxy(self.objectUri) for _ in range(3)]

        def connect():
            for p in proxies:
                p._pyroClaimOwnership()
                p.echo(42)

        yield client(connect)
        # several active connections still up: see if we can cleanly shut down the daemon
        self.assertEqual(len(self.factory.protocols), 3)
        yield self.factory.close()
        self.assertEqual(self.factory.protocols, set())

        def after():
            for p in proxies:
                p._pyroClaimOwnership()
                p._pyroRelease()

        yield client(after)

    def test_proxySerializedBlobArg(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                blobinfo, blobdata = p.blob(Pyro5.client.SerializedBlob("blobname", [1, 2, 3]))
                self.assertEqual(blobinfo, "blobname")
                self.assertEqual(blobdata, [1, 2, 3])
        return client(body)

    @defer.inlineCallbacks
    def test_resourceFreeing(self):
        rsvc = ResourceService()
        uri = self.factory.register(rsvc)
        resources = {}

        def body():
            with Pyro5.client.Proxy(str(uri)) as p:
                p.allocate("r1")
                p.allocate("r2")
                resources.update({r.name: r for r in rsvc.resources})
                p.free("r1")
                rsc = p.list()
                self.assertEqual(rsc, ["r2"])
                self.assertTrue(resources["r1"].close_called)
                self.assertFalse(resources["r2"].close_called)

        yield client(body)
        yield self.factory.gone.get()  # Pyro5 sleeps 0.02 s; we wait for the disconnect
        self.assertTrue(resources["r1"].close_called)
        self.assertTrue(resources["r2"].close_called)

        def again():
            with Pyro5.client.Proxy(str(uri)) as p:
                self.assertEqual(p.list(), [], "r2 must now be freed due to connection loss")

        yield client(again)

    # TestServerThreadNoTimeout -----------------------------------------------------------

    def test_connectionStuff(self):
        def body():
            p1 = Pyro5.client.Proxy(self.objectUri)
            p2 = Pyro5.client.Proxy(self.objectUri)
            self.assertFalse(p1._pyroConnection)
            self.assertFalse(p2._pyroConnection)
            p1.ping()
            p2.ping()
            _ = p1.multiply(11, 5)
            _ = p2.multiply(11, 5)
            self.assertTrue(p1._pyroConnection)
            self.assertTrue(p2._pyroConnection)
            p1._pyroRelease()
            p1._pyroRelease()
            p2._pyroRelease()
            p2._pyroRelease()
            self.assertFalse(p1._pyroConnection)
            self.assertFalse(p2._pyroConnection)
            p1._pyroBind()
            _ = p1.multiply(11, 5)
            _ = p2.multiply(11, 5)
            self.assertTrue(p1._pyroConnection)
            self.assertTrue(p2._pyroConnection)
            self.assertEqual(p1._pyroUri.protocol, "PYRO")
            self.assertEqual(p2._pyroUri.protocol, "PYRO")
            p1._pyroRelease()
            p2._pyroRelease()
        return client(body)

    def test_reconnectAndCompression(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                self.assertFalse(p._pyroConnection)
                p._pyroReconnect(tries=100)
                self.assertTrue(p._pyroConnection)
            self.assertFalse(p._pyroConnection)
            try:
                with Pyro5.client.Proxy(self.objectUri) as p:
                    config.COMPRESSION = True
                    self.assertEqual(p.multiply(5, 11), 55)
                    self.assertEqual(p.multiply("*" * 500, 2), "*" * 1000)
            finally:
                config.COMPRESSION = False
        return client(body)

    def test_onewayMetaOn(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                self.assertEqual(p._pyroOneway, set())  # not bound: no meta info yet
                p._pyroBind()
                self.assertIn("oneway_multiply", p._pyroOneway)  # after binding it is there
                self.assertEqual(p.multiply(5, 11), 55)  # not tagged as oneway
                self.assertIsNone(p.oneway_multiply(5, 11))  # tagged as oneway
                p._pyroOneway = set()
                self.assertEqual(p.multiply(5, 11), 55)
                self.assertEqual(p.oneway_multiply(5, 11), 55)
                with self.assertRaises(AttributeError):
                    p.nonexisting_method()
                p._pyroOneway.add("nonexisting_method")
                # still fails: the metadata tells Pyro what methods actually exist
                with self.assertRaises(AttributeError):
                    p.nonexisting_method()
        return client(body)

    def test_onewayWithProxySubclass(self):
        class ProxyWithOneway(Pyro5.client.Proxy):
            def __init__(self, arg):
                super().__init__(arg)
                self._pyroOneway = {"oneway_multiply", "multiply"}

        def body():
            with ProxyWithOneway(self.objectUri) as p:
                self.assertIsNone(p.oneway_multiply(5, 11))
                self.assertEqual(p.multiply(5, 11), 55)  # (the handshake's metadata rules)
                p._pyroOneway = set()
                self.assertEqual(p.oneway_multiply(5, 11), 55)
                self.assertEqual(p.multiply(5, 11), 55)
        return client(body)

    @defer.inlineCallbacks
    def test_onewayDelayed(self):
        """Pyro5 times a oneway ``delay(1)`` and a normal call behind it: the oneway call runs
        in its own thread, so the next call is answered while it still runs. Here the oneway
        call waits at a gate that stays shut until the normal call was answered."""
        def body():
            with Pyro5.client.Proxy(self.gateUri) as p:
                p.multiply(1, 1)
                self.assertIsNone(p.oneway_wait("oneway"))  # oneway: we continue right away
                self.assertEqual(p.multiply(5, 11), 55,
                                 "expected a normal result from a non-oneway call")

        yield client(body)
        self.assertEqual((yield self.gate._entered.get()), "oneway")
        self.gate._unlock()
        self.assertEqual((yield self.gate._passed.get()), "oneway")

    def test_exception(self):
        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                with self.assertRaises(ZeroDivisionError) as x:
                    p.divide(1, 0)
                exc = x.exception
                pyrotb = "".join(Pyro5.errors.get_pyro_traceback(type(exc), exc,
                                                                exc.__traceback__))
                self.assertIn("Remote traceback", pyrotb)
                self.assertIn("ZeroDivisionError", pyrotb)
        return client(body)

    @defer.inlineCallbacks
    def test_timeoutCall(self):
        # Pyro5 times delay(0.5), then expects delay(1) to time out after 0.1 seconds; here the
        # slow call waits at a gate that stays shut until the client has timed out.
        patch_pyro5_config(self, COMMTIMEOUT=None)  # as Pyro5's (test_conformance5_timeout)

        def body():
            with Pyro5.client.Proxy(self.objectUri) as p:
                p.ping()
                self.assertEqual(p.delay(0.01), "slept 0 seconds")
            with Pyro5.client.Proxy(self.gateUri) as p:
                self.assertEqual(p.multiply(5, 11), 55)
                p._pyroTimeout = 0.1
                with self.assertRaises(Pyro5.errors.TimeoutError):
                    p.wait("too late")

        yield client(body)
        yield self.obj._done.get()
        self.gate._unlock()
        self.assertEqual((yield self.gate._passed.get()), "too late")  # answered to nobody

    @defer.inlineCallbacks
    def test_timeoutConnect(self):
        """Pyro5 connects to a daemon that never runs its loop; here, the handshake hangs
        (our ``validateHandshake`` may return a Deferred) until the client gave up."""
        pending = defer.Deferred()

        class UnresponsiveFactory(Pyro4ProtocolFactory):
            def validateHandshake(self, conn, data):
                return pending

        factory = serve(self, UnresponsiveFactory())
        uri = str(factory.register(ServerTestObject()))

        def body():
            p = Pyro5.client.Proxy(uri)
            p._pyroTimeout = 0.2
            with self.assertRaises(Pyro5.errors.TimeoutError) as e:
                p.ping()
            self.assertEqual(str(e.exception), "receiving: timeout")

        yield client(body)
        pending.callback("too late")  # the answer goes nowhere, and nothing breaks

    def test_serverConnections(self):
        def body():
            proxies = [Pyro5.client.Proxy(self.objectUri) for _ in range(10)]
            try:
                for p in proxies:
                    p._pyroTimeout = 0.5
                    p._pyroBind()
                for p in proxies:
                    p.ping()
            finally:
                for p in proxies:
                    p._pyroRelease()
        return client(body)

    def test_generatorProxyClose(self):
        def body():
            p = Pyro5.client.Proxy(self.objectUri)
            generator = p.generator()
            p._pyroRelease()
            with self.assertRaises(Pyro5.errors.ConnectionClosedError):
                next(generator)
        return client(body)

    @defer.inlineCallbacks
    def test_generatorLinger(self):
        # Pyro5 sleeps 2 seconds to let a 0.5 second linger time pass; we move a clock.
        patch_pyro5_config(self, ITER_STREAM_LINGER=0.5)
        clock = use_stream_clock(self.factory)
        p = Pyro5.client.Proxy(self.objectUri)
        box = {}

        def first():
            p._pyroClaimOwnership()
            box["generator"] = generator = p.generator()
            self.assertEqual(next(generator), "one")
            p._pyroRelease()
            with self.assertRaises(Pyro5.errors.ConnectionClosedError):
                next(generator)

        yield client(first)
        yield self.factory.gone.get()
        (owner, _, linger_since, _), = self.factory.streaming_responses.values()
        self.assertEqual((owner, linger_since), (None, 1000))  # lingering (Pyro5's 0.5 s)

        def second():
            p._pyroClaimOwnership()
            p._pyroReconnect()
            self.assertEqual(next(box["generator"]), "two",
                             "generator should resume after reconnect")
            p._pyroRelease()

        yield client(second)
        yield self.factory.gone.get()
        clock.advance(2)  # the linger time passes: the generator *is* gone

        def third():
            p._pyroClaimOwnership()
            p._pyroReconnect()
            with self.assertRaises(Pyro5.errors.PyroError):  # not resumable any more
                next(box["generator"])
            p._pyroRelease()

        yield client(third)

    @defer.inlineCallbacks
    def test_generatorNoLinger(self):
        patch_pyro5_config(self, ITER_STREAM_LINGER=0)
        p = Pyro5.client.Proxy(self.objectUri)
        box = {}

        def first():
            p._pyroClaimOwnership()
            box["generator"] = generator = p.generator()
            self.assertEqual(next(generator), "one")
            p._pyroRelease()

        yield client(first)
        yield self.factory.gone.get()  # Pyro5 sleeps 0.2 s; we wait for the disconnect
        self.assertEqual(self.factory.streaming_responses, {})

        def second():
            p._pyroClaimOwnership()
            with self.assertRaises(Pyro5.errors.ConnectionClosedError):
                next(box["generator"])
            p._pyroReconnect()
            with self.assertRaises(Pyro5.errors.PyroError):  # not resumable after reconnect
                next(box["generator"])
            box["generator"].close()
            p._pyroRelease()

        yield client(second)

    # TestServerBrokenHandshake ---------------------------------------------------------------

    def test_daemonConnectFail(self):
        # Pyro5 sabotages Daemon._handshake; the public way is validateHandshake raising
        class FactoryWithSabotagedHandshake(Pyro4ProtocolFactory):
            def validateHandshake(self, conn, data):
                raise Exception("rigged connection failure")

        factory = serve(self, FactoryWithSabotagedHandshake())
        uri = str(factory.register(ServerTestObject(), "something"))

        def body():
            with Pyro5.client.Proxy(uri) as p:
                with self.assertRaises(Pyro5.errors.CommunicationError) as x:
                    p.ping()
                message = str(x.exception)
                self.assertIn("rejected:", message)
                self.assertIn("rigged connection failure", message)
        return client(body)


class ServerTestsReactorThread(_ServerTests, unittest.TestCase):
    """Servant calls in the reactor thread (Pyro5's "multiplex" server's relative)."""


class ServerTestsThreadPool(_ServerTests, unittest.TestCase):
    """Servant calls in a thread pool (Pyro5's "thread" server's relative)."""

    threaded = True
