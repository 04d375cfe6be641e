"""pyro.wire.messages: what one role encodes, the other role decodes, through real framing.

Every exchange of the protocol is run in memory in both directions: the client's CONNECT
and INVOKE (call, batch, oneway, blob) read by the server's decoders, the server's answers
(CONNECTOK with and without metadata, CONNECTFAIL, results, exceptions with tracebacks,
item streams, pong) read by the client's, each frame cut into random pieces on the way, with
every serializer a Pyro4 server accepts by default, with and without compression and HMAC.
Where Pyro4 itself builds a message, ours must be byte for byte the same.
"""

from __future__ import annotations

import Pyro4
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from Pyro4 import errors, util
from Pyro4.core import SerializedBlob
from Pyro4.message import Message

from pyro import wire
from pyro.wire.messages import (
    PYRO4,
    REPLY_EXCEPTION,
    REPLY_RESULT,
    REPLY_STREAM,
)

from ..support.config import config_changed

SERIALIZERS = ["serpent", "json", "marshal"]
ACCEPTED = PYRO4.serializer_ids(SERIALIZERS)

# Values every default serializer carries unchanged (json has no tuples, marshal no classes).
values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**62, 2**62) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12,
)
names = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12)
annotations = st.dictionaries(st.sampled_from([b"XTRA", b"CORR", b"ABCD"]).map(bytes.decode),
                              st.binary(max_size=16), max_size=2)
hmac_keys = st.none() | st.binary(min_size=1, max_size=16)
cuts = st.lists(st.integers(1, 64), max_size=8)


def transmit(frame: bytes, pieces: list[int], hmac_key: bytes | None,
             allowed: frozenset[int]) -> Message:
    """Send ``frame`` through a fresh reader in pieces of the given sizes: the one message."""
    reader = PYRO4.reader(hmac_key=hmac_key, allowed_types=allowed)
    received: list[Message] = []
    offset = 0
    for size in pieces:
        received.extend(reader.feed(frame[offset:offset + size]))
        offset += size
    received.extend(reader.feed(frame[offset:]))
    assert len(received) == 1 and reader.buffered == 0
    return received[0]


def notes_of(msg: Message) -> dict[str, bytes]:
    """A message's annotations but the HMAC that framing added and checked."""
    return {key: value for key, value in msg.annotations.items() if key != "HMAC"}


def to_server(frame: bytes, pieces: list[int], hmac_key: bytes | None,
              handshake: bool = False) -> Message:
    allowed = PYRO4.server_handshake_types if handshake else PYRO4.server_request_types
    return transmit(frame, pieces, hmac_key, allowed)


def to_client(frame: bytes, pieces: list[int], hmac_key: bytes | None,
              handshake: bool = False) -> Message:
    allowed = PYRO4.client_handshake_types if handshake else PYRO4.client_reply_types
    return transmit(frame, pieces, hmac_key, allowed)


@pytest.fixture(autouse=True)
def default_compression():
    with config_changed(COMPRESSION=False):
        yield


settings_ = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- the handshake ----------------------------------------------------------------------------

@settings_
@given(st.sampled_from(SERIALIZERS), values, st.none() | names, annotations, hmac_keys, cuts,
       st.booleans())
def test_connect_request_round_trip(serializer_name, handshake, object_id, notes, key, pieces,
                                    compress):
    serializer = util.get_serializer(serializer_name)
    with config_changed(COMPRESSION=compress):
        frame = PYRO4.connect(serializer, handshake, object_id, notes, key)
    msg = to_server(frame, pieces, key, handshake=True)
    assert PYRO4.is_connect(msg) and notes_of(msg) == notes
    request = PYRO4.read_connect(msg, PYRO4.accepted_serializer(msg, ACCEPTED))
    assert request.handshake == handshake
    assert request.object_id == object_id
    assert request.wants_metadata == (object_id is not None)


@settings_
@given(st.sampled_from(SERIALIZERS), values, st.none() | st.dictionaries(names, values,
                                                                         max_size=3),
       annotations, hmac_keys, cuts, st.integers(0, 0xFFFF))
