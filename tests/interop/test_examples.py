"""Pyro4 4.82's own examples, served by ``Pyro4ProtocolFactory`` and by Pyro4's daemons.

Each test ports one example from Pyro4 4.82's ``examples/`` directory (MIT licensed, by Irmen
de Jong): the servant classes from its ``server.py``, kept as close to the original as
possible, and the calls of its ``client.py``, made by an unmodified ``Pyro4.Proxy`` in a worker
thread. What the example prints becomes assertions on the values it expects: a
``check_<example>(test, ...)`` function next to the example's client code (with
``serve_<example>(test)`` where its setup is more than a registration), which
tests/interop/test_client_examples.py calls as well, on what the native client sees. Interactive
input becomes fixed values; a name server is used only where the test starts one.

Every test runs four times, against four servers (the classes at the bottom):

* :class:`OnOurReactor` -- ``Pyro4ProtocolFactory``, servants called in the reactor thread;
* :class:`OnOurThreadPool` -- ``Pyro4ProtocolFactory(threadpool=...)``;
* :class:`OnPyro4Thread` and :class:`OnPyro4Multiplex` -- Pyro4's own daemons.

The assertions are the same for all four, so a test that passes everywhere shows that our
server behaves as Pyro4's does, not merely that "something" works. Where Pyro4's two servers
differ from each other (threads, concurrency), the class attributes of :class:`ExampleTests`
say what each server is expected to do.

What these examples found, where ours differed from Pyro4's daemons:

* Fixed: a class registered with ``instance_mode`` "session" (or "single"/"percall") was
  instantiated under a stale ``Pyro4.current_context`` (whichever call or handshake ran last
  in that thread, often another client's), so ``__init__`` and ``instance_creator`` read the
  wrong annotations and correlation id (examples/usersession, examples/instancemode).
* Fixed: a call run in the reactor's shared thread pool (a threaded oneway call) left its
  call context in that thread, and a Pyro4 client later run there sent the finished call's
  correlation id as its own (``test_callcontext_oneway_leaves_no_context_behind``).
* Fixed: with a thread pool and ``ONEWAY_THREADED=False``, a oneway call (or batch) ran in
  the pool while the connection's next call was served; Pyro4 runs it in line first, and so
  does ours now (``test_oneway_unthreaded``,
  ``test_batchedcalls_oneway_batch_unthreaded_runs_before_the_next_call``).
* By design, skipped: with a thread pool and ``ONEWAY_THREADED=True`` (the default), ours
  never holds up a connection for a oneway batch, so it may run after the connection's next
  call; Pyro4 runs a batch in line first whatever ``ONEWAY_THREADED`` says.
* Skipped: with a thread pool, one connection's calls run in any pool thread; Pyro4's thread
  server keeps each connection in one worker thread.
* Added: Pyro4's thread server closes idle connections after ``COMMTIMEOUT``
  (examples/disconnects); ours keeps them open (like Pyro4's multiplex server) unless given
  ``idle_timeout``, which this example's test now uses.
* Cosmetic: Pyro4's remote tracebacks start with its ``handleRequest`` frame; ours start at
  the servant (``daemon_frames``).

(PYTEST_DONT_REWRITE: the servants' ``assert`` statements must raise what they raise in the
examples, not pytest's rewritten messages.)

Adaptations that apply throughout: ``print()`` in servants becomes ``say()`` (recorded, so the
test can check it); ``time.sleep()`` in servants is shortened, or replaced by waiting for an
event the test sets, so tests never wait for wall-clock time and never assert on durations;
proxies are closed when the example is done with them (Pyro4's thread server holds a worker
thread per open connection).
"""

from __future__ import annotations

import datetime
import itertools
import pickle
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import Pyro4
import Pyro4.constants
import Pyro4.core
import Pyro4.errors
import Pyro4.message
import Pyro4.test.echoserver
import Pyro4.util
import serpent
from twisted.internet import defer, reactor
from twisted.internet.threads import blockingCallFromThread
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

from pyro.protocol import DEFAULT_BACKLOG, Pyro4ProtocolFactory

from ..support import pyro4_peers
from ..support.asynctest import async_test
from ..support.config import patch_config
from ..support.our_server import in_thread, serve

WAIT = 10.0  # seconds a client waits for an event the server must cause; only reached on failure


class Recorder:
    """A thread-safe list that client code can wait on (``wait_for``), without sleeping."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._condition = threading.Condition()

    def __call__(self, *item: Any) -> None:
        with self._condition:
            self.items.append(item[0] if len(item) == 1 else item)
            self._condition.notify_all()

    def wait_for(self, count: int) -> list[Any]:
        """Block until at least ``count`` items are recorded; a copy of them."""
        return self.wait_until(lambda items: len(items) >= count)

    def wait_until(self, predicate: Callable[[list[Any]], bool]) -> list[Any]:
        """Block until ``predicate(items)`` holds; a copy of the items."""
        with self._condition:
            if not self._condition.wait_for(lambda: predicate(self.items), WAIT):
                raise AssertionError("gave up waiting; recorded: %r" % (self.items,))
            return list(self.items)

    def clear(self) -> None:
        with self._condition:
            self.items.clear()


#: What servants ``print()`` in the examples; cleared before every test.
say = Recorder()


def outcome(function: Callable[..., Any], *args: Any) -> Any:
    """``("ok", result)`` or ``(exception type name, str(exception))``: what a call did."""
    try:
        return "ok", function(*args)
    except Exception as exc:
        return type(exc).__name__, str(exc)


def remote_frames(traceback_lines: list[str]) -> list[str]:
    """The names of the functions in a remote traceback (``File ..., line n, in <name>``)."""
    text = "".join(traceback_lines).split("Remote traceback:")[-1]
    return re.findall(r'File ".*", line \d+, in (\w+)', text)


# ---------------------------------------------------------------------------------------------
# examples/attributes -- adapted from Pyro4 4.82 examples/attributes/server.py

@Pyro4.expose
class AttributesThingy:
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


def attributes_client(uri):
    """examples/attributes/client.py: what it prints, as data."""
    seen = {}
    with Pyro4.Proxy(uri) as p:
        seen["first"] = p.prop_value
        p.prop_value += 500
        seen["after +500"] = p.prop_value
        seen["getValue"] = p.getValue()
        seen["__dunder__"] = p.__dunder__()
        seen["metadata"] = (sorted(p._pyroMethods), sorted(p._pyroAttrs), sorted(p._pyroOneway))
    with Pyro4.Proxy(uri) as p:  # a new proxy: a new session, a new Thingy
        seen["new session"] = p.prop_value
        for name in ("sub", "value", "_value", "__value"):
            try:
                getattr(p, name)
                seen[name] = "this should not be possible!"
            except AttributeError as x:
                seen[name] = str(x).replace(str(uri), "<uri>")
    with Pyro4.Proxy(uri) as p:
        value = p.prop_sub
        p.prop_sub.update({"test": "nope"})  # this will only update the local copy!
        seen["prop_sub"] = (value, p.prop_sub)
        try:
            _ = p.prop_sub.foobar.attribute
        except Exception as x:
            seen["dotted"] = (type(x).__name__, str(x), getattr(x, "_pyroTraceback", None))
    return seen


def check_attributes(test, seen):
    """examples/attributes' expectations: what the client saw (``seen``, as above)."""
    test.assertEqual(seen["first"], 42)
    test.assertEqual(seen["after +500"], 542)
    test.assertEqual(seen["getValue"], 542)
    test.assertEqual(seen["__dunder__"], "yep")
    test.assertEqual(seen["metadata"], (["__dunder__", "__len__", "getValue"],
                                        ["prop_sub", "prop_value"], []))
    test.assertEqual(seen["new session"], 42)
    for name in ("sub", "value", "_value", "__value"):
        test.assertEqual(
            seen[name], "remote object '<uri>' has no exposed attribute or method '%s'" % name)
    test.assertEqual(seen["prop_sub"], ({"name": "value"}, {"name": "value"}))
    test.assertEqual(seen["dotted"],
                     ("AttributeError", "'dict' object has no attribute 'foobar'", None))


# ---------------------------------------------------------------------------------------------
# examples/autoproxy -- adapted from Pyro4 4.82 examples/autoproxy/{server,thingy}.py

@Pyro4.expose
class AutoproxyThingy:
    def __init__(self, number):
        self.number = number

    def speak(self, message):
        say("Thingy {0} says: {1}".format(self.number, message))  # noqa: UP030, UP032 -- as in the example


@Pyro4.expose
class AutoproxyFactory:
    def createSomething(self, number):
        # create a new item
        thing = AutoproxyThingy(number)
        # connect it to the Pyro daemon to make it a Pyro object
        self._pyroDaemon.register(thing)
        # Return it. Pyro's autoproxy feature turns it into a proxy automatically.
        return thing


def autoproxy_client(uri):
    with Pyro4.Proxy(uri) as factory:
        things = [factory.createSomething(number) for number in (1, 2, 3)]
        kinds = [type(thing).__name__ for thing in things]
        locations = {thing._pyroUri.location for thing in things}
        things[0].speak("I am the first")
        things[1].speak("I am second")
        things[2].speak("I am last then...")
        for thing in things:
            thing._pyroRelease()
        Pyro4.config.AUTOPROXY = False  # "the object itself (a copy) is returned"
        try:
            copy = outcome(factory.createSomething, 4)
        finally:
            Pyro4.config.AUTOPROXY = True
    return kinds, locations, copy


# ---------------------------------------------------------------------------------------------
# examples/batchedcalls -- adapted from Pyro4 4.82 examples/batchedcalls/server.py

@Pyro4.expose
class BatchedThingy:
    def multiply(self, a, b):
        return a * b

    def add(self, a, b):
        return a + b

    def divide(self, a, b):
        return a // b

    def error(self):
        return 1 // 0

    def delay(self, seconds):
        time.sleep(seconds)
        return seconds

    def printmessage(self, message):
        say(message)
        return 0


NUMBER_OF_LOOPS = 200  # the example does 20000


def fill_batch_two(batch):
    """The calls of the example's batch #2 (its oneway batch), on any proxy's batch."""
    batch.printmessage("beginning batch #2")
    for _ in range(NUMBER_OF_LOOPS):
        batch.multiply(7, 6)
        batch.add(10, 20)
    batch.delay(0.02)  # queue a delay (the example's 2 seconds, shortened)
    batch.printmessage("end of batch #2")
    return batch


