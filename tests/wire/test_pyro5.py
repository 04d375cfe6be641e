"""pyro.wire.pyro5 / framing5: Pyro5's messages, checked against Pyro5's own protocol code.

Every kind of message the codec builds is compared byte for byte with what
``Pyro5.protocol.SendingMessage`` builds for the same content (compression on and off, with
and without a correlation id); Pyro5's own frames are read by our reader and decoded by the
codec, ours are read by Pyro5's ``recv_stub``; every exchange runs through the reader in
random pieces in both directions (Hypothesis); malformed input gets Pyro5's error classes
with one clear line.
"""

from __future__ import annotations

import marshal
import subprocess
import sys
import uuid
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from Pyro5 import errors, protocol, serializers
from Pyro5.api import SerializedBlob
from Pyro5.callcontext import current_context
from Pyro5.core import URI, _ExceptionWrapper

from pyro import wire
from pyro.wire import framing5
from pyro.wire.events import REPLY_EXCEPTION, REPLY_RESULT, REPLY_STREAM
from pyro.wire.pyro5 import PYRO5

from ..support.pyro5_peers import pyro5_config_changed

SERIALIZERS = ["serpent", "marshal", "json"] + (
    ["msgpack"] if "msgpack" in serializers.serializers else [])  # (msgpack: the test extra)
ACCEPTED = PYRO5.serializer_ids(SERIALIZERS)
CORR = uuid.UUID("12345678-1234-5678-1234-567812345678")

values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**62, 2**62) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12,
)
names = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12)
annotations = st.dictionaries(st.sampled_from(["XTRA", "ABCD", "BLAH"]),
                              st.binary(max_size=16), max_size=2)
corr_ids = st.none() | st.uuids()
cuts = st.lists(st.integers(1, 64), max_size=8)
settings_ = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def clean_pyro5_state():
    """Pyro5's config and this thread's Pyro5 call context, as they were, after each test."""
    with pyro5_config_changed(COMPRESSION=False, MAX_MESSAGE_SIZE=1024**3):
        saved = current_context.correlation_id
        current_context.correlation_id = None
        try:
            yield
        finally:
            current_context.correlation_id = saved


def ser(name):
    return serializers.serializers[name]


def with_corr(notes, corr):
    """Our way to give a correlation id: a 16-byte CORR annotation (both codecs take it)."""
    return {**notes, "CORR": corr.bytes} if corr else dict(notes)


def sending(msgtype, flags, seq, serializer_id, payload, notes, corr):
    """What Pyro5 itself sends, with ``corr`` as the thread's correlation id."""
    current_context.correlation_id = corr
    try:
        return protocol.SendingMessage(msgtype, flags, seq, serializer_id, payload,
                                       annotations=dict(notes)).data
    finally:
        current_context.correlation_id = None


def transmit(frame, pieces, allowed):
    """``frame`` through a fresh Pyro5 reader in pieces of the given sizes: the one message."""
    if isinstance(frame, tuple):
        frame = b"".join(frame)
    reader = PYRO5.reader(allowed_types=allowed)
    received = []
    offset = 0
    for size in pieces:
        received.extend(reader.feed(frame[offset:offset + size]))
        offset += size
    received.extend(reader.feed(frame[offset:]))
    assert len(received) == 1 and reader.buffered == 0
    return received[0]


def to_server(frame, pieces=(), handshake=False):
    allowed = PYRO5.server_handshake_types if handshake else PYRO5.server_request_types
    return transmit(frame, pieces, allowed)


def to_client(frame, pieces=(), handshake=False):
    allowed = PYRO5.client_handshake_types if handshake else PYRO5.client_reply_types
    return transmit(frame, pieces, allowed)


def request_header(msgtype=protocol.MSG_INVOKE, serializer="serpent", seq=1, flags=0):
    """A received request as the server's codec methods get it (only its header matters)."""
    frame = framing5.encode(msgtype, b"", ser(serializer).serializer_id, flags, seq)
    return framing5.parse_header(frame)


class FakeConnection:
    """What ``Pyro5.protocol.recv_stub`` reads from: ``recv(n)`` exactly n bytes."""

    def __init__(self, data):
        self.data = data

    def recv(self, size):
        chunk, self.data = self.data[:size], self.data[size:]
        if len(chunk) < size:
            raise errors.ConnectionClosedError("receiving: not enough data")
        return chunk