def test_connect_ok_round_trip(serializer_name, response, metadata, notes, key, pieces, seq):
    serializer = util.get_serializer(serializer_name)
    request = Message(wire.MSG_CONNECT, b"", serializer.serializer_id, 0, seq)
    frame = PYRO4.connect_ok(request, serializer, response, metadata, notes, key)
    msg = to_client(frame, pieces, key, handshake=True)
    assert msg.seq == seq and notes_of(msg) == notes
    reply = PYRO4.read_connect_reply(msg)
    assert reply.accepted and reply.response == response and reply.metadata == metadata


@settings_
@given(st.sampled_from(SERIALIZERS + ["pickle"]), st.text(max_size=40), hmac_keys, cuts)
def test_connect_fail_round_trip(serializer_name, reason, key, pieces):
    serializer = util.get_serializer(serializer_name)
    request = Message(wire.MSG_CONNECT, b"", serializer.serializer_id, 0, 7)
    frame = PYRO4.connect_fail(request, reason, ACCEPTED, {}, key)
    msg = to_client(frame, pieces, key, handshake=True)
    expected_id = serializer.serializer_id if serializer_name != "pickle" else 3  # marshal
    assert (msg.seq, msg.serializer_id) == (7, expected_id)  # never answers in pickle
    reply = PYRO4.read_connect_reply(msg)
    assert not reply.accepted and reply.response == reason


def test_connect_fail_before_any_header():
    """A stream too broken to name a request is refused in marshal, seq 0."""
    msg = to_client(PYRO4.connect_fail(None, "bad", ACCEPTED, {}, None), [], None, True)
    assert (msg.seq, msg.serializer_id) == (0, util.MarshalSerializer.serializer_id)


def test_connect_is_byte_for_byte_pyro4s():
    serializer = util.get_serializer("serpent")
    ours = PYRO4.connect(serializer, "hello", "thing", {"CORR": b"x" * 16}, b"key")
    data, _ = serializer.serializeData({"handshake": "hello", "object": "thing"})
    theirs = Message(wire.MSG_CONNECT, data, serializer.serializer_id,
                     wire.FLAGS_META_ON_CONNECT, 0, {"CORR": b"x" * 16}, b"key").to_bytes()
    assert ours == theirs


# -- calls ----------------------------------------------------------------------------------

@settings_
@given(st.sampled_from(SERIALIZERS), names, names, st.lists(values, max_size=3),
       st.dictionaries(names, values, max_size=2), st.booleans(), annotations, hmac_keys,
       cuts, st.booleans())
def test_call_round_trip(serializer_name, object_id, method, vargs, kwargs, oneway, notes,
                         key, pieces, compress):
    serializer = util.get_serializer(serializer_name)
    with config_changed(COMPRESSION=compress):
        request = PYRO4.request(serializer, object_id, method, vargs, kwargs)
    frame = PYRO4.invoke(request, 41, key, oneway, notes)
    msg = to_server(frame, pieces, key)
    assert (msg.seq, notes_of(msg), PYRO4.is_oneway(msg)) == (41, notes, oneway)
    call = PYRO4.read_invoke(msg, PYRO4.accepted_serializer(msg, ACCEPTED))
    assert (call.object_id, call.method, call.oneway, call.batch) == (
        object_id, method, oneway, False)
    assert list(call.vargs) == vargs and call.kwargs == kwargs


@settings_
@given(st.sampled_from(SERIALIZERS), st.lists(st.tuples(names, st.lists(values, max_size=2),
                                                        st.dictionaries(names, values,
                                                                        max_size=1)),
                                              min_size=1, max_size=4), st.booleans(), cuts)
def test_batch_round_trip(serializer_name, calls, oneway, pieces):
    serializer = util.get_serializer(serializer_name)
    request = PYRO4.request(serializer, "obj", "<batch>", calls, {}, batch=True)
    msg = to_server(PYRO4.invoke(request, 1, None, oneway), pieces, None)
    call = PYRO4.read_invoke(msg, serializer)
    assert call.batch and call.oneway == oneway
    assert [list(c) for c in call.vargs] == [list(c) for c in calls]