def serve_in_line(test, servant, name):
    """For the tests of oneway requests run in line, before the connection's next request:
    skip unless ``test``'s server does that under the current ``ONEWAY_THREADED`` (with
    False, every server does); else start it and register ``servant``; its URI."""
    if Pyro4.config.ONEWAY_THREADED and not test.oneway_batch_in_line:
        raise unittest.SkipTest(ONEWAY_NOT_IN_LINE)
    return test.start().register(servant, name)


def batched_oneway_client(uri):
    """The oneway batch of examples/batchedcalls, and a call after it on the same proxy."""
    with Pyro4.Proxy(uri) as p:
        result = fill_batch_two(Pyro4.batch(p))(oneway=True)
        p.printmessage("after batch #2")
        return result


def batchedcalls_client(uri):
    seen = {}
    with Pyro4.Proxy(uri) as p:
        total = 0
        p.printmessage("beginning normal calls")
        for _ in range(NUMBER_OF_LOOPS):
            total += p.multiply(7, 6)
            total += p.add(10, 20)
        p.printmessage("end of normal calls")
        seen["normal"] = total

        batch = Pyro4.batch(p)
        batch.printmessage("beginning batch #1")
        for _ in range(NUMBER_OF_LOOPS):
            batch.multiply(7, 6)
            batch.add(10, 20)
        batch.printmessage("end of batch #1")
        results = list(batch())
        seen["batch #1"] = (len(results), sum(results))

        seen["oneway batch"] = fill_batch_two(Pyro4.batch(p))(oneway=True)

        batch = Pyro4.batch(p)
        batch.printmessage("beginning batch #3")
        batch.multiply(7, 6)
        batch.add(10, 20)
        batch.delay(0.02)
        batch.printmessage("end of batch #3")
        asyncresult = batch(asynchronous=True)
        seen["async batch"] = list(asyncresult.value)

        for d in range(3, -3, -1):  # divide by 3,2,1,0,-1,-2... but 0 will be a problem ;-)
            batch.divide(100, d)
        quotients = []
        try:
            for result in batch():
                quotients.append(result)
        except ZeroDivisionError as x:
            seen["error batch"] = (quotients, str(x),
                                   remote_frames(Pyro4.util.getPyroTraceback()))
    return seen


async def check_batchedcalls(test, seen, *, async_batch_kept):
    """examples/batchedcalls' expectations: the results (``seen``, as above), then what the
    servant printed. ``async_batch_kept``: the asynchronous batch call left its calls in the
    batch, so they run again with the next batch (Pyro4's; the native client's empties it)."""
    expected_total = NUMBER_OF_LOOPS * (7 * 6 + 10 + 20)
    test.assertEqual(seen["normal"], expected_total)
    test.assertEqual(seen["batch #1"], (2 * NUMBER_OF_LOOPS + 2, expected_total))
    test.assertIsNone(seen["oneway batch"])
    test.assertEqual(seen["async batch"], [0, 42, 30, 0.02, 0])
    again = [0, 42, 30, 0.02, 0] if async_batch_kept else []
    test.assertEqual(seen["error batch"], (again + [33, 50, 100],
                                           "integer division or modulo by zero",
                                           test.daemon_frames + ["divide"]))
    expected = [
        "beginning normal calls", "end of normal calls", "beginning batch #1",
        "end of batch #1", "beginning batch #2", "end of batch #2",
        "beginning batch #3", "end of batch #3"]
    if async_batch_kept:
        expected += ["beginning batch #3", "end of batch #3"]
    said = await in_thread(say.wait_for, len(expected))
    if test.oneway_batch_in_line:
        test.assertEqual(said, expected)
    else:  # the oneway batch #2 ran alongside the calls after it
        test.assertEqual(sorted(said), sorted(expected))


# ---------------------------------------------------------------------------------------------
# examples/blob-dispatch -- adapted from Pyro4 4.82 examples/blob-dispatch/{dispatcher,
# listeners,client}: the dispatcher passes SerializedBlobs on without deserializing them.

@Pyro4.behavior(instance_mode="single")
class BlobDispatcher:
    def __init__(self):
        self.listeners = defaultdict(list)

    @Pyro4.expose
    def register(self, topic, listener):
        self.listeners[topic].append(listener)
        say("New listener for topic {} registered: {}".format(topic, listener._pyroUri))  # noqa: UP030, UP032 -- as in the example

    @Pyro4.expose
    def process_blob(self, blob):
        say("Dispatching blob with name:", blob.info)
        listeners = self.listeners.get(blob.info, [])
        for listener in listeners:
            listener.process_blob(blob)


class CustomData:
    serialized_classname = "blobdispatch.CustomData"

    def __init__(self, a, b, c):
        self.a = a
        self.b = b
        self.c = c

    def to_dict(self):
        """for (serpent) serialization"""
        return {"__class__": self.serialized_classname, "a": self.a, "b": self.b, "c": self.c}

    @classmethod
    def from_dict(cls, classname, d):
        """for (serpent) deserialization"""
        assert classname == cls.serialized_classname
        return cls(d["a"], d["b"], d["c"])


class BlobListener:
    def __init__(self, topic):
        self.topic = topic
        self.received = Recorder()  # instead of printing what arrives

    @Pyro4.expose
    def process_blob(self, blob):
        assert blob.info == self.topic
        customdata = blob.deserialized()
        self.received((type(customdata).__name__, customdata.a, customdata.b, customdata.c))


BLOB_TIME = datetime.datetime(2020, 5, 4, 3, 2, 1)  # every blob's CustomData.c


def register_custom_data(test):
    """CustomData's (serpent) class/dict hooks, registered until ``test`` ends."""
    Pyro4.util.SerializerBase.register_class_to_dict(CustomData, CustomData.to_dict)
    test.addCleanup(Pyro4.util.SerializerBase.unregister_class_to_dict, CustomData)
    Pyro4.util.SerializerBase.register_dict_to_class(CustomData.serialized_classname,
                                                     CustomData.from_dict)
    test.addCleanup(Pyro4.util.SerializerBase.unregister_dict_to_class,
                    CustomData.serialized_classname)


def serve_blob_listeners(test):
    """The example's listeners (examples/blob-dispatch/listeners/main.py), which run
    elsewhere: in a Pyro4 daemon of their own. ``(listeners' peer, weather, news)``."""
    listeners = pyro4_peers.serve_pyro4(test, "thread")
    test.addCleanup(forget_registrations, listeners.daemon)
    weather, news = BlobListener("weather"), BlobListener("news")
    listeners.register(weather)
    listeners.register(news)
    return listeners, weather, news


def release_listener_proxies(daemon):
    """Release the proxies of the listeners that ``daemon``'s BlobDispatcher holds."""
    for proxies in daemon._pyroInstances[BlobDispatcher].listeners.values():
        for proxy in proxies:
            proxy._pyroRelease()


def check_blob_dispatch(test, on_weather, on_news):
    """examples/blob-dispatch's expectations: what each listener received, what was dispatched."""
    test.assertEqual(on_weather, [("CustomData", 42, "hello weather", BLOB_TIME.isoformat())] * 2)
    test.assertEqual(on_news, [("CustomData", 42, "hello news", BLOB_TIME.isoformat())])
    test.assertEqual([item[1] for item in say.items if item[0] == "Dispatching blob with name:"],
                     ["weather", "news", "weather", "nobody listens"])


# ---------------------------------------------------------------------------------------------
# examples/callcontext -- adapted from Pyro4 4.82 examples/callcontext/{server,client}.py

@Pyro4.expose
class ContextEchoServer:
    def echo(self, message):
        ctx = Pyro4.current_context
        say({
            "message": message,
            "obj.pyroid": self._pyroId,
            "obj.daemon": self._pyroDaemon.locationStr,
            "context.client_sock_addr": ctx.client_sock_addr,
            "context.seq": ctx.seq,
            "context.msg_flags": ctx.msg_flags,
            "context.serializer_id": ctx.serializer_id,
            "context.correlation_id": ctx.correlation_id,
            "XYZZ": ctx.annotations.get("XYZZ"),
        })
        return message

    @Pyro4.oneway
    def oneway(self, message):
        return self.echo(message)


class ContextDaemon:
    """The example's ``CustomDaemon(Pyro4.Daemon)`` hook, mixed into either daemon."""

    def annotations(self):
        return {"DDAA": b"custom response annotation set by the daemon"}


CONTEXT_HMAC = b"secr3t_k3y"
CONTEXT_CORRELATION = uuid.UUID("12345678-1234-5678-1234-567812345678")


def shown_annotations(annotations):
    """Response annotations as the example's proxy prints them (CORR a UUID, HMAC hidden)."""
    shown = {}
    for key in annotations:
        if key == "CORR":
            shown[key] = uuid.UUID(bytes=annotations[key])
        elif key == "HMAC":
            shown[key] = "[...]"
        else:
            shown[key] = annotations[key]
    return shown


def callcontext_client(uri):
    responses = []  # (msgtype, annotations) as the example's proxy prints them
    Pyro4.current_context.correlation_id = CONTEXT_CORRELATION

    class CustomAnnotationProxy(Pyro4.Proxy):
        def __init__(self, uri):
            super().__init__(uri)
            self._pyroHmacKey = CONTEXT_HMAC

        def _pyroAnnotations(self):
            return {"XYZZ": b"Hello, I am a custom annotation from the proxy!"}

        def _pyroResponseAnnotations(self, annotations, msgtype):
            responses.append((msgtype, shown_annotations(annotations)))

    sockets = {}  # message -> the client's address, as the server should see it
    with CustomAnnotationProxy(uri) as proxy:
        for i in range(4):
            assert proxy.echo("hello-%d" % i) == "hello-%d" % i
        sockets["hello-0"] = proxy._pyroConnection.sock.getsockname()
    for i in range(2):
        p = CustomAnnotationProxy(uri)
        p.echo("hello-new-%d" % i)
        sockets["hello-new-%d" % i] = p._pyroConnection.sock.getsockname()
        p._pyroRelease()
    with CustomAnnotationProxy(uri) as proxy:
        proxy.oneway("hello-ONEWAY-1")  # should only print a connection ok response
        proxy.oneway("hello-ONEWAY-2")  # should not print a response at all
        proxy._pyroAsync()
        result = proxy.echo("hello-ASYNC")
        _ = result.value

    with Pyro4.Proxy(uri) as proxy:  # the new way: annotations through the call context
        proxy._pyroHmacKey = CONTEXT_HMAC
        Pyro4.current_context.annotations = {"XYZZ": b"custom annotation from client via new way(1)"}
        proxy.echo("hi there - new method of annotation access in client")
        normal = dict(Pyro4.current_context.response_annotations)
        Pyro4.current_context.annotations = {"XYZZ": b"custom annotation from client via new way(2)"}
        proxy.oneway("hi there ONEWAY - new method of annotation access in client")
        after_oneway = dict(Pyro4.current_context.response_annotations)
    return responses, sockets, normal, after_oneway