def pyro5_reads(frame):
    if isinstance(frame, tuple):
        frame = b"".join(frame)
    return protocol.recv_stub(FakeConnection(frame))


# -- framing ----------------------------------------------------------------------------------

frame_fields = st.builds(
    dict,
    msg_type=st.sampled_from(sorted(wire.MESSAGE_TYPES)),
    data=st.binary(max_size=300),
    serializer_id=st.integers(0, 255),
    flags=st.integers(0, 0xFFFF),
    seq=st.integers(0, 0xFFFF),
    annotations=annotations,
    corr_id=st.none() | st.binary(min_size=16, max_size=16),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(frame_fields, min_size=1, max_size=5), st.data())
def test_any_split_of_a_pyro5_stream_gives_the_same_messages(batch, data):
    stream = b"".join(framing5.encode(**fields) for fields in batch)
    points = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    reader = wire.MessageReader(frames=framing5.PYRO5_FRAMES)
    parsed = [msg for chunk in chunks for msg in reader.feed(chunk)]
    assert len(parsed) == len(batch)
    for msg, fields in zip(parsed, batch, strict=True):
        assert isinstance(msg, protocol.ReceivingMessage)
        corr = fields["corr_id"]
        assert (msg.type, msg.data, msg.serializer_id, msg.seq, msg.annotations) == (
            fields["msg_type"], fields["data"], fields["serializer_id"], fields["seq"],
            fields["annotations"])
        assert msg.flags == fields["flags"] | (framing5.FLAGS_CORR_ID if corr else 0)
        assert msg.corr_id == (corr or b"\0" * 16)
    assert reader.state is wire.ReadState.HEADER and reader.buffered == 0


@settings(max_examples=100, deadline=None)
@given(frame_fields)
def test_frames_are_byte_for_byte_sending_messages_and_pyro5_reads_them(fields):
    fields["flags"] &= ~framing5.FLAGS_COMPRESSED  # SendingMessage decides that itself
    corr = uuid.UUID(bytes=fields["corr_id"]) if fields["corr_id"] else None
    ours = framing5.encode(**fields)
    theirs = sending(fields["msg_type"], fields["flags"], fields["seq"],
                     fields["serializer_id"], fields["data"], fields["annotations"], corr)
    assert ours == theirs
    msg = pyro5_reads(ours)
    assert (msg.type, bytes(msg.data), msg.seq) == (fields["msg_type"], fields["data"],
                                                     fields["seq"])
    assert {key: bytes(value) for key, value in msg.annotations.items()} == fields["annotations"]


def test_encode_parts_is_encode_in_two_parts():
    head, data = framing5.encode_parts(protocol.MSG_RESULT, b"x" * 70000, 1, 0, 3, {"ABCD": b"1"})
    assert head + data == framing5.encode(protocol.MSG_RESULT, b"x" * 70000, 1, 0, 3,
                                          {"ABCD": b"1"})
    assert len(head) == 40 + 8 + 1
    assert isinstance(framing5.encode_frame(protocol.MSG_RESULT, b"x" * 70000, 1), tuple)
    assert isinstance(framing5.encode_frame(protocol.MSG_RESULT, b"x" * 10, 1), bytes)


def test_a_large_pyro5_payload_is_received_in_place():
    frame = framing5.encode(protocol.MSG_RESULT, bytes(range(256)) * 2048, 1, 0, 5)
    reader = PYRO5.reader(allowed_types=PYRO5.client_reply_types, large_section=1024)
    assert list(reader.feed(frame[:100])) == [] and reader.section is not None
    (msg,) = reader.feed(frame[100:])
    assert msg.data == bytes(range(256)) * 2048 and type(msg.data) is bytes


# -- malformed input --------------------------------------------------------------------------

def _fail(data, **options):
    reader = PYRO5.reader(**options)
    with pytest.raises(wire.WireError) as caught:
        list(reader.feed(data))
    assert reader.state is wire.ReadState.BROKEN
    assert list(reader.feed(framing5.encode(protocol.MSG_PING, b"", 1))) == []  # stays broken
    return caught.value