def test_invoke_is_byte_for_byte_pyro4s():
    serializer = util.get_serializer("serpent")
    request = PYRO4.request(serializer, "thing", "add", (1, 2), {"x": 3})
    ours = PYRO4.invoke(request, 9, b"k", True, {"CORR": b"c" * 16})
    data, _ = serializer.serializeCall("thing", "add", (1, 2), {"x": 3})
    theirs = Message(wire.MSG_INVOKE, data, serializer.serializer_id, wire.FLAGS_ONEWAY, 9,
                     {"CORR": b"c" * 16}, b"k").to_bytes()
    assert ours == theirs


@pytest.mark.parametrize("serializer_name", SERIALIZERS)
def test_blob_round_trip(serializer_name):
    """A SerializedBlob travels still serialized (KEEPSERIALIZED, BLBI); the servant gets it
    as the only argument and can deserialize it; forwarding a received blob keeps its bytes
    and its serializer."""
    serializer = util.get_serializer(serializer_name)
    blob = SerializedBlob("info", ["payload", 1, 2])  # Pyro4 sends it as the call's vargs
    request = PYRO4.request(serializer, "disp", "process", (blob,), {})
    msg = to_server(PYRO4.invoke(request, 3, None, False, {"CORR": b"c" * 16}), [5, 30], None)
    call = PYRO4.read_invoke(msg, serializer)
    assert (call.object_id, call.method, call.kwargs) == ("disp", "process", {})
    (received,) = call.vargs

    def payload(blob):  # (Pyro4's own deserialized() unpacks json/marshal call dicts wrongly)
        message = blob._data
        return list(serializer.deserializeCall(message.data,
                                               message.flags & wire.FLAGS_COMPRESSED)[2])

    assert received.info == "info" and payload(received) == ["payload", 1, 2]
    assert msg.annotations["CORR"] == b"c" * 16
    other = util.get_serializer("json" if serializer_name != "json" else "serpent")
    forwarded = PYRO4.request(other, "next", "process", (received,), {})
    assert forwarded.data == msg.data and forwarded.serializer is serializer
    again = PYRO4.read_invoke(to_server(PYRO4.invoke(forwarded, 4, None), [], None), other)
    assert payload(again.vargs[0]) == ["payload", 1, 2]
    with pytest.raises(errors.SerializeError, match="must be the only argument"):
        PYRO4.request(serializer, "disp", "process", (blob, 2), {})


def test_garbage_call_data_is_a_clear_serialize_error():
    serializer = util.get_serializer("serpent")
    msg = Message(wire.MSG_INVOKE, b"\xff\xfe not serpent", serializer.serializer_id, 0, 1)
    with pytest.raises(errors.SerializeError, match="invalid call data"):
        PYRO4.read_invoke(msg, serializer)


def test_unaccepted_serializer_is_refused_with_pyro4s_message():
    msg = Message(wire.MSG_INVOKE, b"", util.get_serializer("pickle").serializer_id, 0, 1)
    with pytest.raises(errors.SerializeError,
                       match="message used serializer that is not accepted: 4"):
        PYRO4.accepted_serializer(msg, ACCEPTED)


# -- answers --------------------------------------------------------------------------------

@settings_
@given(st.sampled_from(SERIALIZERS), values, st.booleans(), annotations, hmac_keys, cuts,
       st.booleans())
def test_result_round_trip(serializer_name, value, batch, notes, key, pieces, compress):
    serializer = util.get_serializer(serializer_name)
    request = Message(wire.MSG_INVOKE, b"", serializer.serializer_id, 0, 12)
    with config_changed(COMPRESSION=compress):
        frame = PYRO4.result(request, serializer, value, batch, notes, key)
    msg = to_client(frame, pieces, key)
    assert msg.seq == 12 and notes_of(msg) == notes
    assert PYRO4.read_reply(msg, serializer) == (REPLY_RESULT, value)