async def check_callcontext(test, daemon, responses, normal, after_oneway):
    """examples/callcontext's expectations: the responses' annotations (as above), then the
    calls' contexts as the servant saw them; returns those, by message."""
    CONNECTOK, RESULT = Pyro4.message.MSG_CONNECTOK, Pyro4.message.MSG_RESULT
    ddaa = b"custom response annotation set by the daemon"
    expected_annotations = {"CORR": CONTEXT_CORRELATION, "DDAA": ddaa, "HMAC": "[...]"}
    test.assertEqual(responses[:-2], [
        (CONNECTOK, expected_annotations),
        *[(RESULT, expected_annotations)] * 4,  # 4 calls on one proxy
        *[(CONNECTOK, expected_annotations), (RESULT, expected_annotations)] * 2,
        (CONNECTOK, expected_annotations),  # the oneway calls: only the connection's
    ])
    # the asynchronous call, made without a correlation id (Pyro4's: by a copy of the proxy in
    # another thread, which has none set): the server makes one up for each message
    test.assertEqual([(msgtype, sorted(annotations)) for msgtype, annotations in responses[-2:]],
                     [(CONNECTOK, ["CORR", "DDAA", "HMAC"]), (RESULT, ["CORR", "DDAA", "HMAC"])])
    test.assertNotIn(CONTEXT_CORRELATION, [annotations["CORR"] for _, annotations in responses[-2:]])
    test.assertEqual(normal["DDAA"], ddaa)
    test.assertEqual(uuid.UUID(bytes=normal["CORR"]), CONTEXT_CORRELATION)
    test.assertEqual(after_oneway, {})  # "should be empty because oneway!"

    calls = {entry["message"]: entry for entry in await in_thread(say.wait_for, 11)}
    test.assertEqual(len(calls), 11)
    for message, entry in calls.items():
        test.assertEqual(entry["obj.pyroid"], "example.context", message)
        test.assertEqual(entry["obj.daemon"], daemon.locationStr, message)
        test.assertEqual(entry["context.serializer_id"], 1, message)  # serpent
        if message == "hello-ASYNC":  # no correlation id: the server's
            test.assertNotEqual(entry["context.correlation_id"], CONTEXT_CORRELATION)
        else:
            test.assertEqual(entry["context.correlation_id"], CONTEXT_CORRELATION, message)
    test.assertEqual([calls["hello-%d" % i]["context.seq"] for i in range(4)], [1, 2, 3, 4])
    ONEWAY = Pyro4.message.FLAGS_ONEWAY
    test.assertEqual({m: e["context.msg_flags"] for m, e in calls.items()}, {
        "hello-0": 0, "hello-1": 0, "hello-2": 0, "hello-3": 0, "hello-new-0": 0,
        "hello-new-1": 0, "hello-ONEWAY-1": ONEWAY, "hello-ONEWAY-2": ONEWAY,
        "hello-ASYNC": 0, "hi there - new method of annotation access in client": 0,
        "hi there ONEWAY - new method of annotation access in client": ONEWAY})
    custom = b"Hello, I am a custom annotation from the proxy!"
    test.assertEqual({m: e["XYZZ"] for m, e in calls.items()}, {
        "hello-0": custom, "hello-1": custom, "hello-2": custom, "hello-3": custom,
        "hello-new-0": custom, "hello-new-1": custom, "hello-ONEWAY-1": custom,
        "hello-ONEWAY-2": custom, "hello-ASYNC": custom,
        "hi there - new method of annotation access in client":
            b"custom annotation from client via new way(1)",
        "hi there ONEWAY - new method of annotation access in client":
            b"custom annotation from client via new way(2)"})
    return calls


# ---------------------------------------------------------------------------------------------
# examples/exceptions -- adapted from Pyro4 4.82 examples/exceptions/excep.py

class UnserializableError(Exception):
    def __reduce__(self):
        raise pickle.PicklingError("make this nonpickleable")


@Pyro4.expose
class ExceptionsTestClass:
    def div(self, arg1, arg2):
        return arg1 / arg2

    def error(self):
        raise ValueError('a valueerror! Great!')

    def error2(self):
        return ValueError('a valueerror! Great!')

    def othererr(self):
        raise RuntimeError('a runtime error!')

    def complexerror(self):
        x = Foo()
        x.crash()

    def unserializable(self):
        raise UnserializableError("this error can't be serialized")


class Foo:
    def crash(self):
        self.crash2('going down...')

    def crash2(self, arg):
        # this statement will crash on purpose:
        x = arg // 2  # noqa: F841 -- as in the example


def exceptions_client(uri):
    seen = {}
    with Pyro4.core.Proxy(uri) as test:
        seen["div"] = test.div(2.0, 9.0)
        seen["div by zero"] = outcome(test.div, 2, 0)
        seen["error"] = outcome(test.error)
        result = test.error2()
        seen["error2"] = (type(result).__name__, str(result))
        seen["othererr"] = outcome(test.othererr)
        seen["unserializable"] = outcome(test.unserializable)
        try:
            test.complexerror()
        except Exception as x:
            seen["complexerror"] = (type(x).__name__, str(x),
                                    remote_frames(Pyro4.util.getPyroTraceback()))
    return seen


def check_exceptions(test, seen):
    """examples/exceptions' expectations: what each call returned or raised (``seen``)."""
    test.assertEqual(seen, {
        "div": 2.0 / 9.0,
        "div by zero": ("ZeroDivisionError", "division by zero"),
        "error": ("ValueError", "a valueerror! Great!"),
        "error2": ("ValueError", "a valueerror! Great!"),  # returned, not raised
        "othererr": ("RuntimeError", "a runtime error!"),
        "unserializable": ("SerializeError", "unsupported serialized class: %s.%s"
                           % (__name__, UnserializableError.__name__)),
        "complexerror": ("TypeError", "unsupported operand type(s) for //: 'str' and 'int'",
                         test.daemon_frames + ["complexerror", "crash", "crash2"]),
    })


# ---------------------------------------------------------------------------------------------
# examples/handshake -- adapted from Pyro4 4.82 examples/handshake/server.py

secret_code = "pancakes"


class HandshakeDaemon:
    """The example's ``CustomDaemon(Pyro4.Daemon)`` hooks, mixed into either daemon."""

    def validateHandshake(self, conn, data):
        say("Daemon received handshake request from:", conn.sock.getpeername())
        say("Handshake data:", data)
        if data == secret_code:
            # return some custom handshake data:
            return ["how", "are", "you", "doing"]
        else:
            raise ValueError("wrong secret code, connection refused")

    def clientDisconnect(self, conn):
        say("Daemon client disconnects:", conn.sock.getpeername())


def handshake_client(uri, secret):
    received = []

    class CustomHandshakeProxy(Pyro4.Proxy):
        def _pyroValidateHandshake(self, response):
            received.append(response)

    with CustomHandshakeProxy(uri) as proxy:
        proxy._pyroHandshake = secret
        try:
            proxy._pyroBind()
            address = proxy._pyroConnection.sock.getsockname()
            return "ok", proxy.ping(), received, address
        except Pyro4.errors.CommunicationError as x:
            return type(x).__name__, re.sub(r"\d+\)", "PORT)", str(x)), received, None


# ---------------------------------------------------------------------------------------------
# examples/instancemode -- adapted from Pyro4 4.82 examples/instancemode/server.py
# The example returns id(self); percall instances are discarded after each call, so CPython
# may hand a new one the same id. A serial number per instance says the same, reliably.

serial_numbers = itertools.count(1)


@Pyro4.behavior(instance_mode="single")
class SingleInstance:
    def __init__(self):
        self.serial = next(serial_numbers)

    @Pyro4.expose
    def msg(self, message):
        say("[%s] %s.msg: %s" % (self.serial, self.__class__.__name__, message))
        return self.serial


@Pyro4.behavior(instance_mode="session", instance_creator=lambda clazz: clazz.create_instance())
class SessionInstance:
    def __init__(self):
        self.serial = next(serial_numbers)

    @Pyro4.expose
    def msg(self, message):
        say("[%s] %s.msg: %s" % (self.serial, self.__class__.__name__, message))
        return self.serial, self.correlation_id

    @classmethod
    def create_instance(cls):
        obj = cls()
        obj.correlation_id = Pyro4.current_context.correlation_id
        return obj


@Pyro4.behavior(instance_mode="percall")
class PercallInstance:
    def __init__(self):
        self.serial = next(serial_numbers)

    @Pyro4.expose
    def msg(self, message):
        say("[%s] %s.msg: %s" % (self.serial, self.__class__.__name__, message))
        return self.serial


def instancemode_client(uris):
    seen = {}
    with Pyro4.Proxy(uris["percall"]) as p:
        seen["percall"] = [p.msg("hello%d" % i) for i in (1, 2, 3)]
    seen["session"] = []
    for hello in ("hello1", "hello2"):
        with Pyro4.Proxy(uris["session"]) as p:
            calls = []
            for _ in range(3):
                serial, correlation_id = p.msg(hello)
                # the id the server gave this call (the client set none)
                corr = str(uuid.UUID(bytes=Pyro4.current_context.response_annotations["CORR"]))
                calls.append((serial, correlation_id, corr))
            seen["session"].append(calls)
    seen["single"] = []
    for hello in ("hello1", "hello2"):
        with Pyro4.Proxy(uris["single"]) as p:
            seen["single"] += [p.msg(hello) for _ in range(3)]
    return seen


def serve_instancemode(test):
    """The example's three servant classes, registered on a new daemon; their URIs by mode."""
    daemon = test.start()
    return {
        "single": daemon.register(SingleInstance, "instance.single"),
        "session": daemon.register(SessionInstance, "instance.session"),
        "percall": daemon.register(PercallInstance, "instance.percall"),
    }


