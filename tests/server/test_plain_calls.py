"""The dispatcher's shortcut for plain calls answers exactly what the general path answers.

``Dispatcher._plain`` serves the usual small call (serpent, scalar arguments, an exposed
method of a registered instance, no thread pool) with less work. Here every request is
served twice, by a connection that may take the shortcut and by one that may not (the
shortcut patched away), and the two replies must be the same bytes, for both generations:
calls it takes and requests it must leave alone (other shapes, attribute access, a PING
whatever it carries), refusals (answered by the general path's code after one lookup of the
name), coroutines, results that are not scalars or cannot be written, annotations added by
the servant or the factory (asked once). Real clients exercise the same paths in
tests/interop and tests/server.
"""

from __future__ import annotations

import uuid

import Pyro4
import Pyro4.message
import Pyro4.util
import Pyro5.api
import Pyro5.protocol
import Pyro5.serializers
import pytest
from twisted.internet import task
from twisted.internet.testing import StringTransport

from pyro.protocol import Pyro4ProtocolFactory
from pyro.server import dispatch

CORR = uuid.UUID("12345678-1234-5678-1234-567812345678")


@Pyro4.expose
class Servant:
    def add(self, a, b):
        return a + b

    def echo(self, value=None):
        return value

    def pair(self, a, b):
        return [a, b]

    def fail(self, text):
        raise ValueError(text)

    def huge(self):
        return 10 ** 5000  # an int Python refuses to repr(): more than 4300 digits

    def annotated(self):
        Pyro4.current_context.response_annotations["XTRA"] = b"servant's"
        return 1

    async def later(self, value):
        return value

    def _private(self):
        return "never"

    @Pyro4.expose
    @property
    def prop(self):
        return "prop"

    def __len__(self):
        return 0


class Unexposed:
    def add(self, a, b):
        return a + b


class AnnotatingFactory(Pyro4ProtocolFactory):
    def annotations(self):
        return {"DAEM": b"factory's"}


def _factory(cls=Pyro4ProtocolFactory, **options):
    factory = cls(reactor=task.Clock(), **options)
    factory.setAddress("127.0.0.1", 9)
    factory.register(Servant(), "servant")
    factory.register(Unexposed(), "unexposed")
    factory.register(type("PerClass", (Servant,), {}), "perclass")  # (a class: one Pyro id)
    return factory


def _connection(factory, gen):
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    if gen == 4:
        serializer = Pyro4.util.get_serializer("serpent")
        hello = serializer.serializeData({"handshake": "hello", "object": "servant"})[0]
        protocol.dataReceived(Pyro4.message.Message(
            Pyro4.message.MSG_CONNECT, hello, serializer.serializer_id, 0, 1).to_bytes())
    else:
        serializer = Pyro5.serializers.serializers["serpent"]
        hello = serializer.dumps({"handshake": "hello", "object": "servant"})
        protocol.dataReceived(Pyro5.protocol.SendingMessage(
            Pyro5.protocol.MSG_CONNECT, 0, 1, serializer.serializer_id, hello).data)
    assert protocol.handshaken
    transport.clear()
    return protocol, transport


def _request(gen, object_id, method, vargs, kwargs=None, seq=7, flags=0):
    """An INVOKE as the real proxies build it (serpent), with a fixed correlation id."""
    kwargs = kwargs or {}
    if gen == 4:
        serializer = Pyro4.util.get_serializer("serpent")
        data = serializer.serializeCall(object_id, method, vargs, kwargs, compress=False)[0]
        return Pyro4.message.Message(Pyro4.message.MSG_INVOKE, data, serializer.serializer_id,
                                     flags, seq, annotations={"CORR": CORR.bytes}).to_bytes()
    serializer = Pyro5.serializers.serializers["serpent"]
    data = serializer.dumpsCall(object_id, method, vargs, kwargs)
    Pyro5.api.current_context.correlation_id = CORR
    try:
        return Pyro5.protocol.SendingMessage(Pyro5.protocol.MSG_INVOKE, flags, seq,
                                             serializer.serializer_id, data).data
    finally:
        Pyro5.api.current_context.correlation_id = None


def _replies(factory_cls, gen, request, monkeypatch, clock_steps=0):
    """The bytes answered to ``request`` with the shortcut, and without it; and whether
    the shortcut answered."""
    taken = []
    plain = dispatch.Dispatcher._plain

    def watched(self, connection, codec, msg):
        outcome = plain(self, connection, codec, msg)
        taken.append(outcome is not dispatch._NOT_PLAIN)
        return outcome

    answers = []
    for allowed in (True, False):
        with monkeypatch.context() as patch:
            if allowed:
                patch.setattr(dispatch.Dispatcher, "_plain", watched)
            else:
                patch.setattr(dispatch.Dispatcher, "_plain",
                              lambda self, connection, codec, msg: dispatch._NOT_PLAIN)
            factory = _factory(factory_cls)
            protocol, transport = _connection(factory, gen)
            protocol.dataReceived(request)
            answers.append(transport.value())
    return answers[0], answers[1], taken[-1]


