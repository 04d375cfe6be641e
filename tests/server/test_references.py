"""URIs and proxies of either generation, returned by a servant, reach real unmodified
``Pyro4.Proxy`` and ``Pyro5.api.Proxy`` clients as their own generation's (same text, same
metadata), in every serializer each generation has, in plain calls, nested values, batches
and item streams; what a client sends arrives as its own generation decodes it.
See :mod:`pyro.server.references`.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import Pyro4
import Pyro4.core
import Pyro4.errors
import Pyro4.util
import Pyro5.api
import Pyro5.client
import Pyro5.core
import Pyro5.serializers
import serpent
from twisted.trial import unittest

from ..support.config import patch_config
from ..support.our_server import in_thread, serve


def _available4(name):
    try:
        return bool(Pyro4.util.get_serializer(name))
    except Pyro4.errors.SerializeError:
        return False


#: Pyro4's serializers installed here (cloudpickle is in no extra of ours)
SERIALIZERS4 = tuple(filter(_available4, ("serpent", "json", "marshal", "msgpack", "pickle",
                                          "dill", "cloudpickle")))
SERIALIZERS5 = ("serpent", "json", "marshal", "msgpack")
NAMED = "PYRONAME:some.service@127.0.0.1:9"
UNIX = "PYRO:thing@./u:/run/pyro.sock"


@Pyro5.api.expose
class Target:
    def ping(self):
        return "pong"


@Pyro5.api.expose
class Holder:
    """A servant holding URIs and proxies of both generations (to ``target``)."""

    def __init__(self, target):
        self.target = str(target)

    def uri4(self):
        return Pyro4.core.URI(self.target)

    def uri5(self):
        return Pyro5.core.URI(self.target)

    def nested(self):
        return {"four": [Pyro4.core.URI(NAMED), Pyro4.core.URI(UNIX)],
                "five": [Pyro5.core.URI(NAMED), Pyro5.core.URI(UNIX)]}

    def proxy4(self):
        proxy = Pyro4.Proxy(self.target)
        proxy._pyroMethods, proxy._pyroOneway, proxy._pyroAttrs = {"ping", "fire"}, {"fire"}, {"a"}
        return proxy

    def proxy5(self):
        proxy = Pyro5.api.Proxy(self.target)
        proxy._pyroMethods, proxy._pyroOneway, proxy._pyroAttrs = {"ping", "fire"}, {"fire"}, {"a"}
        return proxy

    def stream(self):
        yield Pyro4.core.URI(NAMED)
        yield Pyro5.core.URI(UNIX)

    def describe(self, value):
        return [type(value).__module__ + "." + type(value).__name__, str(value)]


def _client(generation, uri, serializer):
    proxy = (Pyro4.Proxy if generation == 4 else Pyro5.api.Proxy)(str(uri))
    proxy._pyroTimeout = 10
    proxy._pyroSerializer = serializer
    return proxy


def _batch(generation, proxy):
    return Pyro4.batch(proxy) if generation == 4 else Pyro5.api.BatchProxy(proxy)


class ReferencesTest(unittest.TestCase):
    """Each test: one generation's client, one serializer, every case."""

    def setUp(self):
        patch_config(self, SERIALIZERS_ACCEPTED=set(SERIALIZERS4))  # (read by the factory)
        self.factory = serve(self)
        self.target = self.factory.register(Target(), "target")
        self.uri = self.factory.register(Holder(self.target), "holder")

    def check(self, generation, serializer):
        uri_class = Pyro4.core.URI if generation == 4 else Pyro5.core.URI
        proxy_class = Pyro4.core.Proxy if generation == 4 else Pyro5.client.Proxy
        target = str(self.target)

        def blocking():
            seen = {}
            with _client(generation, self.uri, serializer) as holder:
                seen["uri4"] = holder.uri4()
                seen["uri5"] = holder.uri5()
                seen["stream"] = list(holder.stream())
                for name in ("proxy4", "proxy5"):
                    got = getattr(holder, name)()
                    seen[name] = (got, {*got._pyroMethods}, {*got._pyroOneway}, {*got._pyroAttrs})
                    with got:
                        seen[name + " call"] = got.ping()
                seen["sent"] = holder.describe(uri_class(target))
                if serializer != "marshal":  # (Pyro's marshal writes a top-level object only)
                    seen["nested"] = holder.nested()
                    calls = _batch(generation, holder)
                    calls.uri4()
                    calls.uri5()
                    seen["batch"] = list(calls())
            return seen

        def same(value, text):
            self.assertIs(type(value), uri_class)
            self.assertEqual(str(value), text)

        def checked(seen):
            same(seen["uri4"], target)
            same(seen["uri5"], target)
            self.assertEqual([str(item) for item in seen["stream"]], [NAMED, UNIX])
            for item in seen["stream"]:
                self.assertIs(type(item), uri_class)
            for name in ("proxy4", "proxy5"):
                got, methods, oneway, attrs = seen[name]
                self.assertIs(type(got), proxy_class)
                same(got._pyroUri, target)
                self.assertEqual((methods, oneway, attrs), ({"ping", "fire"}, {"fire"}, {"a"}))
                self.assertEqual(seen[name + " call"], "pong")
            self.assertEqual(seen["sent"], [uri_class.__module__ + ".URI", target])
            if serializer != "marshal":
                self.assertEqual(sorted(seen["nested"]), ["five", "four"])
                for values in seen["nested"].values():
                    self.assertEqual([str(value) for value in values], [NAMED, UNIX])
                    for value in values:
                        self.assertIs(type(value), uri_class)
                self.assertEqual(len(seen["batch"]), 2)
                for value in seen["batch"]:
                    same(value, target)

        return in_thread(blocking).addCallback(checked)


