"""Exposure: nothing a client names runs unless it is exposed, whatever the path.

Pyro4 4.82 decides exposure *after* evaluating what a call names: ``util.getAttribute`` does
``getattr(obj, name)`` first, so calling an unexposed property's name as a method runs its
getter (and a custom descriptor's ``__get__``, or the servant's own ``__getattr__``) before the
call is refused; ``get_exposed_property_value`` / ``set_exposed_property_value`` do
``getattr(obj.__class__, name)``, which runs a metaclass property or a descriptor's
``__get__(None, cls)``, and with ``REQUIRE_EXPOSE=False`` they read and write private
properties. Ours decides from the class first (:mod:`pyro.server.exposure`) and refuses with
Pyro4's own error, for plain, oneway and batched calls and for attribute access.

Every test counts what ran in the servant (``ran``) and compares our replies with those of a
real Pyro4 daemon serving the same servant class, over real sockets: raw frames
(:class:`~tests.support.scripted_peer.ScriptedPeer`) and unmodified ``Pyro4.Proxy`` clients.
"""

from __future__ import annotations

import functools
import gc
import types
from typing import Any

import Pyro4
import Pyro4.util
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.logger import LogLevel, capturedLogs
from twisted.trial import unittest

from pyro import wire
from pyro.server import exposure

from ..support.config import config_changed, patch_config
from ..support.our_server import in_thread, serve
from ..support.pyro4_peers import serve_pyro4
from ..support.scripted_peer import ScriptedPeer
from .test_bad_input import RawPeer


def servant_classes(ran: list[Any]) -> types.SimpleNamespace:
    """Fresh servant classes (per test: nothing cached from another test) that note in
    ``ran`` whatever unexposed code of theirs runs."""

    class Meta(type):
        @property
        def meta_secret(cls):
            ran.append("meta_secret")
            return 42

        @meta_secret.setter
        def meta_secret(cls, value):
            ran.append("meta_secret=")

    class Sneaky:
        """A descriptor of its own (not a property): its ``__get__`` is code too."""

        def __get__(self, instance, owner):
            ran.append("sneaky")
            return 42

        def __set__(self, instance, value):
            ran.append("sneaky=")

    class Guarded(metaclass=Meta):
        sneaky = Sneaky()

        @Pyro4.expose
        def ping(self):
            return "pong"

        @Pyro4.expose
        @property
        def shown(self):
            return "shown"

        @property
        def secret(self):
            ran.append("secret")
            return 42

        @secret.setter
        def secret(self, value):
            ran.append("secret=")

        @property
        def _hidden(self):
            ran.append("_hidden")
            return 42

        @_hidden.setter
        def _hidden(self, value):
            ran.append("_hidden=")

    class Dynamic:
        """Makes attributes up in ``__getattr__`` (a delegating servant, say)."""

        @Pyro4.expose
        def ping(self):
            return "pong"

        def __getattr__(self, name):
            if name.startswith("_"):
                raise AttributeError(name)
            ran.append("__getattr__ " + name)
            return lambda *args: "made up"

    class Intercepting:
        """Makes attributes up in its own ``__getattribute__``."""

        @Pyro4.expose
        def ping(self):
            return "pong"

        def __getattribute__(self, name):
            try:
                return object.__getattribute__(self, name)
            except AttributeError:
                if name.startswith("_"):
                    raise
                ran.append("__getattribute__ " + name)
                return lambda *args: "made up"

    class Evaluating:
        """Code that Pyro4 runs before it refuses the call (or that fails as it runs): it
        must run once per request, as in Pyro4's daemon, never once more."""

        @Pyro4.expose
        def ping(self):
            return "pong"

        @Pyro4.expose
        @property
        def shown(self):  # exposed, called as a method: evaluated, then refused
            ran.append("shown")
            return "shown"

        @property
        def failing(self):  # evaluated with REQUIRE_EXPOSE off: its getter raises
            ran.append("failing")
            raise ValueError("failing getter")

        def unexposed(self):
            return "unexposed"

        def __getattribute__(self, name):
            if name == "unexposed":
                ran.append("__getattribute__ unexposed")
            return object.__getattribute__(self, name)

        def __getattr__(self, name):
            if not name.startswith("_"):
                ran.append("__getattr__ " + name)
            raise AttributeError(name)

    return types.SimpleNamespace(Guarded=Guarded, Dynamic=Dynamic, Intercepting=Intercepting,
                                 Evaluating=Evaluating)


def batch_of(*names: str) -> tuple[tuple[str, tuple[()], dict[str, Any]], ...]:
    return tuple((name, (), {}) for name in names)