def test_bad_magic():
    frame = bytearray(framing5.encode(protocol.MSG_PING, b"x", 1))
    frame[38:40] = b"\x00\x00"
    error = _fail(bytes(frame))
    assert type(error.cause) is errors.ProtocolError
    assert str(error.cause) == "invalid magic number"


def test_bad_version():
    frame = bytearray(framing5.encode(protocol.MSG_PING, b"x", 1))
    frame[4:6] = (48).to_bytes(2, "big")
    error = _fail(bytes(frame))
    assert str(error.cause) == "invalid protocol version: 48"


def test_not_pyro_at_all():
    assert str(_fail(b"GET / HTTP/1.1\r\n" * 3).cause) == "invalid data"


def test_oversize_is_refused_on_the_header_with_pyro5s_error():
    header = framing5.encode(protocol.MSG_INVOKE, b"x" * 1000, 1, 0, 9)[:40]
    error = _fail(header, max_message_size=500)
    assert isinstance(error.cause, errors.ProtocolError)
    assert type(error.cause) is errors.MessageTooLargeError
    assert str(error.cause) == "message too large (1000, max=500)"
    assert error.message.seq == 9  # the request can still be answered


def test_the_default_limit_is_pyro5s_config():
    header = framing5.encode(protocol.MSG_INVOKE, b"x" * 1000, 1, 0, 9)[:40]
    with pyro5_config_changed(MAX_MESSAGE_SIZE=999):
        assert "max=999" in str(_fail(header).cause)


def test_encoding_oversize_is_refused():
    with pyro5_config_changed(MAX_MESSAGE_SIZE=100), pytest.raises(
            errors.ProtocolError, match=r"message too large \(101, max=100\)"):
        framing5.encode(protocol.MSG_RESULT, b"x" * 101, 1)


def test_truncated_annotations():
    frame = bytearray(framing5.encode(protocol.MSG_INVOKE, b"data", 1, 0, 2, {"ABCD": b"12"}))
    frame[44:48] = (200).to_bytes(4, "big")  # the chunk claims more than the section holds
    error = _fail(bytes(frame))
    assert type(error.cause) is errors.ProtocolError
    assert str(error.cause) == "annotation chunk longer than the annotations"
    assert error.message.seq == 2


def test_a_truncated_stream_is_just_incomplete():
    frame = framing5.encode(protocol.MSG_INVOKE, b"data" * 10, 1, 0, 2, {"ABCD": b"12"})
    reader = PYRO5.reader()
    assert list(reader.feed(frame[:-1])) == []
    assert reader.state is wire.ReadState.DATA and reader.buffered == 40 - 1  # of the data
    (msg,) = reader.feed(frame[-1:])
    assert msg.data == b"data" * 10


def test_an_unexpected_message_type_is_refused():
    error = _fail(framing5.encode(protocol.MSG_RESULT, b"x", 1, 0, 4),
                  allowed_types=PYRO5.server_request_types)
    assert str(error.cause) == "invalid msg type 5 received" and error.message.seq == 4


def test_unknown_serializer():
    msg = request_header(serializer="serpent")
    msg.serializer_id = 6
    with pytest.raises(errors.SerializeError,
                       match="message used serializer that is not accepted: 6"):
        PYRO5.accepted_serializer(msg, ACCEPTED)
    reply = framing5.encode(protocol.MSG_CONNECTOK, b"x", 9)
    with pytest.raises(errors.SerializeError, match="unknown serializer id: 9"):
        PYRO5.read_connect_reply(to_client(reply, handshake=True))
    with pytest.raises(errors.SerializeError, match="'pickle' is unknown"):
        PYRO5.get_serializer("pickle")
    assert PYRO5.serializer_ids(["serpent", "pickle", "dill"]) == {1}


def test_garbage_call_data_is_a_clear_serialize_error():
    msg = to_server(framing5.encode(protocol.MSG_INVOKE, b"\xff\xfe not serpent", 1, 0, 1))
    with pytest.raises(errors.SerializeError, match="invalid call data"):
        PYRO5.read_invoke(msg, ser("serpent"))


# -- generations ------------------------------------------------------------------------------