def check_instancemode(test, seen):
    """examples/instancemode's expectations: which instance served which call (``seen``)."""
    percall = seen["percall"]
    test.assertEqual(len(set(percall)), 3, percall)  # a different instance every time
    sessions = seen["session"]
    for calls in sessions:  # one instance per session, made for the first call
        serials = {serial for serial, _, _ in calls}
        test.assertEqual(len(serials), 1, calls)
        first_call = calls[0][2]
        test.assertEqual([created_for for _, created_for, _ in calls], [first_call] * 3)
    test.assertNotEqual(sessions[0][0][0], sessions[1][0][0])
    test.assertEqual(len(set(seen["single"])), 1)


# ---------------------------------------------------------------------------------------------
# examples/maxsize and examples/echoserver use Pyro4's own test echo server:
# Pyro4.test.echoserver.EchoServer (``python -m Pyro4.test.echoserver``).

def maxsize_client(uri):
    huge_object = [42] * 10000
    simple_object = {"message": "hello", "irrelevant": huge_object}
    with Pyro4.Proxy(uri) as echoserver:
        Pyro4.config.MAX_MESSAGE_SIZE = 0
        unlimited = echoserver.echo(simple_object) == simple_object
        try:
            Pyro4.config.MAX_MESSAGE_SIZE = 2500
            limited = outcome(echoserver.echo, simple_object)
            small = outcome(echoserver.echo, "small")  # still fits, on the same connection
        finally:
            Pyro4.config.MAX_MESSAGE_SIZE = 0
    return unlimited, limited, small


def check_maxsize(test, unlimited, limited, small):
    """examples/maxsize's expectations: the huge echo without a limit, then with one."""
    test.assertTrue(unlimited)
    test.assertEqual(limited[0], "MessageTooLargeError")
    test.assertRegex(limited[1], r"^max message size exceeded \(\d+ where max=2500\)$")
    test.assertEqual(small, ("ok", "small"))


def echoserver_client(uri):
    seen = {}
    with Pyro4.Proxy(uri) as echoserver:
        seen["hello"] = echoserver.echo("hello")
        seen["list"] = echoserver.echo([1, 2, 3, 4])
        seen["generator"] = list(echoserver.generator())
        try:
            echoserver.error()
        except Exception as x:
            seen["error"] = (type(x).__name__, str(x),
                             remote_frames(Pyro4.util.getPyroTraceback()))
        seen["oneway"] = echoserver.oneway_echo("into the void")
        seen["__dunder__"] = echoserver.__dunder__()
        seen["_private"] = outcome(echoserver._pyroInvoke, "_private", (), {})
        seen["verbose"] = echoserver.verbose
        seen["shutdown"] = echoserver.shutdown()
    return seen


def check_echoserver(test, seen, echo):
    """Pyro4.test.echoserver's expectations: what each call gave (``seen``); ``echo`` shut down."""
    test.assertEqual(seen, {
        "hello": "hello",
        "list": [1, 2, 3, 4],
        "generator": ["one", "two", "three"],
        "error": ("ValueError", "expected error from echoserver error() method",
                  test.daemon_frames + ["error"]),
        "oneway": None,
        "__dunder__": "should be allowed (dunder)",
        "_private": ("AttributeError", "attempt to access private attribute '_private'"),
        "verbose": False,
        "shutdown": None,
    })
    test.assertTrue(echo._must_shutdown)


# ---------------------------------------------------------------------------------------------
# examples/hugetransfer -- adapted from Pyro4 4.82 examples/hugetransfer/server.py

class HugeTestclass:
    @Pyro4.expose
    def transfer(self, data):
        if Pyro4.config.SERIALIZER == "serpent" and type(data) is dict:
            data = serpent.tobytes(data)  # in case of serpent encoded bytes
        say("received %d bytes" % len(data))
        return len(data)

    @Pyro4.expose
    def download_chunks(self, size):
        say("client requests a 'streaming' download of %d bytes" % size)
        data = bytearray(size)
        i = 0
        chunksize = 200000
        while i < size:
            yield data[i:i + chunksize]
            i += chunksize


datasize = 1024 * 1024  # the example sends 5 MB, ten times


def hugetransfer_client(uri):
    sizes = []
    for data in ("x" * datasize, b"x" * datasize, bytearray(b"x" * datasize)):
        with Pyro4.core.Proxy(uri) as obj:
            obj._pyroBind()
            sizes += [obj.transfer(data) for _ in range(2)]
    chunks = []
    with Pyro4.core.Proxy(uri) as p:
        for chunk in p.download_chunks(datasize * 2):
            chunks.append(len(serpent.tobytes(chunk)))  # in case of serpent encoded bytes
    return sizes, chunks


def check_hugetransfer(test, sizes, chunks):
    """examples/hugetransfer's expectations: the sizes received and the chunks downloaded."""
    test.assertEqual(sizes, [datasize] * 6)
    test.assertEqual(sum(chunks), datasize * 2)
    test.assertEqual(chunks, [200000] * 10 + [datasize * 2 - 2000000])


# ---------------------------------------------------------------------------------------------
# examples/oneway -- adapted from Pyro4 4.82 examples/oneway/server.py. The example's servant
# sleeps one second per unit of work; here it works until the test lets it finish.

@Pyro4.expose
class OnewayServer:
    def __init__(self):
        self.busy = False
        self.working = threading.Event()  # test hooks: work has begun / may finish / finished
        self.release = threading.Event()
        self.done = threading.Event()

    @Pyro4.oneway
    def oneway_start(self, duration):
        say("start request received. Starting work...")
        self.busy = True
        self.working.set()
        self.release.wait(duration)  # was: for i in range(duration): time.sleep(1)
        say("work is done!")
        self.busy = False
        self.done.set()

    def ready(self):
        say("ready status requested (%r)" % (not self.busy))
        return not self.busy

    def result(self):
        return "The result :)"

    def nothing(self):
        say("nothing got called, doing nothing")

    @Pyro4.oneway
    def oneway_work(self):
        for i in range(10):
            say("work work..", i + 1)  # was: time.sleep(1) each
        say("work's done!")


def oneway_client(uri, server):
    seen = {}
    with Pyro4.core.Proxy(uri) as serv:
        seen["oneway_start"] = serv.oneway_start(WAIT)
        seen["nothing"] = [serv.nothing() for _ in range(4)]  # served while the oneway works
        assert server.working.wait(WAIT)
        seen["ready while working"] = serv.ready()
        server.release.set()
        assert server.done.wait(WAIT)
        seen["ready when done"] = serv.ready()
        seen["result"] = serv.result()
        seen["oneway_work"] = serv.oneway_work()
    return seen


async def check_oneway(test, seen):
    """examples/oneway's expectations: the calls' results (``seen``), then the servant's last word."""
    test.assertEqual(seen, {
        "oneway_start": None, "nothing": [None] * 4, "ready while working": False,
        "ready when done": True, "result": "The result :)", "oneway_work": None})
    said = await in_thread(say.wait_for, 19)
    test.assertEqual(said[-1], "work's done!")


def oneway_unthreaded_client(uri, server):
    """With ``ONEWAY_THREADED=False`` a oneway call runs before the next call is served."""
    with Pyro4.core.Proxy(uri) as serv:
        serv.oneway_start(0.05)  # a little work (nobody releases it early)
        return serv.ready(), server.done.is_set()  # it was done before ready() was served


# ---------------------------------------------------------------------------------------------
# examples/resourcetracking -- adapted from Pyro4 4.82 examples/resourcetracking/server.py

class ResourceTrackingDaemon:
    """The example's ``CustomDaemon(Pyro4.Daemon)`` hook, mixed into either daemon."""

    def clientDisconnect(self, conn):
        say(("client disconnects:", conn.sock.getpeername(),
             sorted(r.name for r in conn.tracked_resources)))


class Resource:
    # a fictional resource that gets allocated and must be freed again later.
    def __init__(self, name, collection):
        self.name = name
        self.collection = collection

    def close(self):
        # Pyro will call this on a tracked resource once the client's connection gets closed!
        say(("Resource: closing", self.name))
        self.collection.discard(self)


@Pyro4.expose
@Pyro4.behavior(instance_mode="single")
class ResourceService:
    def __init__(self):
        self.resources = set()  # the allocated resources

    def allocate(self, name):
        resource = Resource(name, self.resources)
        self.resources.add(resource)
        Pyro4.current_context.track_resource(resource)
        say(("service: allocated resource", name, Pyro4.current_context.client_sock_addr))

    def free(self, name):
        resources = {r for r in self.resources if r.name == name}
        self.resources -= resources
        for r in resources:
            r.close()
            Pyro4.current_context.untrack_resource(r)

    def list(self):
        return sorted(r.name for r in self.resources)  # sorted: a set has no order


def resourcetracking_client(uri):
    seen = {}
    with Pyro4.Proxy(uri) as proxy:
        seen["at first"] = proxy.list()
        proxy.allocate("r1")
        proxy.allocate("r2")
        seen["allocated"] = proxy.list()
        proxy.free("r1")  # "continue normally"
        proxy.free("r2")
        seen["freed"] = proxy.list()
        seen["normal address"] = proxy._pyroConnection.sock.getsockname()
    # "^C/break to abort the connection forcefully": the client goes without freeing anything
    with Pyro4.Proxy(uri) as proxy:
        proxy.allocate("r3")
        proxy.allocate("r4")
        seen["abort address"] = proxy._pyroConnection.sock.getsockname()
    # the server notices both disconnects and closes what the second client left behind
    say.wait_until(lambda said: ("Resource: closing", "r4") in said)
    with Pyro4.Proxy(uri) as proxy:
        seen["after abort"] = proxy.list()
    return seen


# ---------------------------------------------------------------------------------------------
# examples/streaming -- adapted from Pyro4 4.82 examples/streaming/server.py

@Pyro4.expose
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

    def slow_generator(self):
        i = 1
        while i < 10:
            time.sleep(0.001)  # the example sleeps 0.5 s
            yield i
            i += 1

    def fibonacci(self):
        a, b = 0, 1
        while True:
            yield a
            a, b = b, a + b


def streaming_client(uri):
    seen = {}
    with Pyro4.Proxy(uri) as p:
        seen["list"] = p.list()
        seen["iterator"] = list(p.iterator())
        seen["generator"] = list(p.generator())
        seen["slow_generator"] = [number for number in p.slow_generator()]
        fibonacci = p.fibonacci()
        seen["fibonacci"] = list(itertools.islice(fibonacci, 12))
        fibonacci.close()
        seen["after close"] = outcome(next, fibonacci)
        Pyro4.config.ITER_STREAMING = False  # "iter-streaming has not been enabled"
        try:
            seen["streaming disabled"] = outcome(p.generator)
            seen["list, streaming disabled"] = p.list()
        finally:
            Pyro4.config.ITER_STREAMING = True
    return seen