def outcome(peer: ScriptedPeer, reply: Any) -> tuple[str, str] | tuple[str, Any]:
    """``("ok", value)`` or ``(exception type name, message)`` of one reply."""
    value = peer.load(reply)
    if reply.flags & wire.FLAGS_EXCEPTION:
        return type(value).__name__, str(value)
    return "ok", value


class ExposureOverRawFramesTest(unittest.TestCase):
    """Raw frames over real sockets, to our factory and to a Pyro4 daemon (same classes)."""

    def setUp(self):
        self.ran: list[Any] = []
        self.pyro4_ran: list[Any] = []
        ours = servant_classes(self.ran)
        theirs = servant_classes(self.pyro4_ran)
        self.pyro4 = serve_pyro4(self, "thread")  # first: stopped after our raw peers closed
        self.pyro4.register(theirs.Guarded(), "guarded")
        self.pyro4.register(theirs.Dynamic(), "dynamic")
        self.pyro4.register(theirs.Intercepting(), "intercepting")
        self.pyro4.register(theirs.Evaluating(), "evaluating")
        self.factory = serve(self)
        self.factory.register(ours.Guarded(), "guarded")
        self.factory.register(ours.Dynamic(), "dynamic")
        self.factory.register(ours.Intercepting(), "intercepting")
        self.factory.register(ours.Evaluating(), "evaluating")

    @defer.inlineCallbacks
    def raw(self, object_id: str, port: int | None = None) -> Any:
        """A handshaken raw connection to ``object_id`` on our server (or ``port``)."""
        peer = ScriptedPeer()
        if port is None:
            port = self.factory.ports[0].getHost().port
        raw = yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), RawPeer(peer))
        self.addCleanup(lambda: raw.closed)
        self.addCleanup(raw.transport.loseConnection)
        (ok,) = yield raw.replies_after(peer.connect(object_id), 1)
        self.assertEqual(ok.type, wire.MSG_CONNECTOK)
        return raw

    @defer.inlineCallbacks
    def ask(self, object_id: str, method: str, *args: Any, flags: int = 0,
            pyro4: bool = False) -> Any:
        """Send one request on a new connection, then a ``ping`` on the same one; the
        request's outcome (None for a oneway request, which gets no reply)."""
        raw = yield self.raw(object_id, self.pyro4.port if pyro4 else None)
        request = raw.peer.invoke(object_id, method, *args, flags=flags)
        ping = raw.peer.invoke(object_id, "ping")
        oneway = bool(flags & wire.FLAGS_ONEWAY)
        replies = yield raw.replies_after(request + ping, 1 if oneway else 2)
        self.assertEqual(outcome(raw.peer, replies[-1]), ("ok", "pong"))  # still in sync
        raw.transport.loseConnection()
        yield raw.closed
        return None if oneway else outcome(raw.peer, replies[0])

    @defer.inlineCallbacks
    def assert_as_pyro4(self, object_id: str, method: str, *args: Any, flags: int = 0) -> Any:
        """Our outcome is the Pyro4 daemon's (same exception type and message); nothing of
        ours ran. Returns what ran in Pyro4's servant for this request."""
        del self.pyro4_ran[:]
        ours = yield self.ask(object_id, method, *args, flags=flags)
        theirs = yield self.ask(object_id, method, *args, flags=flags, pyro4=True)
        self.assertEqual(ours, theirs, (object_id, method, args))
        self.assertEqual(self.ran, [], (object_id, method, args))
        return list(self.pyro4_ran)

    @defer.inlineCallbacks
    def test_plain_call_of_unexposed_members_runs_nothing(self):
        for object_id, name, runs_in_pyro4 in [
                ("guarded", "secret", "secret"),  # an unexposed property, called
                ("guarded", "sneaky", "sneaky"),  # a descriptor of its own
                ("dynamic", "anything", "__getattr__ anything"),  # made up by __getattr__
                ("intercepting", "anything", "__getattribute__ anything")]:
            ours = yield self.ask(object_id, name)
            self.assertEqual(ours, ("AttributeError",
                                    "attempt to access unexposed attribute '%s'" % name))
            pyro4_ran = yield self.assert_as_pyro4(object_id, name)
            self.assertEqual(pyro4_ran, [runs_in_pyro4])  # Pyro4's flaw: it ran, then refused

    @defer.inlineCallbacks
    def test_unknown_and_private_names_get_pyro4s_errors(self):
        for object_id, name in [("guarded", "nosuch"), ("guarded", "_hidden"),
                                ("guarded", "meta_secret"), ("guarded", "__class__"),
                                ("dynamic", "_private"), ("guarded", "__getattribute__")]:
            pyro4_ran = yield self.assert_as_pyro4(object_id, name)
            self.assertEqual(pyro4_ran, [])

    @defer.inlineCallbacks
    def test_oneway_call_of_unexposed_members_runs_nothing(self):
        for object_id, name in [("guarded", "secret"), ("guarded", "sneaky"),
                                ("dynamic", "anything"), ("intercepting", "anything")]:
            yield self.assert_as_pyro4(object_id, name, flags=wire.FLAGS_ONEWAY)

    @defer.inlineCallbacks
    def test_batched_call_of_unexposed_members_runs_nothing(self):
        for object_id, name in [("guarded", "secret"), ("guarded", "sneaky"),
                                ("dynamic", "anything"), ("intercepting", "anything")]:
            calls = batch_of("ping", name, "ping")
            ours = yield self.ask(object_id, "<batch>", *calls, flags=wire.FLAGS_BATCH)
            self.assertEqual(ours, ("AttributeError",
                                    "attempt to access unexposed attribute '%s'" % name))
            yield self.assert_as_pyro4(object_id, "<batch>", *calls, flags=wire.FLAGS_BATCH)

    @defer.inlineCallbacks
    def test_oneway_batch_of_unexposed_members_runs_nothing_and_logs_no_error(self):
        with capturedLogs() as events:
            for object_id, name in [("guarded", "secret"), ("dynamic", "anything")]:
                calls = batch_of("ping", name)
                yield self.assert_as_pyro4(object_id, "<batch>", *calls,
                                           flags=wire.FLAGS_BATCH | wire.FLAGS_ONEWAY)
            gc.collect()  # an unhandled failed Deferred would be reported now
        self.assertEqual([e for e in events if e["log_level"] >= LogLevel.error], [])

    @defer.inlineCallbacks
    def test_refused_oneway_batch_logs_no_error(self):
        """A oneway batch owes no reply: its refusal is not an unhandled error either."""
        with capturedLogs() as events:
            for name in ("nosuch", "_private"):
                yield self.assert_as_pyro4("guarded", "<batch>", *batch_of("ping", name),
                                           flags=wire.FLAGS_BATCH | wire.FLAGS_ONEWAY)
            gc.collect()  # an unhandled failed Deferred would be reported now
        self.assertEqual([e for e in events if e["log_level"] >= LogLevel.error], [])

    @defer.inlineCallbacks
    def test_attribute_access_runs_nothing_unexposed(self):
        unexposed = "attempt to access unexposed or unknown remote attribute '%s'"
        for method, args in [
                ("__getattr__", ("meta_secret",)),  # Pyro4 runs the metaclass's property
                ("__getattr__", ("sneaky",)),  # Pyro4 runs Sneaky.__get__(None, Guarded)
                ("__getattr__", ("secret",)),
                ("__setattr__", ("meta_secret", 1)),
                ("__setattr__", ("sneaky", 1)),
                ("__setattr__", ("secret", 1))]:
            ours = yield self.ask("guarded", method, *args)
            self.assertEqual(ours, ("AttributeError", unexposed % args[0]))
            yield self.assert_as_pyro4("guarded", method, *args)
        for method, args in [("__getattr__", ("nosuch",)), ("__getattr__", ("ping",)),
                             ("__setattr__", ("ping", 1)), ("__getattr__", (7,)),
                             ("__getattr__", ("anything",)), ("__setattr__", ("anything", 1))]:
            yield self.assert_as_pyro4("dynamic" if "anything" in args else "guarded",
                                       method, *args)

    @defer.inlineCallbacks
    def test_attribute_access_of_private_names_is_refused_without_require_expose(self):
        """Pyro4 reads and writes a private property for a raw client when ``REQUIRE_EXPOSE``
        is off (its proxy refuses to send such a request); ours refuses private names always."""
        patch_config(self, REQUIRE_EXPOSE=False)
        for method, args in [("__getattr__", ("_hidden",)), ("__setattr__", ("_hidden", 1))]:
            ours = yield self.ask("guarded", method, *args)
            self.assertEqual(ours, ("AttributeError", "attempt to access unexposed or unknown "
                                                      "remote attribute '_hidden'"))
        self.assertEqual(self.ran, [])

    @defer.inlineCallbacks
    def test_without_require_expose_everything_public_runs_as_in_pyro4(self):
        patch_config(self, REQUIRE_EXPOSE=False)
        for object_id, method, args, expected in [
                ("guarded", "secret", (), ["secret"]),  # evaluated, then not callable
                ("guarded", "sneaky", (), ["sneaky"]),
                ("dynamic", "anything", (), ["__getattr__ anything"]),
                ("intercepting", "anything", (), ["__getattribute__ anything"]),
                ("guarded", "__getattr__", ("secret",), ["secret"]),
                ("guarded", "__setattr__", ("secret", 1), ["secret="])]:
            del self.ran[:], self.pyro4_ran[:]
            ours = yield self.ask(object_id, method, *args)
            theirs = yield self.ask(object_id, method, *args, pyro4=True)
            self.assertEqual(ours, theirs)
            self.assertEqual((self.ran, self.pyro4_ran), (expected, expected))

    @defer.inlineCallbacks
    def test_what_pyro4_evaluates_before_refusing_runs_once(self):
        """A refusal (or failure) that comes from evaluating what the call names: the
        servant's code ran once in Pyro4's daemon, and must here too (the shortcut for plain
        calls must not evaluate it, give up, and leave the general path to evaluate it again)."""
        for require_expose, method, expected in [
                (True, "shown", ["shown"]),  # exposed property called: getter, then refused
                (True, "unexposed", ["__getattribute__ unexposed"]),
                (False, "failing", ["failing"]),  # the getter raises
                (False, "anything", ["__getattr__ anything"])]:  # __getattr__ raises
            with config_changed(REQUIRE_EXPOSE=require_expose):
                del self.ran[:], self.pyro4_ran[:]
                ours = yield self.ask("evaluating", method)
                theirs = yield self.ask("evaluating", method, pyro4=True)
            self.assertEqual(ours, theirs, method)
            self.assertEqual((self.ran, self.pyro4_ran), (expected, expected), method)