def test_generation_of_the_first_bytes():
    pyro4 = wire.encode(wire.MSG_CONNECT, b"x", 1)
    pyro5 = framing5.encode(protocol.MSG_CONNECT, b"x", 1)
    assert wire.generation_of(pyro4) is wire.Generation.PYRO4
    assert wire.generation_of(pyro5[:6]) is wire.Generation.PYRO5
    for size in range(6):
        assert wire.generation_of(pyro5[:size]) is None
    assert wire.Generation.PYRO5.codec is PYRO5
    assert wire.Generation.PYRO4.codec.name == "Pyro4"


@pytest.mark.parametrize(("data", "text", "version"), [
    (b"PYRO\x00\x2f", "invalid protocol version: 47", 47),
    (b"PYRO\x01\xf7xx", "invalid protocol version: 503", 503),
    (b"GET /", "invalid data: not a Pyro message", None),
    (b"PX", "invalid data: not a Pyro message", None),
])
def test_generation_of_refuses_what_is_not_pyro(data, text, version):
    with pytest.raises(wire.UnknownGeneration) as caught:
        wire.generation_of(data)
    assert str(caught.value.cause) == text and caught.value.version == version
    assert isinstance(caught.value, wire.WireError)


# -- the handshake ----------------------------------------------------------------------------

@settings_
@given(st.sampled_from(SERIALIZERS), values, names, annotations, corr_ids, cuts, st.booleans())
def test_connect_is_pyro5s_and_round_trips(serializer_name, handshake, object_id, notes, corr,
                                           pieces, compress):
    serializer = ser(serializer_name)
    with pyro5_config_changed(COMPRESSION=compress):
        frame = PYRO5.connect(serializer, handshake, object_id, with_corr(notes, corr))
        theirs = sending(protocol.MSG_CONNECT, 0, 0, serializer.serializer_id,
                         serializer.dumps({"handshake": handshake, "object": object_id}),
                         notes, corr)
    assert frame == theirs
    msg = to_server(frame, pieces, handshake=True)
    assert PYRO5.is_connect(msg) and msg.annotations == notes
    assert PYRO5.correlation_id(msg) == (corr.bytes if corr else None)
    request = PYRO5.read_connect(msg, PYRO5.accepted_serializer(msg, ACCEPTED))
    assert (request.handshake, request.object_id, request.wants_metadata) == (
        handshake, object_id, True)


@settings_
@given(st.sampled_from(SERIALIZERS), values, st.dictionaries(names, values, max_size=3),
       annotations, corr_ids, cuts, st.integers(0, 0xFFFF), st.booleans())
def test_connect_ok_is_pyro5s_and_round_trips(serializer_name, response, metadata, notes, corr,
                                              pieces, seq, compress):
    serializer = ser(serializer_name)
    request = request_header(protocol.MSG_CONNECT, serializer_name, seq)
    with pyro5_config_changed(COMPRESSION=compress):
        frame = PYRO5.connect_ok(request, serializer, response, metadata,
                                 with_corr(notes, corr))
        theirs = sending(protocol.MSG_CONNECTOK, 0, seq, serializer.serializer_id,
                         serializer.dumps({"handshake": response, "meta": metadata}), notes,
                         corr)
    assert b"".join(frame) if isinstance(frame, tuple) else frame == theirs
    msg = to_client(frame, pieces, handshake=True)
    assert msg.seq == seq and msg.annotations == notes
    reply = PYRO5.read_connect_reply(msg)
    assert reply.accepted and reply.response == response and reply.metadata == metadata


@pytest.mark.parametrize("serializer_name", [*SERIALIZERS, "unknown"])
def test_connect_fail_is_pyro5s(serializer_name):
    serializer = ser("marshal" if serializer_name == "unknown" else serializer_name)
    request = request_header(protocol.MSG_CONNECT, "serpent", 7)
    request.serializer_id = 99 if serializer_name == "unknown" else serializer.serializer_id
    frame = PYRO5.connect_fail(request, "not you", ACCEPTED, {"CORR": CORR.bytes})
    assert frame == sending(protocol.MSG_CONNECTFAIL, 0, 7, serializer.serializer_id,
                            serializer.dumps("not you"), {}, CORR)
    reply = PYRO5.read_connect_reply(to_client(frame, handshake=True))
    assert not reply.accepted and reply.response == "not you"
    # (Pyro5's proxy reads it too: the message its daemon sends to a Pyro4 client)
    msg = pyro5_reads(frame)
    assert (msg.type, serializers.serializers_by_id[msg.serializer_id].loads(msg.data)) == (
        protocol.MSG_CONNECTFAIL, "not you")