def _traceback_free(gen, reply):
    """An exception reply's exception (type and arguments): its traceback names the
    server's own frames, which differ between the two paths."""
    if gen == 4:
        reader_msg = Pyro4.message.Message.from_header(reply[:Pyro4.message.Message.header_size])
        body = reply[Pyro4.message.Message.header_size + reader_msg.annotations_size:]
        value = Pyro4.util.get_serializer("serpent").deserializeData(body)
    else:
        header = reply[:Pyro5.protocol._header_size]
        msg = Pyro5.protocol.ReceivingMessage(header)
        body = reply[Pyro5.protocol._header_size + msg.annotations_size:]
        value = Pyro5.serializers.serializers["serpent"].loads(body)
    return type(value).__name__, value.args


TAKEN = [
    ("servant", "add", (1, 2)),
    ("servant", "echo", ("text, with 'quotes' and é",)),
    ("servant", "echo", (None,)),
    ("servant", "echo", (True,)),
    ("servant", "echo", (-12345678901234,)),
    ("servant", "echo", ()),
    ("servant", "pair", (1, "b")),  # a list result: the general code writes it
    ("servant", "echo", (2.5,)),  # a float result: serpent writes it (not repr())
    ("servant", "echo", ("x" * 70000,)),  # a large result: the general code frames it
    ("servant", "later", (5,)),  # a coroutine: its Deferred, answered by the general code
    ("servant", "annotated", ()),  # the servant's annotation travels
    ("servant", "__len__", ()),  # an exposed dunder method: Pyro allows it
    ("servant", "huge", ()),  # a scalar result that cannot be written: the client's error
]

LEFT = [
    ("servant", "echo", ([1, 2],)),  # not scalar arguments
    ("servant", "__getattr__", ("prop",)),  # attribute access
    ("perclass", "add", (1, 2)),  # a registered class: instance modes
    ("nosuchobject", "add", (1, 2)),
    ("Pyro.Daemon", "ping", ()),
]


@pytest.mark.parametrize("gen", [4, 5])
@pytest.mark.parametrize("object_id, method, vargs", TAKEN)
def test_plain_calls_are_answered_as_by_the_general_path(gen, object_id, method, vargs,
                                                         monkeypatch):
    fast, general, taken = _replies(Pyro4ProtocolFactory, gen,
                                    _request(gen, object_id, method, vargs), monkeypatch)
    assert taken
    assert fast == general and fast


REFUSED = [  # answered by the general path's code for refusals, after one lookup
    ("servant", "_private", ()),
    ("servant", "nosuch", ()),
    ("unexposed", "add", (1, 2)),
]


@pytest.mark.parametrize("gen", [4, 5])
@pytest.mark.parametrize("object_id, method, vargs", REFUSED)
def test_refusals_are_answered_as_by_the_general_path(gen, object_id, method, vargs,
                                                      monkeypatch):
    fast, general, taken = _replies(Pyro4ProtocolFactory, gen,
                                    _request(gen, object_id, method, vargs), monkeypatch)
    assert taken
    assert _traceback_free(gen, fast) == _traceback_free(gen, general)
    assert _traceback_free(gen, fast)[0] == "AttributeError"


@pytest.mark.parametrize("gen", [4, 5])
def test_a_ping_carrying_a_call_is_only_a_ping(gen, monkeypatch):
    """A PING's payload is never read (Pyro's daemons answer "pong"), whatever it holds."""
    if gen == 4:
        serializer = Pyro4.util.get_serializer("serpent")
        data = serializer.serializeCall("servant", "fail", ("must not run",), {})[0]
        ping = Pyro4.message.Message(Pyro4.message.MSG_PING, data, serializer.serializer_id,
                                     0, 7, annotations={"CORR": CORR.bytes}).to_bytes()
    else:  # (the type is the byte after b"PYRO" and the version; no checksum in Pyro5)
        call = _request(gen, "servant", "fail", ("must not run",))
        ping = call[:6] + bytes([Pyro5.protocol.MSG_PING]) + call[7:]
    fast, general, taken = _replies(Pyro4ProtocolFactory, gen, ping, monkeypatch)
    assert not taken and fast == general and b"pong" in fast and b"must not run" not in fast