def check_streaming(test, seen, stop="StopIteration"):
    """examples/streaming's expectations: what each stream gave (``seen``). ``stop``: the
    exception type an exhausted or closed stream raises."""
    one_to_nine = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    test.assertEqual(seen, {
        "list": one_to_nine, "iterator": one_to_nine, "generator": one_to_nine,
        "slow_generator": one_to_nine,
        "fibonacci": [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89],
        "after close": (stop, ""),
        "streaming disabled": (
            "ProtocolError",
            "result of call is an iterator, but the server is not configured to allow streaming"),
        "list, streaming disabled": one_to_nine,
    })


# ---------------------------------------------------------------------------------------------
# examples/timeout -- adapted from Pyro4 4.82 examples/timeout/{server,client}.py.
# One example second is SECOND here; a call that must time out waits until the client,
# having seen its TimeoutError, releases it (it would not finish during the test otherwise).

SECOND = 0.1


@Pyro4.expose
class TimeoutServer:
    def __init__(self):
        self.released = {}  # test hook: {amount: an Event that ends delay(amount) early}

    def delay(self, amount):
        say("sleeping %d" % amount)
        self.released.get(amount, threading.Event()).wait(amount * SECOND)  # was: time.sleep
        say("done.")
        return "slept %d seconds" % amount


FOREVER = 300  # example seconds (30 s): longer than any test should take


def timeout_client(uri, frozen_uri, server):
    seen = {}
    Pyro4.config.COMMTIMEOUT = 0
    obj = Pyro4.core.Proxy(uri)
    obj._pyroBind()
    seen["no timeout"] = obj.delay(2)
    obj._pyroTimeout = 1 * SECOND
    seen["timeout 1"] = outcome(obj.delay, FOREVER)  # the example: delay(2)
    server.released[FOREVER].set()  # the call we gave up on may finish now
    obj._pyroRelease()

    Pyro4.config.COMMTIMEOUT = 1 * SECOND
    try:
        obj = Pyro4.core.Proxy(uri)
    finally:
        Pyro4.config.COMMTIMEOUT = 0
    seen["global timeout"] = outcome(obj.delay, FOREVER + 1)
    server.released[FOREVER + 1].set()
    obj._pyroTimeout = None
    seen["timeout off"] = obj.delay(3)
    obj._pyroRelease()

    obj = Pyro4.core.Proxy(frozen_uri)
    obj._pyroTimeout = 1 * SECOND
    seen["frozen daemon"] = outcome(lambda: obj.delay(5))  # connecting times out
    obj._pyroRelease()
    return seen


class FrozenFactory(Pyro4ProtocolFactory):
    """Our stand-in for the example's daemon that never runs its request loop: it accepts
    connections but never answers a handshake."""

    def validateHandshake(self, conn, data):
        return defer.Deferred()  # never fires; the connection is dropped at close


def serve_timeout(test, server):
    """``server`` (a TimeoutServer with its ``released`` events) on a new daemon, and a
    TimeoutServer on the example's second daemon, which never answers; their URIs."""
    patch_config(test, COMMTIMEOUT=0)
    daemon = test.start()
    for event in server.released.values():
        test.addCleanup(event.set)  # never leave a servant waiting
    uri = daemon.register(server)
    if test.ours:
        frozen = test.start(FrozenFactory)
    else:  # the example's second daemon, which is never started
        frozen = Pyro4.Daemon(host="127.0.0.1")
        test.addCleanup(frozen.close)
    frozen_uri = frozen.register(TimeoutServer())
    test.addCleanup(frozen.unregister, frozen_uri.object)
    return uri, frozen_uri


# ---------------------------------------------------------------------------------------------
# examples/usersession -- adapted from Pyro4 4.82 examples/usersession/{database,server}.py

class DummyDatabase:
    """Key-value datastore"""

    def __init__(self):
        self.storage = {}
        self.allowed_users = ["user123", "admin"]

    def connect(self, user):
        return Connection(self, user)

    def __setitem__(self, key, value):
        time.sleep(random.random() / 1000)  # artificial delay (the example: up to 0.1 s)
        self.storage[key] = value

    def __getitem__(self, item):
        time.sleep(random.random() / 1000)  # artificial delay
        return self.storage[item]


class Connection:
    """Connection to the key-value datastore with artificial limitation
    that only a single thread may use the connection at the same time"""

    def __init__(self, db, user=None):
        self.db = db
        self.user = user
        self.lock = threading.RLock()

    def store(self, key, value, user=None):
        user = user or self.user
        assert user in self.db.allowed_users, "access denied"
        if self.lock.acquire(blocking=False):
            say("DB: user %s stores: %s = %s" % (user, key, value))
            self.db[key] = value
            self.lock.release()
        else:
            raise RuntimeError("ERROR: concurrent connection access (write) by multiple different threads")

    def retrieve(self, key, user=None):
        user = user or self.user
        assert user in self.db.allowed_users, "access denied"
        if self.lock.acquire(blocking=False):
            say("DB: user %s retrieve: %s" % (user, key))
            value = self.db[key]
            self.lock.release()
            return value
        else:
            raise RuntimeError("ERROR: concurrent connection access (read) by multiple different threads")


database = DummyDatabase()


@Pyro4.behavior(instance_mode="single")
@Pyro4.expose
class SingletonDatabase:
    """This pyro object will exhibit problems when used from multiple proxies at the same time
    because it will access the database connection concurrently from different threads"""

    def __init__(self):
        self.conn = database.connect(user=None)  # user is per-call, not global

    def store(self, key, value):
        # get the user-token from the USER annotation
        ctx = Pyro4.current_context
        user = ctx.annotations["USER"].decode("utf-8")
        self.conn.store(key, value, user=user)

    def retrieve(self, key):
        ctx = Pyro4.current_context
        user = ctx.annotations["USER"].decode("utf-8")
        return self.conn.retrieve(key, user=user)

    def ping(self):
        return "hi"


@Pyro4.behavior(instance_mode="session")
@Pyro4.expose
class SessionboundDatabase:
    """This pyro object will work fine when used from multiple proxies at the same time
    because you'll get a new instance for every new session (proxy connection)"""

    def __init__(self):
        # get the user-token from the USER annotation
        ctx = Pyro4.current_context
        user = ctx.annotations["USER"].decode("utf-8")
        self.connection = database.connect(user)
        say("[%s] new instance and connection for user: %s" % (self.__class__.__name__, user))

    def store(self, key, value):
        self.connection.store(key, value)

    def retrieve(self, key):
        return self.connection.retrieve(key)

    def ping(self):
        return "hi"


def user_proxy(uri, user="user123"):
    class CustomAnnotationProxy(Pyro4.Proxy):
        # override the method that adds annotations and add our own custom user token annotation
        def _pyroAnnotations(self):
            return {"USER": user.encode("utf-8")}

    return CustomAnnotationProxy(uri)


def usersession_client(uris):
    seen = {}
    for db in ("sessiondb", "singletondb"):  # sequential access using multiple proxies
        with user_proxy(uris[db]) as p1, user_proxy(uris[db]) as p2:
            p1.store("number", 42)
            first = p1.retrieve("number")
            p2.store("number", 43)
            seen[db] = (first, p2.retrieve("number"))

    # Each session's database connection is for the user of the session's first call.
    # Both clients connect before either calls, so the last handshake is not the first call's.
    with user_proxy(uris["sessiondb"], "user123") as p1, \
            user_proxy(uris["sessiondb"], "mallory") as p2:
        p1._pyroBind()
        p2._pyroBind()
        seen["user123 session"] = outcome(p1.store, "number", 1)
        seen["mallory session"] = outcome(p2.store, "number", 2)
        seen["user123 again"] = outcome(p1.retrieve, "number")

    for db in ("sessiondb", "singletondb"):  # multiple concurrent proxies
        errors = []

        def run(db=db, errors=errors):
            with user_proxy(uris[db]) as proxy:
                for i in range(3):
                    try:
                        proxy.store("number", 100 + i)
                        proxy.retrieve("number")
                    except Exception as x:
                        errors.append((type(x).__name__, str(x)))

        accessors = [threading.Thread(target=run, daemon=True) for _ in range(2)]
        for t in accessors:
            t.start()
        for t in accessors:
            t.join(WAIT)
        seen["concurrent " + db] = errors
    return seen


def serve_usersession(test):
    """The example's two databases, registered on a new daemon; their URIs."""
    daemon = test.start()
    return {
        "singletondb": daemon.register(SingletonDatabase, "example.usersession.singletondb"),
        "sessiondb": daemon.register(SessionboundDatabase, "example.usersession.sessiondb"),
    }


def check_usersession(test, seen):
    """examples/usersession's expectations: what each user saw, alone and concurrently."""
    test.assertEqual(seen["sessiondb"], (42, 43))
    test.assertEqual(seen["singletondb"], (42, 43))
    test.assertEqual(seen["user123 session"], ("ok", None))
    test.assertEqual(seen["mallory session"], ("AssertionError", "access denied"))
    test.assertEqual(seen["user123 again"], ("ok", 1))
    test.assertEqual(seen["concurrent sessiondb"], [])  # "no issues"
    if not test.threaded:  # one call at a time: no "threading problem" either
        test.assertEqual(seen["concurrent singletondb"], [])
    for error in seen["concurrent singletondb"]:
        test.assertEqual(error[0], "RuntimeError")
        test.assertIn("ERROR: concurrent connection access", error[1])


# ---------------------------------------------------------------------------------------------
# examples/servertypes -- adapted from Pyro4 4.82 examples/servertypes/server.py.
# Its delays sleep one second; here the oneway ones wait until the client lets them finish.

@Pyro4.expose
@Pyro4.behavior(instance_mode="single")
class ServertypesServer:
    release = threading.Event()  # test hooks, replaced per test
    finished = threading.Semaphore(0)

    def __init__(self):
        self.callcount = 0

    def reset(self):
        self.callcount = 0

    def getcount(self):
        return self.callcount  # the number of completed calls

    def getconfig(self):
        return Pyro4.config.asDict()

    def delay(self):
        threadname = threading.current_thread().name
        say("delay called in thread %s" % threadname)
        time.sleep(0.001)  # was: time.sleep(1)
        self.callcount += 1
        return threadname

    @Pyro4.oneway
    def onewaydelay(self):
        threadname = threading.current_thread().name
        say("onewaydelay called in thread %s" % threadname)
        self.release.wait(WAIT)  # was: time.sleep(1)
        self.callcount += 1
        self.finished.release()