def test_connect_fail_before_any_header_is_marshal_seq_0():
    msg = to_client(PYRO5.connect_fail(None, "bad", ACCEPTED, {}), handshake=True)
    assert (msg.seq, msg.serializer_id) == (0, 2)


# -- calls ------------------------------------------------------------------------------------

@settings_
@given(st.sampled_from(SERIALIZERS), names, names, st.lists(values, max_size=3),
       st.dictionaries(names, values, max_size=2), st.booleans(), annotations, corr_ids, cuts,
       st.booleans())
def test_invoke_is_pyro5s_and_round_trips(serializer_name, object_id, method, vargs, kwargs,
                                          oneway, notes, corr, pieces, compress):
    serializer = ser(serializer_name)
    with pyro5_config_changed(COMPRESSION=compress):
        request = PYRO5.request(serializer, object_id, method, vargs, kwargs)
        frame = PYRO5.invoke(request, 41, None, oneway, with_corr(notes, corr))
        theirs = sending(protocol.MSG_INVOKE, protocol.FLAGS_ONEWAY if oneway else 0, 41,
                         serializer.serializer_id,
                         serializer.dumpsCall(object_id, method, vargs, kwargs), notes, corr)
    assert frame == theirs
    msg = to_server(frame, pieces)
    assert (msg.seq, msg.annotations, PYRO5.is_oneway(msg)) == (41, notes, oneway)
    assert PYRO5.correlation_id(msg) == (corr.bytes if corr else None)
    call = PYRO5.read_invoke(msg, PYRO5.accepted_serializer(msg, ACCEPTED))
    assert (call.object_id, call.method, call.oneway, call.batch) == (
        object_id, method, oneway, False)
    assert list(call.vargs) == vargs and call.kwargs == kwargs


@settings_
@given(st.sampled_from(SERIALIZERS),
       st.lists(st.tuples(names, st.lists(values, max_size=2),
                          st.dictionaries(names, values, max_size=1)), min_size=1, max_size=4),
       st.booleans(), cuts)
def test_batch_is_pyro5s_and_round_trips(serializer_name, calls, oneway, pieces):
    serializer = ser(serializer_name)
    request = PYRO5.request(serializer, "obj", "<batch>", calls, None, batch=True)
    frame = PYRO5.invoke(request, 1, None, oneway)
    flags = protocol.FLAGS_BATCH | (protocol.FLAGS_ONEWAY if oneway else 0)
    # (Pyro5's proxy sends kwargs None, which its marshal serializer cannot write: {} here)
    assert frame == sending(protocol.MSG_INVOKE, flags, 1, serializer.serializer_id,
                            serializer.dumpsCall("obj", "<batch>", calls, {}), {}, None)
    call = PYRO5.read_invoke(to_server(frame, pieces), serializer)
    assert call.batch and call.oneway == oneway
    assert [list(c) for c in call.vargs] == [list(c) for c in calls]