class ExposureWithPyro4ProxiesTest(unittest.TestCase):
    """Unmodified ``Pyro4.Proxy`` clients over real sockets."""

    def setUp(self):
        self.ran: list[Any] = []
        self.classes = servant_classes(self.ran)
        self.factory = serve(self)
        self.guarded = self.factory.register(self.classes.Guarded(), "guarded")
        self.dynamic = self.factory.register(self.classes.Dynamic(), "dynamic")

    @defer.inlineCallbacks
    def test_calls_and_attributes_of_unexposed_members_run_nothing(self):
        patch_config(self, METADATA=False)  # a client that believes what it is told

        def blocking():
            seen = []

            def attempt(function, *args):
                try:
                    return function(*args)
                except AttributeError as exc:
                    seen.append(str(exc))

            with Pyro4.Proxy(self.guarded) as p:
                attempt(p.secret)  # plain call
                attempt(p.sneaky)
                batch = Pyro4.batch(p)
                batch.ping()
                batch.secret()
                attempt(batch)  # batched call
                p._pyroOneway = {"secret", "sneaky"}
                p.secret()  # oneway call
                p.sneaky()
                seen.append(p.ping())
                p._pyroOneway = set()
                p._pyroAttrs = {"meta_secret", "sneaky", "secret"}
                attempt(getattr, p, "meta_secret")  # __getattr__
                attempt(getattr, p, "sneaky")
                attempt(setattr, p, "meta_secret", 1)  # __setattr__
                attempt(setattr, p, "sneaky", 1)
                attempt(setattr, p, "secret", 1)
            with Pyro4.Proxy(self.dynamic) as p:
                attempt(p.anything)
                p._pyroOneway = {"anything"}
                p.anything()
                seen.append(p.ping())
            return seen

        seen = yield in_thread(blocking)
        unexposed = "attempt to access unexposed attribute '%s'"
        remote_attribute = "attempt to access unexposed or unknown remote attribute '%s'"
        self.assertEqual(seen, [
            unexposed % "secret", unexposed % "sneaky", unexposed % "secret", "pong",
            remote_attribute % "meta_secret", remote_attribute % "sneaky",
            remote_attribute % "meta_secret", remote_attribute % "sneaky",
            remote_attribute % "secret", unexposed % "anything", "pong"])
        self.assertEqual(self.ran, [])

    @defer.inlineCallbacks
    def test_exposed_members_work_in_every_instance_mode(self):
        Guarded = self.classes.Guarded
        uris = [self.guarded]
        for mode in ("single", "session", "percall"):
            uris.append(self.factory.register(Pyro4.behavior(instance_mode=mode)(
                type("Guarded" + mode, (Guarded,), {}))))

        def blocking():
            seen = []
            for uri in uris:
                with Pyro4.Proxy(uri) as p:
                    batch = Pyro4.batch(p)
                    batch.ping()
                    seen.append((p.ping(), p.shown, sorted(p._pyroMethods),
                                 sorted(p._pyroAttrs), list(batch())))
            return seen

        seen = yield in_thread(blocking)
        self.assertEqual(seen, [("pong", "shown", ["ping"], ["shown"], ["pong"])] * 4)