def servertypes_client(uri):
    seen = {}
    with Pyro4.core.Proxy(uri) as serv:
        serv.reset()
        for _ in range(5):
            serv.onewaydelay()
        seen["completed during oneways"] = serv.getcount()  # 0: all 5 are still busy
        seen["same proxy"] = [serv.delay() for _ in range(5)]
        ServertypesServer.release.set()
        for _ in range(5):
            assert ServertypesServer.finished.acquire(timeout=WAIT)
        seen["completed"] = serv.getcount()  # 10: by now the 5 oneway calls have completed
        serv.reset()
        seen["config"] = serv.getconfig()
        serv._pyroBind()  # simplify the uri

        processed = []

        def func(uri):
            # This will run in a thread. Create a proxy just for this thread:
            with Pyro4.core.Proxy(uri) as p:
                processed.append(p.delay())

        threads = [threading.Thread(target=func, args=[serv._pyroUri], daemon=True)
                   for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        seen["threads"] = processed
        seen["completed by threads"] = serv.getcount()
    return seen


# ---------------------------------------------------------------------------------------------
# examples/warehouse -- adapted from Pyro4 4.82 examples/warehouse/phase3/{warehouse,person}.py

@Pyro4.expose
@Pyro4.behavior(instance_mode="single")
class Warehouse:
    def __init__(self):
        self.contents = ["chair", "bike", "flashlight", "laptop", "couch"]

    def list_contents(self):
        return self.contents

    def take(self, name, item):
        self.contents.remove(item)
        say("{0} took the {1}.".format(name, item))  # noqa: UP030, UP032 -- as in the example

    def store(self, name, item):
        self.contents.append(item)
        say("{0} stored the {1}.".format(name, item))  # noqa: UP030, UP032 -- as in the example


class Person:
    def __init__(self, name, answers):
        self.name = name
        self.answers = iter(answers)  # what the example asks with input()
        self.saw = []

    def input(self, prompt):
        return next(self.answers)

    def visit(self, warehouse):
        self.deposit(warehouse)
        self.retrieve(warehouse)

    def deposit(self, warehouse):
        self.saw.append(warehouse.list_contents())
        item = self.input("Type a thing you want to store (or empty): ").strip()
        if item:
            warehouse.store(self.name, item)

    def retrieve(self, warehouse):
        self.saw.append(warehouse.list_contents())
        item = self.input("Type something you want to take (or empty): ").strip()
        if item:
            warehouse.take(self.name, item)


def warehouse_client(pyroname):
    with Pyro4.Proxy(pyroname) as warehouse:  # the example's visit.py
        janet = Person("Janet", ["teddy bear", "bike"])
        henry = Person("Henry", ["", "chair"])
        janet.visit(warehouse)
        henry.visit(warehouse)
        thief = Person("Thief", ["", "unicorn"])
        stolen = outcome(thief.visit, warehouse)
        return janet.saw, henry.saw, stolen, warehouse.list_contents()


def serve_warehouse(test):
    """The example's Warehouse on a new daemon, named in a Pyro4 name server; its PYRONAME."""
    daemon = test.start()
    uri = daemon.register(Warehouse)
    ns = pyro4_peers.serve_pyro4_nameserver(test)
    ns.register_name("example.warehouse", uri)
    return ns.pyroname("example.warehouse")


def check_warehouse(test, janet, henry, stolen, contents):
    """examples/warehouse's expectations: what each visitor saw, the theft, what is left."""
    initial = ["chair", "bike", "flashlight", "laptop", "couch"]
    test.assertEqual(janet, [initial, initial + ["teddy bear"]])
    after_janet = ["chair", "flashlight", "laptop", "couch", "teddy bear"]
    test.assertEqual(henry, [after_janet, after_janet])
    test.assertEqual(stolen, ("ValueError", "list.remove(x): x not in list"))
    test.assertEqual(contents, ["flashlight", "laptop", "couch", "teddy bear"])
    test.assertEqual(say.items, ["Janet stored the teddy bear.", "Janet took the bike.",
                                 "Henry took the chair."])


# ---------------------------------------------------------------------------------------------
# examples/shoppingcart -- adapted from Pyro4 4.82 examples/shoppingcart/{shopserver,
# shoppingcart}.py

@Pyro4.expose
class ShoppingCart:
    def __init__(self):
        self.contents = []

    def purchase(self, item):
        self.contents.append(item)
        say("(%s put into shoppingcart %d)" % (item, id(self)))

    def empty(self):
        self.contents = []

    def getContents(self):
        return self.contents


@Pyro4.expose
@Pyro4.behavior(instance_mode="single")
class Shop:
    inventory = {
        "paper": 1.25, "bread": 1.50, "meat": 5.99, "milk": 0.80, "fruit": 2.65,
        "chocolate": 3.99, "pasta": 0.50, "sauce": 1.20, "vegetables": 1.40, "cookies": 1.99,
        "pizza": 3.60, "shampoo": 2.22, "whiskey": 24.99,
    }

    customersInStore: dict[str, Any] = {}

    def enter(self, name):
        say("Customer %s enters the store." % name)
        # create a cart and return it as a pyro object to the client
        cart = ShoppingCart()
        self.customersInStore[name] = cart
        self._pyroDaemon.register(cart)  # make cart a pyro object
        return cart

    def customers(self):
        return list(self.customersInStore.keys())

    def goods(self):
        return self.inventory

    def payByName(self, name):
        say("Customer %s goes to the counter to pay." % name)
        cart = self.customersInStore[name]
        return self.payCart(cart, name)

    def payCart(self, cart, name=None):
        receipt = []
        if name:
            receipt.append("Receipt for %s." % name)
        receipt.append("Receipt Date: " + time.asctime())
        total = 0.0
        for item in cart.getContents():
            price = self.inventory[item]
            total += price
            receipt.append("%13s  %.2f" % (item, price))
        receipt.append("")
        receipt.append("%13s  %.2f" % ("total:", total))
        cart.empty()
        return "\n".join(receipt)

    def leave(self, name):
        say("Customer %s leaves." % name)
        cart = self.customersInStore[name]
        if cart.getContents():
            raise Exception("attempt to steal a full cart prevented")
        # delete the cart and unregister it with pyro
        del self.customersInStore[name]
        self._pyroDaemon.unregister(cart)


def without_date(receipt):
    return [line for line in receipt.split("\n") if not line.startswith("Receipt Date: ")]


def shoppingcart_client(uri):
    seen = {}
    with Pyro4.Proxy(uri) as shop:
        harrysCart = shop.enter("Harry")
        sallysCart = shop.enter("Sally")
        shoplifterCart = shop.enter("shoplifter")
        seen["carts"] = [type(cart).__name__ for cart in (harrysCart, sallysCart, shoplifterCart)]
        seen["goods"] = sorted(shop.goods())
        for item in ("bread", "milk", "pizza", "milk"):  # the example chooses at random
            harrysCart.purchase(item)
        for item in ("whiskey", "pasta", "sauce", "cookies", "fruit"):
            sallysCart.purchase(item)
        for item in ("chocolate", "shampoo", "meat"):
            shoplifterCart.purchase(item)
        seen["customers"] = sorted(shop.customers())
        seen["Harry's receipt"] = without_date(shop.payByName("Harry"))
        seen["Harry's cart"] = harrysCart.getContents()
        seen["Sally's receipt"] = without_date(shop.payCart(sallysCart))
        seen["Sally's cart"] = sallysCart.getContents()
        seen["Harry leaves"] = outcome(shop.leave, "Harry")
        seen["Sally leaves"] = outcome(shop.leave, "Sally")
        seen["shoplifter leaves"] = outcome(shop.leave, "shoplifter")
        # "which should fail because the cart does no longer exist"
        seen["Harry's cart again"] = outcome(harrysCart.purchase, "crap")
        for cart in (harrysCart, sallysCart, shoplifterCart):
            cart._pyroRelease()
    return seen


# ---------------------------------------------------------------------------------------------
# examples/disconnects -- adapted from Pyro4 4.82 examples/disconnects/{server,client}.py

class TestDisconnect:
    @Pyro4.expose
    def echo(self, arg):
        say("echo: ", arg)
        return arg


class AutoReconnectingProxy(Pyro4.core.Proxy):
    """A Pyro proxy that automatically recovers from a server disconnect.
    It does this by intercepting every method call and then it first 'pings'
    the server to see if it still has a working connection. If not, it
    reconnects the proxy and retries the method call."""

    def _pyroInvoke(self, *args, **kwargs):
        if self._pyroConnection:
            try:
                Pyro4.message.Message.ping(self._pyroConnection, hmac_key=None)
                say("<proxy: ping reply (still connected)>")
            except Pyro4.errors.ConnectionClosedError:
                say("<proxy: Connection lost. REBINDING...>")
                self._pyroReconnect()
        return super()._pyroInvoke(*args, **kwargs)


def disconnects_client(uri, disconnect):
    """``disconnect(address)`` makes the server drop the client connection from ``address``
    (the example: unplug the network, or wait for the server's COMMTIMEOUT)."""
    with AutoReconnectingProxy(uri) as obj:
        first = obj.echo("12345")
        second = obj.echo("12345")  # pinged first: still connected
        disconnect(obj._pyroConnection.sock.getsockname())
        third = obj.echo("12345")
    return first, second, third


# ---------------------------------------------------------------------------------------------
# examples/autoreconnect -- adapted from Pyro4 4.82 examples/autoreconnect/{server,client}.py

@Pyro4.expose
class ReconnectTestClass:
    def method(self, arg):
        say("Method called with %s" % arg)  # the example then sleeps a second


def autoreconnect_client(uri, restart_server):
    seen = []
    obj = Pyro4.core.Proxy(uri)
    seen.append(outcome(obj.method, 42))
    restart_server()  # the example: "restart the server now"
    try:
        obj.method(42)
        seen.append("no error")
    except Pyro4.errors.ConnectionClosedError:  # or possibly CommunicationError
        seen.append("Connection lost. REBINDING...")
        obj._pyroReconnect()
    seen.append(outcome(obj.method, 42))
    obj._pyroRelease()
    return seen


# ---------------------------------------------------------------------------------------------
# The tests: one body, four our_server.

ONEWAY_NOT_IN_LINE = (
    "differs from Pyro4 by design: Pyro4 runs a oneway batch in line before it serves the "
    "connection's next request, whatever ONEWAY_THREADED says; ours, with a thread pool and "
    "ONEWAY_THREADED=True (the default), runs it in the pool without holding up the "
    "connection (it owes no reply), so the next call may run first; with "
    "ONEWAY_THREADED=False it keeps Pyro4's order")


def forget_registrations(daemon: Any) -> None:
    """Unregister everything (classes keep ``_pyroId`` otherwise, and cannot be registered on
    the next test's daemon)."""
    for object_id, obj in list(daemon.objectsById.items()):
        if object_id != Pyro4.constants.DAEMON_NAME and getattr(obj, "_pyroId", None):
            daemon.unregister(obj)


def client(function: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    """Run an example's client code in a worker thread, with a clean call context (worker
    threads are reused, and Pyro4 clients send the context's correlation id)."""
    def fresh() -> Any:
        Pyro4.current_context.correlation_id = None
        Pyro4.current_context.annotations = {}
        Pyro4.current_context.response_annotations = {}
        try:
            return function(*args)
        finally:
            Pyro4.current_context.correlation_id = None
            Pyro4.current_context.annotations = {}

    return in_thread(fresh)


class ExampleTests:
    """Pyro4's examples, as run against one server (see the subclasses)."""

    timeout = 60
    #: "reactor" and "threadpool" (ours), "thread" and "multiplex" (Pyro4's)
    target: str
    #: servants may block on each other (Pyro4's thread server, our thread pool)
    threaded: bool
    #: every call of one connection runs in the same thread (all but our thread pool)
    thread_per_connection = True
    #: under ONEWAY_THREADED=True (the default), a oneway batch runs before the connection's
    #: next request is served (Pyro4; ours only where servants run in the reactor thread).
    #: Under ONEWAY_THREADED=False, every server runs oneway calls and batches in line.
    oneway_batch_in_line = True
    #: the server's own frames at the top of a remote traceback: Pyro4's handleRequest
    daemon_frames = ["handleRequest"]

    def setUp(self) -> None:
        say.clear()
        self.peers: dict[Any, pyro4_peers.Pyro4Peer] = {}

    @property
    def ours(self) -> bool:
        return self.target in ("reactor", "threadpool")

    def start(self, hooks: type | None = None, port: int = 0, **factory_kwargs: Any) -> Any:
        """A new daemon (``hooks`` mixed in) for this test, stopped at cleanup; returned.
        ``factory_kwargs`` go to our factory only."""
        if self.ours:
            pool = None
            if self.target == "threadpool":
                pool = ThreadPool(minthreads=0, maxthreads=8, name="servants")
                pool.start()
                self.addCleanup(pool.stop)
            cls = Pyro4ProtocolFactory if hooks is None else type(
                hooks.__name__ + "Factory", (hooks, Pyro4ProtocolFactory), {})
            factory = cls(threadpool=pool, **factory_kwargs)
            if port:
                listening = reactor.listenTCP(port, factory, interface="127.0.0.1",
                                              backlog=DEFAULT_BACKLOG)
                factory.ports.append(listening)
                factory.setAddress("127.0.0.1", port)
                self.addCleanup(factory.close)
            else:
                serve(self, factory)
            daemon = factory
        else:
            cls = Pyro4.Daemon if hooks is None else type(
                hooks.__name__ + "Daemon", (hooks, Pyro4.Daemon), {})
            peer = pyro4_peers.serve_pyro4(self, self.target, daemon_class=cls, port=port)
            daemon = peer.daemon
            self.peers[daemon] = peer
        self.addCleanup(forget_registrations, daemon)
        return daemon

    # -- the examples ------------------------------------------------------------------------

    @async_test
    async def test_attributes(self):
        daemon = self.start()
        uri = daemon.register(AttributesThingy, "example.attributes")
        check_attributes(self, await client(attributes_client, uri))

    @async_test
    async def test_autoproxy(self):
        daemon = self.start()
        uri = daemon.register(AutoproxyFactory, "example.autoproxy")
        kinds, locations, copy = await client(autoproxy_client, uri)
        self.assertEqual(kinds, ["Proxy", "Proxy", "Proxy"])
        self.assertEqual(locations, {daemon.locationStr})
        self.assertEqual(say.items, ["Thingy 1 says: I am the first", "Thingy 2 says: I am second",
                                     "Thingy 3 says: I am last then..."])
        self.assertEqual(copy, ("SerializeError",
                                "unsupported serialized class: %s.AutoproxyThingy" % __name__))

    @async_test
    async def test_batchedcalls(self):
        daemon = self.start()
        uri = daemon.register(BatchedThingy, "example.batched")
        seen = await client(batchedcalls_client, uri)
        # (the asynchronous batch call left its calls in the batch, so they run again)
        await check_batchedcalls(self, seen, async_batch_kept=True)

    @async_test
    async def test_batchedcalls_oneway_batch_runs_before_the_next_call(self):
        uri = serve_in_line(self, BatchedThingy, "example.batched")
        self.assertIsNone(await client(batched_oneway_client, uri))
        self.assertEqual(say.items, ["beginning batch #2", "end of batch #2", "after batch #2"])

    @async_test
    async def test_batchedcalls_oneway_batch_unthreaded_runs_before_the_next_call(self):
        """``ONEWAY_THREADED=False``: a oneway batch runs in line on every server."""
        patch_config(self, ONEWAY_THREADED=False)
        uri = serve_in_line(self, BatchedThingy, "example.batched")
        self.assertIsNone(await client(batched_oneway_client, uri))
        self.assertEqual(say.items, ["beginning batch #2", "end of batch #2", "after batch #2"])

    @async_test
    async def test_blob_dispatch(self):
        register_custom_data(self)
        daemon = self.start()
        uri = daemon.register(BlobDispatcher, "example.blobdispatcher")
        _, weather, news = serve_blob_listeners(self)

        def blocking():
            with Pyro4.Proxy(uri) as dispatcher:
                dispatcher.register("weather", weather)  # each listener registers itself
                dispatcher.register("news", news)
                for topic in ("weather", "news", "weather", "nobody listens"):
                    data = CustomData(42, "hello " + topic, BLOB_TIME)
                    dispatcher.process_blob(Pyro4.core.SerializedBlob(topic, data))
            return weather.received.wait_for(2), news.received.wait_for(1)

        self.addCleanup(release_listener_proxies, daemon)
        on_weather, on_news = await client(blocking)
        check_blob_dispatch(self, on_weather, on_news)

    @async_test
    async def test_callcontext(self):
        daemon = self.start(ContextDaemon)
        daemon._pyroHmacKey = CONTEXT_HMAC
        uri = daemon.register(ContextEchoServer, "example.context")
        responses, sockets, normal, after_oneway = await client(callcontext_client, uri)
        calls = await check_callcontext(self, daemon, responses, normal, after_oneway)
        for message, address in sockets.items():
            self.assertEqual(calls[message]["context.client_sock_addr"], address, message)

    @async_test
    async def test_callcontext_oneway_leaves_no_context_behind(self):
        """A threaded oneway call's context ends with the call. Pyro4 runs it in a thread of
        its own; ours may use the reactor's shared pool, whose next job (a Pyro4 client,
        say) must not send the finished call's correlation id as its own."""
        reactor.suggestThreadPoolSize(1)  # the oneway call's worker is the one we use next
        self.addCleanup(reactor.suggestThreadPoolSize, 10)
        daemon = self.start()
        uri = daemon.register(ContextEchoServer, "example.context")
        mine = uuid.UUID(int=42)

        def set_correlation_id(value):
            Pyro4.current_context.correlation_id = value

        def oneway_from_another_thread():
            def blocking():
                with Pyro4.Proxy(uri) as proxy:
                    proxy.oneway("hello-ONEWAY")
                    return proxy.echo("hello")  # served after the oneway call was started

            caller = threading.Thread(target=blocking)
            caller.start()
            caller.join(WAIT)

        await in_thread(set_correlation_id, mine)
        await in_thread(oneway_from_another_thread)
        said = await in_thread(say.wait_for, 2)
        self.assertIn("hello-ONEWAY", [entry["message"] for entry in said])
        self.assertEqual(await in_thread(lambda: Pyro4.current_context.correlation_id), mine)
        await in_thread(set_correlation_id, None)

    @async_test
    async def test_exceptions(self):
        daemon = self.start()
        uri = daemon.register(ExceptionsTestClass, "example.exceptions")
        check_exceptions(self, await client(exceptions_client, uri))

    @async_test
    async def test_handshake(self):
        daemon = self.start(HandshakeDaemon)
        uri = daemon.uriFor(Pyro4.constants.DAEMON_NAME)
        accepted = await client(handshake_client, uri, secret_code)
        refused = await client(handshake_client, uri, "waffles")
        self.assertEqual(accepted[:3], ("ok", None, [["how", "are", "you", "doing"]]))
        self.assertEqual(refused, (
            "CommunicationError",
            "connection to ('127.0.0.1', PORT) rejected: wrong secret code, connection refused",
            [], None))
        said = await client(say.wait_for, 5)
        self.assertEqual([item[1] for item in said if item[0] == "Handshake data:"],
                         ["pancakes", "waffles"])
        self.assertEqual(said[0], ("Daemon received handshake request from:", accepted[3]))
        # only the accepted client disconnects (the refused one never got that far)
        self.assertEqual([item for item in said if item[0] == "Daemon client disconnects:"],
                         [("Daemon client disconnects:", accepted[3])])

    @async_test
    async def test_instancemode(self):
        uris = serve_instancemode(self)
        check_instancemode(self, await client(instancemode_client, uris))

    @async_test
    async def test_maxsize(self):
        patch_config(self, MAX_MESSAGE_SIZE=0)
        daemon = self.start()
        uri = daemon.register(Pyro4.test.echoserver.EchoServer(), "test.echoserver")
        check_maxsize(self, *await client(maxsize_client, uri))

    @async_test
    async def test_echoserver(self):
        daemon = self.start()
        echo = Pyro4.test.echoserver.EchoServer()
        uri = daemon.register(echo, "test.echoserver")
        check_echoserver(self, await client(echoserver_client, uri), echo)

    @async_test
    async def test_hugetransfer(self):
        daemon = self.start()
        uri = daemon.register(HugeTestclass, "example.hugetransfer")
        check_hugetransfer(self, *await client(hugetransfer_client, uri))

    @async_test
    async def test_oneway(self):
        daemon = self.start()
        server = OnewayServer()  # the example registers the class; we need its instance
        uri = daemon.register(server, "example.oneway")
        await check_oneway(self, await client(oneway_client, uri, server))

    @async_test
    async def test_oneway_unthreaded(self):
        """``ONEWAY_THREADED=False``: oneway calls run in line, before the next request."""
        patch_config(self, ONEWAY_THREADED=False)
        server = OnewayServer()
        uri = serve_in_line(self, server, "example.oneway")
        self.assertEqual(await client(oneway_unthreaded_client, uri, server), (True, True))

    @async_test
    async def test_resourcetracking(self):
        daemon = self.start(ResourceTrackingDaemon)
        uri = daemon.register(ResourceService, "service")
        seen = await client(resourcetracking_client, uri)
        self.assertEqual(seen["at first"], [])
        self.assertEqual(seen["allocated"], ["r1", "r2"])
        self.assertEqual(seen["freed"], [])
        self.assertEqual(seen["after abort"], [])
        disconnects = [item[1:] for item in say.items if item[0] == "client disconnects:"]
        self.assertIn((seen["normal address"], []), disconnects)
        self.assertIn((seen["abort address"], ["r3", "r4"]), disconnects)
        closed = [item[1] for item in say.items if item[0] == "Resource: closing"]
        self.assertEqual(sorted(closed), ["r1", "r2", "r3", "r4"])

    @async_test
    async def test_streaming(self):
        patch_config(self, ITER_STREAMING=True)
        daemon = self.start()
        uri = daemon.register(Streamer, "example.streamer")
        check_streaming(self, await client(streaming_client, uri))

    @async_test
    async def test_timeout(self):
        server = TimeoutServer()
        server.released = {FOREVER: threading.Event(), FOREVER + 1: threading.Event()}
        uri, frozen_uri = serve_timeout(self, server)
        seen = await client(timeout_client, uri, frozen_uri, server)
        self.assertEqual(seen, {
            "no timeout": "slept 2 seconds",
            "timeout 1": ("TimeoutError", "receiving: timeout"),
            "global timeout": ("TimeoutError", "receiving: timeout"),
            "timeout off": "slept 3 seconds",
            "frozen daemon": ("TimeoutError", "receiving: timeout"),
        })

    @async_test
    async def test_usersession(self):
        uris = serve_usersession(self)
        check_usersession(self, await client(usersession_client, uris))

    @async_test
    async def test_servertypes(self):
        seen = await self._servertypes()
        self.assertEqual(seen["completed during oneways"], 0)
        self.assertEqual(seen["completed"], 10)
        self.assertIn(seen["config"]["SERVERTYPE"], ("thread", "multiplex"))
        self.assertEqual(len(seen["threads"]), 5)
        self.assertEqual(seen["completed by threads"], 5)
        if not self.threaded:  # "The threads will need to get in line": a single thread
            self.assertEqual(set(seen["threads"]), set(seen["same proxy"]))
        if self.target == "threadpool":
            self.assertTrue(all("servants" in name for name in
                                seen["same proxy"] + seen["threads"]), seen)

    @async_test
    async def test_servertypes_one_thread_per_connection(self):
        """"Calling normal delay 5 times. They will all be processed by the same server thread
        because we're using the same proxy." """
        if not self.thread_per_connection:
            raise unittest.SkipTest(
                "differs from Pyro4: with a thread pool, the calls of one connection run one at "
                "a time but in any of the pool's threads; Pyro4's thread server runs all of "
                "them in the connection's own worker thread (thread-local state differs)")
        seen = await self._servertypes()
        self.assertEqual(len(set(seen["same proxy"])), 1, seen["same proxy"])

    def _servertypes(self) -> defer.Deferred[Any]:
        ServertypesServer.release = threading.Event()
        ServertypesServer.finished = threading.Semaphore(0)
        self.addCleanup(ServertypesServer.release.set)  # never leave a oneway call waiting
        daemon = self.start()
        uri = daemon.register(ServertypesServer, "example.servertypes")
        return client(servertypes_client, uri)

    @async_test
    async def test_warehouse(self):
        pyroname = serve_warehouse(self)
        check_warehouse(self, *await client(warehouse_client, pyroname))

    @async_test
    async def test_shoppingcart(self):
        if not self.threaded:
            raise unittest.SkipTest(
                "payCart(cart) calls the cart back, through its proxy, while the call is being "
                "served: that needs a thread per call (deadlocks Pyro4's multiplex server and "
                "servants in our reactor thread alike)")
        self.addCleanup(Shop.customersInStore.clear)
        Shop.customersInStore.clear()
        daemon = self.start()
        uri = daemon.register(Shop, "example.shop")
        seen = await client(shoppingcart_client, uri)
        self.assertEqual(seen["carts"], ["Proxy"] * 3)
        self.assertEqual(seen["goods"], sorted(Shop.inventory))
        self.assertEqual(seen["customers"], ["Harry", "Sally", "shoplifter"])
        self.assertEqual(seen["Harry's receipt"], [
            "Receipt for Harry.", "        bread  1.50", "         milk  0.80",
            "        pizza  3.60", "         milk  0.80", "", "       total:  6.70"])
        self.assertEqual(seen["Harry's cart"], [])
        self.assertEqual(seen["Sally's receipt"], [
            "      whiskey  24.99", "        pasta  0.50", "        sauce  1.20",
            "      cookies  1.99", "        fruit  2.65", "", "       total:  31.33"])
        self.assertEqual(seen["Sally's cart"], [])
        self.assertEqual(seen["Harry leaves"], ("ok", None))
        self.assertEqual(seen["Sally leaves"], ("ok", None))
        self.assertEqual(seen["shoplifter leaves"],
                         ("Exception", "attempt to steal a full cart prevented"))
        self.assertEqual(seen["Harry's cart again"], ("DaemonError", "unknown object"))

    @async_test
    async def test_disconnects(self):
        """The server drops a connection; the example's proxy notices (ping) and reconnects."""
        if self.target == "multiplex":
            raise unittest.SkipTest("Pyro4's multiplex server never drops an idle connection "
                                    "(it ignores COMMTIMEOUT there), nor offers a way to drop one")
        patch_config(self, COMMTIMEOUT=0)
        if self.ours:
            daemon = self.start()

            def disconnect(address):  # what a network failure does
                def drop():
                    for protocol in daemon.protocols:
                        if protocol.peer_address == address:
                            protocol.transport.abortConnection()
                blockingCallFromThread(reactor, drop)
        else:
            # the example: "wait until the connection timeout on the server expires"
            daemon = self.start(DisconnectWatcher)
            Pyro4.config.COMMTIMEOUT = 0.5  # the server's sockets get it when they connect

            def disconnect(address):
                Pyro4.config.COMMTIMEOUT = 0
                say.wait_until(lambda said: ("disconnected", address) in said)
        uri = daemon.register(TestDisconnect, "example.disconnect")
        first, second, third = await client(disconnects_client, uri, disconnect)
        self.assertEqual((first, second, third), ("12345", "12345", "12345"))
        self.assertIn("<proxy: Connection lost. REBINDING...>", say.items)
        self.assertEqual([item for item in say.items if item == ("echo: ", "12345")],
                         [("echo: ", "12345")] * 3)

    @async_test
    async def test_disconnects_idle_timeout(self):
        """examples/disconnects relies on the server closing idle connections after
        ``COMMTIMEOUT`` seconds, as Pyro4's thread server does; ours does with
        ``idle_timeout``."""
        if self.target == "multiplex":
            raise unittest.SkipTest(
                "Pyro4's multiplex server never closes idle connections (it ignores "
                "COMMTIMEOUT there)")
        patch_config(self, COMMTIMEOUT=0)
        if self.ours:
            daemon = self.start(DisconnectWatcher, idle_timeout=0.2)
        else:
            daemon = self.start(DisconnectWatcher)
        uri = daemon.register(TestDisconnect, "example.disconnect")

        def blocking():
            with Pyro4.Proxy(uri) as proxy:  # its own timeout: none
                Pyro4.config.COMMTIMEOUT = 0.2
                try:
                    proxy.echo("connect")  # the server's socket gets the timeout now
                finally:
                    Pyro4.config.COMMTIMEOUT = 0
                address = proxy._pyroConnection.sock.getsockname()
                return ("disconnected", address) in say.wait_until(
                    lambda said: ("disconnected", address) in said)

        self.assertTrue(await client(blocking))

    @async_test
    async def test_autoreconnect(self):
        if self.target == "thread":
            raise unittest.SkipTest(
                "Pyro4's thread server keeps serving open connections after shutdown() (the "
                "example's server process exits instead), so the client never loses its "
                "connection in-process")
        daemon = self.start()
        port = int(daemon.locationStr.rsplit(":", 1)[1])
        object_id = "example.autoreconnect_fixed_objectid"
        uri = daemon.register(ReconnectTestClass, objectId=object_id)

        def restart_server():
            """Stop this daemon, then start a new one on the same port with the same object."""
            if self.ours:
                blockingCallFromThread(reactor, daemon.close)
            else:
                self.peers[daemon].stop()
            forget_registrations(daemon)
            restarted = blockingCallFromThread(reactor, self.start, None, port)
            restarted.register(ReconnectTestClass, objectId=object_id)

        seen = await client(autoreconnect_client, uri, restart_server)
        self.assertEqual(seen, [("ok", None), "Connection lost. REBINDING...", ("ok", None)])
        self.assertEqual(say.items, ["Method called with 42"] * 2)


class DisconnectWatcher:
    def clientDisconnect(self, conn):
        say(("disconnected", conn.sock.getpeername()))


class OnOurReactor(ExampleTests, unittest.TestCase):
    target = "reactor"
    threaded = False
    daemon_frames: list[str] = []


class OnOurThreadPool(ExampleTests, unittest.TestCase):
    target = "threadpool"
    threaded = True
    thread_per_connection = False
    oneway_batch_in_line = False
    daemon_frames: list[str] = []


class OnPyro4Thread(ExampleTests, unittest.TestCase):
    target = "thread"
    threaded = True


class OnPyro4Multiplex(ExampleTests, unittest.TestCase):
    target = "multiplex"
    threaded = False