@pytest.mark.parametrize("serializer_name", SERIALIZERS)
@pytest.mark.parametrize("compress", [False, True])
def test_blob_is_pyro5s_and_round_trips(serializer_name, compress):
    """A SerializedBlob goes as Pyro5's proxy sends it (KEEPSERIALIZED, BLBI); the servant
    gets Pyro5's SerializedBlob, whose own deserialized() works; forwarding a received blob
    keeps its bytes and its serializer."""
    serializer = ser(serializer_name)
    blob = SerializedBlob("info", ["payload " * 30, 1, 2])
    with pyro5_config_changed(COMPRESSION=compress):
        request = PYRO5.request(serializer, "disp", "process", (blob,), {})
        frame = PYRO5.invoke(request, 3, None, False, {"CORR": CORR.bytes})
        msg = to_server(frame, [5, 30])
        # (marshal's bytes for a tuple depend on reference counts: compare what BLBI says,
        # then the frames with the same BLBI bytes)
        assert marshal.loads(msg.annotations["BLBI"]) == ("info", "disp", "process")
        theirs = sending(protocol.MSG_INVOKE, protocol.FLAGS_KEEPSERIALIZED, 3,
                         serializer.serializer_id,
                         serializer.dumpsCall("disp", "process", blob._data, {}),
                         {"BLBI": msg.annotations["BLBI"]}, CORR)
    assert frame == theirs
    call = PYRO5.read_invoke(msg, serializer)
    assert (call.object_id, call.method, call.kwargs) == ("disp", "process", {})
    (received,) = call.vargs
    assert isinstance(received, SerializedBlob) and received.info == "info"

    def payload(blob):  # (Pyro5's own deserialized() unpacks json/marshal call data wrongly)
        return list(serializers.serializers_by_id[blob._data.serializer_id].loadsCall(
            blob._data.data)[2])

    assert payload(received) == ["payload " * 30, 1, 2]
    if serializer_name == "serpent":
        assert list(received.deserialized()) == ["payload " * 30, 1, 2]
    other = ser("json" if serializer_name != "json" else "serpent")
    forwarded = PYRO5.request(other, "next", "process", (received,), {})
    assert forwarded.serializer is serializer
    again = PYRO5.read_invoke(to_server(PYRO5.invoke(forwarded, 4)), other)
    assert payload(again.vargs[0]) == ["payload " * 30, 1, 2]
    with pytest.raises(errors.SerializeError, match="must be the only argument"):
        PYRO5.request(serializer, "disp", "process", (blob, 2), {})


# -- answers ----------------------------------------------------------------------------------

@settings_
@given(st.sampled_from(SERIALIZERS), values, st.booleans(), annotations, corr_ids, cuts,
       st.booleans())
def test_result_is_pyro5s_and_round_trips(serializer_name, value, batch, notes, corr, pieces,
                                          compress):
    serializer = ser(serializer_name)
    request = request_header(serializer=serializer_name, seq=12)
    with pyro5_config_changed(COMPRESSION=compress):
        frame = PYRO5.result(request, serializer, value, batch, with_corr(notes, corr))
        theirs = sending(protocol.MSG_RESULT, protocol.FLAGS_BATCH if batch else 0, 12,
                         serializer.serializer_id, serializer.dumps(value), notes, corr)
    assert frame == theirs
    msg = to_client(frame, pieces)
    assert msg.seq == 12 and msg.annotations == notes
    assert PYRO5.read_reply(msg, serializer) == (REPLY_RESULT, value)


@settings_
@given(st.sampled_from(SERIALIZERS), st.text(max_size=30),
       st.sampled_from([ValueError, KeyError, errors.NamingError, ZeroDivisionError,
                        errors.SecurityError]),
       st.lists(st.text(max_size=20), max_size=3), cuts)
def test_exception_is_pyro5s_and_round_trips(serializer_name, text, exc_type, tblines, pieces):
    serializer = ser(serializer_name)
    request = request_header(serializer=serializer_name, seq=5)
    frame = PYRO5.exception(request, exc_type(text), tblines, {"CORR": CORR.bytes})
    theirs_exc = exc_type(text)
    theirs_exc._pyroTraceback = tblines
    assert frame == sending(protocol.MSG_RESULT, protocol.FLAGS_EXCEPTION, 5,
                            serializer.serializer_id, serializer.dumps(theirs_exc), {}, CORR)
    msg = to_client(frame, pieces)
    kind, exc = PYRO5.read_reply(msg, serializer)
    assert kind == REPLY_EXCEPTION and type(exc) is exc_type
    assert exc.args == (text,) and exc._pyroTraceback == tblines
    assert PYRO5.correlation_id(msg) == CORR.bytes


def test_remote_tracebacks_work_with_pyro5s_own_helper():
    serializer = ser("serpent")
    frame = PYRO5.exception(request_header(), ValueError("boom"),
                            ["Traceback (most recent call last):\n", "  remote line\n",
                             "ValueError: boom\n"], {})
    _, exc = PYRO5.read_reply(to_client(frame), serializer)
    text = "".join(errors.get_pyro_traceback(type(exc), exc, None))
    assert "Remote traceback" in text and "remote line" in text