@pytest.mark.parametrize("gen", [4, 5])
@pytest.mark.parametrize("object_id, method, vargs", LEFT)
def test_other_requests_are_left_to_the_general_path(gen, object_id, method, vargs,
                                                     monkeypatch):
    fast, general, taken = _replies(Pyro4ProtocolFactory, gen,
                                    _request(gen, object_id, method, vargs), monkeypatch)
    assert not taken
    assert fast == general and fast


@pytest.mark.parametrize("gen", [4, 5])
def test_oneway_calls_are_left_to_the_general_path(gen, monkeypatch):
    oneway = Pyro4.message.FLAGS_ONEWAY if gen == 4 else Pyro5.protocol.FLAGS_ONEWAY
    fast, general, taken = _replies(Pyro4ProtocolFactory, gen,
                                    _request(gen, "servant", "add", (1, 2), flags=oneway),
                                    monkeypatch)
    assert not taken and fast == general == b""


@pytest.mark.parametrize("gen", [4, 5])
def test_keyword_arguments_are_left_to_the_general_path(gen, monkeypatch):
    fast, general, taken = _replies(Pyro4ProtocolFactory, gen,
                                    _request(gen, "servant", "echo", (), {"value": 3}),
                                    monkeypatch)
    assert not taken and fast == general and b"3" in fast


@pytest.mark.parametrize("gen", [4, 5])
def test_the_factorys_annotations_travel(gen, monkeypatch):
    fast, general, taken = _replies(AnnotatingFactory, gen,
                                    _request(gen, "servant", "add", (1, 2)), monkeypatch)
    assert taken and fast == general and b"factory's" in fast


@pytest.mark.parametrize("gen", [4, 5])
def test_a_servants_exception_is_answered_as_by_the_general_path(gen, monkeypatch):
    fast, general, taken = _replies(Pyro4ProtocolFactory, gen,
                                    _request(gen, "servant", "fail", ("no",)), monkeypatch)
    assert taken
    assert _traceback_free(gen, fast) == _traceback_free(gen, general) == ("ValueError", ("no",))


def test_a_thread_pool_takes_the_general_path():
    """With a thread pool every servant call runs there: the shortcut never applies."""
    factory = Pyro4ProtocolFactory(reactor=task.Clock(), threadpool=object())
    factory.setAddress("127.0.0.1", 9)
    factory.register(Servant(), "servant")
    protocol, _ = _connection(factory, 4)
    msg = next(iter(protocol.codec.reader().feed(_request(4, "servant", "add", (1, 2)))))
    assert factory.dispatcher._plain(protocol, protocol.codec, msg) is dispatch._NOT_PLAIN


class Intercepting:
    """Counts the lookups of one unexposed method (its own ``__getattribute__``)."""

    looked_up = 0

    @Pyro4.expose
    def add(self, a, b):
        return a + b

    def unexposed(self):
        return "never called"

    @Pyro4.expose
    @property
    def shown(self):
        type(self).looked_up += 1
        return "shown"

    def __getattribute__(self, name):
        if name == "unexposed":
            type(self).looked_up += 1
        return object.__getattribute__(self, name)


@pytest.mark.parametrize("gen", [4, 5])
@pytest.mark.parametrize("method", ["unexposed", "shown"])
def test_what_a_refused_call_evaluates_runs_once(gen, method):
    """Pyro's rule evaluates the name (``getattr``), then refuses what is not exposed: an
    exposed property called as a method, or a servant's own ``__getattribute__``, runs once
    in Pyro4's and Pyro5's daemons (tests/server/test_exposure.py compares with Pyro4's).
    The shortcut must not evaluate it, give up and let the general path evaluate it again."""
    factory = _factory()
    factory.register(Intercepting(), "intercepting")
    protocol, transport = _connection(factory, gen)
    Intercepting.looked_up = 0
    protocol.dataReceived(_request(gen, "intercepting", method, ()))
    assert b"unexposed attribute" in transport.value()
    assert Intercepting.looked_up == 1


class CountingFactory(Pyro4ProtocolFactory):
    """A factory whose ``annotations()`` has something to say, and counts when it is asked."""

    asked = 0

    def annotations(self):
        type(self).asked += 1
        return {"DAEM": b"%d" % self.asked}


@pytest.mark.parametrize("gen", [4, 5])
def test_the_factorys_annotations_are_asked_once_a_reply(gen):
    """Pyro's daemons call ``annotations()`` once for each reply (Pyro4's ``__annotations``):
    an override may count, or compute what it returns (a per-reply value)."""
    factory = _factory(CountingFactory)
    protocol, transport = _connection(factory, gen)
    CountingFactory.asked = 0
    protocol.dataReceived(_request(gen, "servant", "add", (1, 2)))
    assert b"DAEM" in transport.value()
    assert CountingFactory.asked == 1