def _add_tests():
    for generation, names in ((4, SERIALIZERS4), (5, SERIALIZERS5)):
        for serializer in names:
            def test(self, generation=generation, serializer=serializer):
                return self.check(generation, serializer)

            test.__name__ = "test_pyro%d_client_%s" % (generation, serializer)
            setattr(ReferencesTest, test.__name__, test)


_add_tests()


class OutsidePyroTest(unittest.TestCase):
    """Serialized by neither generation (serpent or pickle used directly), a URI and a proxy
    stay what they are: the hooks convert only for a Pyro serializer of the other generation."""

    def test_serpent_and_pickle_directly(self):
        import pyro.server.references  # noqa: F401  (installs the hooks)

        for value in (Pyro5.core.URI(NAMED), Pyro4.core.URI(NAMED)):
            text = serpent.dumps(value, module_in_classname=True)
            self.assertIn(type(value).__module__.encode() + b".URI", text)
            self.assertIs(type(pickle.loads(pickle.dumps(value))), type(value))
        proxy = Pyro5.api.Proxy(NAMED)
        self.assertIs(type(pickle.loads(pickle.dumps(proxy))), Pyro5.client.Proxy)
        self.assertIn(b"Pyro5.client.Proxy", serpent.dumps(proxy, module_in_classname=True))

    def test_each_generation_serializes_its_own(self):
        import pyro.server.references  # noqa: F401

        for value in (Pyro5.core.URI(NAMED), Pyro4.core.URI(NAMED)):
            for name in SERIALIZERS5:
                data = Pyro4.util.get_serializer(name).dumps(value)
                self.assertEqual(str(Pyro4.util.get_serializer(name).loads(data)), NAMED)
                self.assertIs(type(Pyro4.util.get_serializer(name).loads(data)), Pyro4.core.URI)
                data = Pyro5.serializers.serializers[name].dumps(value)
                self.assertIs(type(Pyro5.serializers.serializers[name].loads(data)),
                              Pyro5.core.URI)


class Pyro4OnlyServerTest(unittest.TestCase):
    def test_hooks_installed_without_serving_pyro5(self):
        """A Pyro4-only server whose process has Pyro5 loaded converts Pyro5 URIs for its
        Pyro4 clients (``register`` installs the hooks), without importing the Pyro5
        server parts."""
        code = (
            "import sys, Pyro5.api, Pyro4.util\n"
            "from pyro.protocol import Pyro4ProtocolFactory\n"
            "f = Pyro4ProtocolFactory(pyro_versions=(4,)); f.setAddress('127.0.0.1', 1)\n"
            "class T: pass\n"
            "f.register(T(), 'x')\n"
            "ser = Pyro4.util.get_serializer('json')\n"
            "print(type(ser.loads(ser.dumps(Pyro5.api.URI('PYRO:x@h:1')))).__module__)\n"
            "print('pyro.server.pyro5' in sys.modules)\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=60).stdout.split()
        self.assertEqual(out, ["Pyro4.core", "False"])


class CounterpartTest(unittest.TestCase):
    """What carries over to the other generation's proxy, and what cannot."""

    def test_pyro4_proxy_as_pyro5(self):
        from pyro.server.references import to_pyro5

        proxy = Pyro4.Proxy(NAMED)
        proxy._pyroSerializer, proxy._pyroHandshake = "pickle", {"token": 1}
        proxy._pyroHmacKey = b"secret"
        proxy._pyroMethods = {"ping"}
        converted = to_pyro5(proxy)
        self.assertIs(type(converted), Pyro5.client.Proxy)
        self.assertEqual(converted.__getstate__(),
                         (NAMED, (), ("ping",), (), {"token": 1}, None))  # Pyro5 has no pickle
        proxy._pyroSerializer = "msgpack"
        self.assertEqual(to_pyro5(proxy)._pyroSerializer, "msgpack")

    def test_pyro5_proxy_as_pyro4(self):
        from pyro.server.references import to_pyro4

        proxy = Pyro5.api.Proxy(UNIX)
        proxy._pyroSerializer, proxy._pyroOneway = "json", {"fire"}
        converted = to_pyro4(proxy)
        self.assertIs(type(converted), Pyro4.core.Proxy)
        self.assertEqual((str(converted._pyroUri), converted._pyroOneway,
                          converted._pyroSerializer, converted._pyroHmacKey),
                         (UNIX, {"fire"}, "json", None))
        self.assertEqual(to_pyro4(42), 42)