def test_unserializable_exception_travels_as_a_pyro_error():
    class Odd(Exception):
        def __init__(self):
            super().__init__(object())  # marshal cannot write an object

    frame = PYRO5.exception(request_header(serializer="marshal"), Odd(), ["tb"], {})
    kind, exc = PYRO5.read_reply(to_client(frame), ser("marshal"))
    assert kind == REPLY_EXCEPTION and type(exc) is errors.PyroError
    assert "Error serializing exception" in str(exc) and exc._pyroTraceback == ["tb"]


@pytest.mark.parametrize("serializer_name", SERIALIZERS)
def test_stream_opened_is_pyro5s(serializer_name):
    serializer = ser(serializer_name)
    request = request_header(serializer=serializer_name, seq=8)
    frame = PYRO5.stream_opened(request, "stream-1", {"XTRA": b"1", "CORR": CORR.bytes})
    notice = errors.ProtocolError("result of call is an iterator")
    notice._pyroTraceback = None
    assert frame == sending(protocol.MSG_RESULT,
                            protocol.FLAGS_EXCEPTION | protocol.FLAGS_ITEMSTREAMRESULT, 8,
                            serializer.serializer_id, serializer.dumps(notice),
                            {"STRM": b"stream-1", "XTRA": b"1"}, CORR)
    msg = to_client(frame, [3])
    assert PYRO5.read_reply(msg, serializer) == (REPLY_STREAM, "stream-1")
    refused = to_client(PYRO5.stream_opened(request, None, {}))
    kind, exc = PYRO5.read_reply(refused, serializer)
    assert kind == REPLY_EXCEPTION and type(exc) is errors.ProtocolError
    assert "not configured to allow streaming" in str(exc)


def test_pong_is_pyro5s():
    request = request_header(protocol.MSG_PING, seq=77)
    frame = PYRO5.pong(request, {"CORR": CORR.bytes})
    assert frame == sending(protocol.MSG_PING, 0, 77, 1, b"pong", {}, CORR)
    msg = transmit(frame, [], frozenset({protocol.MSG_PING}))
    assert (msg.type, msg.seq, msg.data) == (protocol.MSG_PING, 77, b"pong")


def test_reply_in_another_serializer_is_an_error_for_that_call():
    request = request_header(serializer="json")
    msg = to_client(PYRO5.result(request, ser("json"), 1, False, {}))
    kind, exc = PYRO5.read_reply(msg, ser("serpent"))
    assert kind == REPLY_EXCEPTION and type(exc) is errors.SerializeError
    assert "invalid serializer in response: 3" in str(exc)


def test_may_hold_proxies_and_uris_are_pyro5s():
    from Pyro5.api import Proxy

    serializer = ser("serpent")
    plain = to_client(PYRO5.result(request_header(), serializer, [1, "x"], False, {}))
    assert not PYRO5.may_hold_proxies(plain)
    proxy = Proxy("PYRO:thing@127.0.0.1:1")
    holding = to_client(PYRO5.result(request_header(), serializer,
                                     [proxy, URI("PYRO:x@h:1")], False, {}))
    assert PYRO5.may_hold_proxies(holding)
    kind, (got_proxy, got_uri) = PYRO5.read_reply(holding, serializer)
    assert type(got_proxy) is Proxy and got_proxy._pyroUri == proxy._pyroUri
    assert type(got_uri) is URI
    assert b"Pyro5.core.URI" in holding.data and b"Pyro5.client.Proxy" in holding.data
    proxy._pyroRelease()
    got_proxy._pyroRelease()


def test_batch_results_hold_pyro5s_exception_wrapper():
    serializer = ser("serpent")
    wrapped = _ExceptionWrapper(ValueError("third"))
    msg = to_client(PYRO5.result(request_header(), serializer, [1, 2, wrapped], True, {}))
    kind, results = PYRO5.read_reply(msg, serializer)
    assert kind == REPLY_RESULT and results[:2] == [1, 2]
    assert type(results[2]) is PYRO5.exception_wrapper
    assert type(results[2].exception) is ValueError