@settings_
@given(st.sampled_from(SERIALIZERS), st.text(max_size=30),
       st.sampled_from([ValueError, KeyError, errors.NamingError, ZeroDivisionError]),
       st.lists(st.text(max_size=20), max_size=3), hmac_keys, cuts)
def test_exception_round_trip(serializer_name, text, exc_type, tblines, key, pieces):
    serializer = util.get_serializer(serializer_name)
    request = Message(wire.MSG_INVOKE, b"", serializer.serializer_id, 0, 5)
    frame = PYRO4.exception(request, exc_type(text), tblines, {"CORR": b"k" * 16}, key)
    msg = to_client(frame, pieces, key)
    kind, exc = PYRO4.read_reply(msg, serializer)
    assert kind == REPLY_EXCEPTION and type(exc) is exc_type
    assert exc.args == (text,) and exc._pyroTraceback == tblines
    assert msg.annotations["CORR"] == b"k" * 16


def test_unserializable_exception_travels_as_a_pyro_error():
    class Odd(Exception):
        def __init__(self):
            super().__init__(object())  # marshal cannot write an object

    serializer = util.get_serializer("marshal")
    request = Message(wire.MSG_INVOKE, b"", serializer.serializer_id, 0, 5)
    kind, exc = PYRO4.read_reply(to_client(PYRO4.exception(request, Odd(), ["tb"], {}, None),
                                           [], None), serializer)
    assert kind == REPLY_EXCEPTION and type(exc) is errors.PyroError
    assert "Error serializing exception" in str(exc) and exc._pyroTraceback == ["tb"]


@pytest.mark.parametrize("serializer_name", SERIALIZERS)
def test_stream_opened_round_trip(serializer_name):
    serializer = util.get_serializer(serializer_name)
    request = Message(wire.MSG_INVOKE, b"", serializer.serializer_id, 0, 8)
    msg = to_client(PYRO4.stream_opened(request, "stream-1", {"XTRA": b"1"}, None), [3], None)
    assert PYRO4.read_reply(msg, serializer) == (REPLY_STREAM, "stream-1")
    assert msg.annotations == {"STRM": b"stream-1", "XTRA": b"1"}
    refused = to_client(PYRO4.stream_opened(request, None, {}, None), [], None)
    kind, exc = PYRO4.read_reply(refused, serializer)
    assert kind == REPLY_EXCEPTION and "not configured to allow streaming" in str(exc)


def test_reply_in_another_serializer_is_an_error_for_that_call():
    serpent, json = util.get_serializer("serpent"), util.get_serializer("json")
    request = Message(wire.MSG_INVOKE, b"", json.serializer_id, 0, 1)
    msg = to_client(PYRO4.result(request, json, 1, False, {}, None), [], None)
    kind, exc = PYRO4.read_reply(msg, serpent)
    assert kind == REPLY_EXCEPTION and "invalid serializer in response: 2" in str(exc)


def test_pong_echoes_the_request():
    request = Message(wire.MSG_PING, b"", 1, 0, 77)
    msg = transmit(PYRO4.pong(request, {}, None), [], None, frozenset({wire.MSG_PING}))
    assert (msg.type, msg.seq, msg.data) == (wire.MSG_PING, 77, b"pong")


def test_may_hold_proxies():
    serializer = util.get_serializer("serpent")
    request = Message(wire.MSG_INVOKE, b"", serializer.serializer_id, 0, 1)
    plain = to_client(PYRO4.result(request, serializer, [1, "x"], False, {}, None), [], None)
    assert not PYRO4.may_hold_proxies(plain)
    proxy = Pyro4.Proxy("PYRO:thing@127.0.0.1:1")
    holding = to_client(PYRO4.result(request, serializer, [proxy], False, {}, None), [], None)
    assert PYRO4.may_hold_proxies(holding)
    proxy._pyroRelease()


def test_the_wire_layer_imports_nothing_from_twisted():
    import subprocess
    import sys

    code = ("import sys, pyro.wire, pyro.wire.messages, pyro.wire.fastserpent;"
            "print(sorted(name for name in sys.modules if name.split('.')[0] == 'twisted'))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "[]"