class ExposureRulesTest(unittest.TestCase):
    """:mod:`pyro.server.exposure` against Pyro4's own rules, member kind by member kind:
    wherever Pyro4 runs no servant code to decide, ours decides the same."""

    def servant(self) -> Any:
        @Pyro4.expose
        class ExposedBase:
            def inherited(self):
                return "inherited"

            @property
            def inherited_property(self):
                return "inherited property"

        class Kinds(ExposedBase):
            plain_value = 42
            exposed_nested = ExposedBase  # an exposed class: _pyroExposed is set on it

            @Pyro4.expose
            def method(self):
                return "method"

            def unexposed(self):
                return "unexposed"

            @staticmethod
            @Pyro4.expose
            def static():
                return "static"

            @classmethod
            @Pyro4.expose
            def klass(cls):
                return "class"

            @staticmethod
            def unexposed_static():
                return "unexposed static"

            @Pyro4.expose
            @property
            def shown(self):
                return "shown"

            @Pyro4.expose
            @property
            def settable(self):
                return self.__dict__.get("settable_value")

            @settable.setter
            def settable(self, value):
                self.__dict__["settable_value"] = value

            @property
            def unexposed_settable(self):
                return "unexposed"

            @unexposed_settable.setter
            def unexposed_settable(self, value):
                raise AssertionError("never set")

            @Pyro4.expose
            def __len__(self):  # a public dunder may be exposed in Pyro4
                return 3

            @functools.singledispatchmethod
            @Pyro4.expose
            def dispatched(self, arg):  # Pyro4 evaluates the descriptor: exposed function
                return "dispatched"

            @functools.cached_property
            @Pyro4.expose
            def cached(self):
                return "cached"

        obj = Kinds()
        obj.instance_function = Kinds.method  # exposed function in the instance's dict
        obj.instance_value = "value"
        return obj

    def slotted(self) -> Any:
        @Pyro4.expose
        class Slotted:
            __slots__ = ("empty", "function", "value")

            def method(self):
                return "method"

        obj = Slotted()
        obj.function = Slotted.method
        obj.value = 42
        return obj

    NAMES = ["inherited", "inherited_property", "plain_value", "exposed_nested", "method",
             "unexposed", "static", "klass", "unexposed_static", "shown", "settable", "unexposed_settable", "__len__",
             "dispatched", "cached", "empty", "function", "value",
             "instance_function", "instance_value", "nosuch", "_private", "__init__",
             "__dict__", "__class__", "__getattr__", 7, ("a", "tuple"), ["a", "list"]]

    def assert_same(self, ours: Any, pyro4: Any, *args: Any) -> None:
        def run(function):
            try:
                value = function(*args)
            except Exception as exc:
                return type(exc), str(exc)
            return "ok", getattr(value, "__name__", value)  # (a fresh function each time)

        self.assertEqual(run(ours), run(pyro4), args)

    def test_methods_are_decided_as_in_pyro4(self):
        for obj in (self.servant(), self.slotted()):
            for require_expose in (True, False):
                patch_config(self, REQUIRE_EXPOSE=require_expose)
                for name in self.NAMES:  # twice: the decision is cached the first time
                    self.assert_same(exposure.remote_method, Pyro4.util.getAttribute, obj, name)
                    self.assert_same(exposure.remote_method, Pyro4.util.getAttribute, obj, name)

    def test_attributes_are_decided_as_in_pyro4(self):
        obj = self.servant()
        for only_exposed in (True, False, True):
            for name in self.NAMES:
                if isinstance(name, str) and Pyro4.util.is_private_attribute(name):
                    continue  # refused by ours always (see the raw-frame tests)
                self.assert_same(
                    lambda o, n, e=only_exposed: exposure.property_getter(o, n, e)(o),
                    Pyro4.util.get_exposed_property_value, obj, name, only_exposed)

    def test_attribute_assignments_are_decided_as_in_pyro4(self):
        obj = self.servant()
        for only_exposed in (True, False):
            for name in self.NAMES:
                if isinstance(name, str) and Pyro4.util.is_private_attribute(name):
                    continue
                if name == "unexposed_settable" and not only_exposed:
                    continue  # public, so Pyro4 (and ours) would run its setter
                self.assert_same(
                    lambda o, n, v, e=only_exposed: exposure.property_setter(o, n, e)(o, v),
                    Pyro4.util.set_exposed_property_value, obj, name, "new", only_exposed)
        self.assertEqual(obj.settable, "new")