# -- Pyro5's own messages, read by ours --------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_pyro5s_own_messages_decode(compress):
    serializer = ser("serpent")
    with pyro5_config_changed(COMPRESSION=compress):
        connect = sending(protocol.MSG_CONNECT, 0, 0, 1,
                          serializer.dumps({"handshake": "hi" * 80, "object": "obj"}),
                          {"ABCD": b"1"}, CORR)
        invoke = sending(protocol.MSG_INVOKE, protocol.FLAGS_ONEWAY, 5, 1,
                         serializer.dumpsCall("obj", "add", (1, "x" * 200), {}), {}, None)
        result = sending(protocol.MSG_RESULT, 0, 5, 1, serializer.dumps(list(range(100))),
                         {}, CORR)
    request = PYRO5.read_connect(to_server(connect, [7, 20], handshake=True), serializer)
    assert (request.handshake, request.object_id) == ("hi" * 80, "obj")
    call = PYRO5.read_invoke(to_server(invoke, [41]), serializer)
    assert (call.method, call.vargs, call.oneway) == ("add", (1, "x" * 200), True)
    reply = to_client(result, [1, 39])
    assert (reply.flags & protocol.FLAGS_COMPRESSED != 0) == compress
    assert PYRO5.read_reply(reply, serializer) == (REPLY_RESULT, list(range(100)))
    assert PYRO5.correlation_id(reply) == CORR.bytes


def test_our_compressed_replies_are_read_by_pyro5():
    serializer = ser("serpent")
    with pyro5_config_changed(COMPRESSION=True):
        frame = PYRO5.result(request_header(seq=3), serializer, "y" * 500, False, {})
    msg = pyro5_reads(frame)
    assert serializer.loads(msg.data) == "y" * 500
    assert zlib.compress(serializer.dumps("y" * 500), 4) in frame


def test_the_pyro5_codec_imports_nothing_from_twisted():
    code = ("import sys, pyro.wire, pyro.wire.pyro5, pyro.wire.framing5;"
            "print(sorted(name for name in sys.modules if name.split('.')[0] == 'twisted'))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "[]"


def test_without_pyro5_the_wire_layer_says_what_to_install():
    code = ("import sys; sys.modules['Pyro5'] = None\n"
            "import pyro.wire, pyro.wire.messages\n"
            "try:\n"
            "    pyro.wire.Generation.PYRO5.codec\n"
            "except pyro.wire.GenerationUnavailable as e:\n"
            "    print(e)\n")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "Pyro5 is not installed: pip install Pyro5 (or twisted-pyro[pyro5])"


def test_what_both_generations_number_alike():
    """The codecs share the methods that read only these (pyro.wire.events.SameInBoth)."""
    import Pyro4.message

    from pyro.wire import events

    for name in ("MSG_CONNECT", "MSG_INVOKE", "MSG_PING", "FLAGS_ONEWAY", "FLAGS_COMPRESSED"):
        assert getattr(events, name) == getattr(Pyro4.message, name) == getattr(protocol, name)
    # ... and the bits that differ (the reason for two codecs)
    assert (Pyro4.message.FLAGS_ITEMSTREAMRESULT, protocol.FLAGS_ITEMSTREAMRESULT) == (32, 16)
    assert (Pyro4.message.FLAGS_KEEPSERIALIZED, protocol.FLAGS_KEEPSERIALIZED) == (64, 32)
    assert Pyro4.message.FLAGS_META_ON_CONNECT == protocol.FLAGS_CORR_ID // 4 == 16
    assert [serializers.serializers[n].serializer_id for n in ("serpent", "marshal", "json")] == [
        1, 2, 3]


def test_a_pyro5_refusing_the_environment_is_one_clear_line():
    import os

    env = dict(os.environ, PYRO_HMAC_KEY="pyro4 only")  # Pyro5's config refuses it
    code = ("import pyro.wire\n"
            "try:\n"
            "    pyro.wire.pyro5_codec()\n"
            "except pyro.wire.GenerationUnavailable as e:\n"
            "    print(e)\n")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env=env).stdout
    assert output.strip() == ("Pyro5 cannot be imported: invalid Pyro environment config "
                              "variable: PYRO_HMAC_KEY")
