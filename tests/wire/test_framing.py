"""The sans-IO wire layer, with plain bytes: no sockets, no reactor."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from Pyro4 import constants, errors
from Pyro4.message import Message

from pyro import wire

annotation_keys = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=4).filter(
    lambda k: k != "HMAC")
messages = st.builds(
    dict,
    msg_type=st.sampled_from(sorted(wire.MESSAGE_TYPES)),
    data=st.binary(max_size=300),
    serializer_id=st.integers(0, 6),
    flags=st.integers(0, 127),
    seq=st.integers(0, 0xFFFF),
    annotations=st.dictionaries(annotation_keys, st.binary(max_size=40), max_size=3),
)


def _reencode(msg: Message, hmac_key: bytes | None = None) -> bytes:
    annotations = {k: v for k, v in msg.annotations.items() if k != "HMAC"}
    return wire.encode(msg.type, msg.data, msg.serializer_id, msg.flags, msg.seq, annotations,
                       hmac_key)


@given(messages, st.one_of(st.none(), st.binary(min_size=1, max_size=16)))
def test_encode_parse_round_trip(fields, hmac_key):
    encoded = wire.encode(hmac_key=hmac_key, **fields)
    (msg,) = list(wire.MessageReader(hmac_key=hmac_key).feed(encoded))
    assert (msg.type, msg.data, msg.serializer_id, msg.flags, msg.seq) == (
        fields["msg_type"], fields["data"], fields["serializer_id"], fields["flags"], fields["seq"])
    assert {k: v for k, v in msg.annotations.items() if k != "HMAC"} == fields["annotations"]
    assert ("HMAC" in msg.annotations) == bool(hmac_key)
    assert _reencode(msg, hmac_key) == encoded


@settings(max_examples=200)
@given(st.lists(messages, min_size=1, max_size=5), st.data())
def test_any_split_of_a_stream_gives_the_same_messages(batch, data):
    stream = b"".join(wire.encode(**fields) for fields in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    reader = wire.MessageReader()
    parsed = [msg for chunk in chunks for msg in reader.feed(chunk)]
    assert [_reencode(m) for m in parsed] == [wire.encode(**fields) for fields in batch]
    assert reader.state is wire.ReadState.HEADER and reader.buffered == 0


def test_encoding_is_byte_for_byte_pyro4s():
    ours = wire.encode(wire.MSG_INVOKE, b"payload", 1, wire.FLAGS_ONEWAY, 42, {"CORR": b"c" * 16})
    theirs = Message(wire.MSG_INVOKE, b"payload", 1, wire.FLAGS_ONEWAY, 42,
                     {"CORR": b"c" * 16}).to_bytes()
    assert ours == theirs
    assert struct.unpack("!4sHH", ours[:8]) == (b"PYRO", constants.PROTOCOL_VERSION, 4)


def test_states_follow_the_bytes():
    encoded = wire.encode(wire.MSG_INVOKE, b"data", 1, 0, 1, {"CORR": b"x" * 16})
    reader = wire.MessageReader()
    assert list(reader.feed(encoded[:10])) == [] and reader.state is wire.ReadState.HEADER
    assert list(reader.feed(encoded[10:24])) == [] and reader.state is wire.ReadState.ANNOTATIONS
    assert list(reader.feed(encoded[24:46])) == [] and reader.state is wire.ReadState.DATA
    assert len(list(reader.feed(encoded[46:]))) == 1 and reader.state is wire.ReadState.HEADER


def _broken(data: bytes, **kwargs) -> wire.WireError:
    reader = wire.MessageReader(**kwargs)
    with pytest.raises(wire.WireError) as caught:
        list(reader.feed(data))
    assert reader.state is wire.ReadState.BROKEN
    assert list(reader.feed(wire.encode(wire.MSG_PING, b"", 1))) == []  # stays broken
    return caught.value


def test_bad_magic():
    good = wire.encode(wire.MSG_PING, b"", 1)
    error = _broken(b"PYRX" + good[4:])
    assert isinstance(error.cause, errors.ProtocolError) and error.message is None
    assert "invalid data or unsupported protocol version" in str(error)


def test_wrong_version():
    good = bytearray(wire.encode(wire.MSG_PING, b"", 1))
    struct.pack_into("!H", good, 4, 47)
    assert "unsupported protocol version" in str(_broken(bytes(good)))


def test_checksum_mismatch():
    good = bytearray(wire.encode(wire.MSG_PING, b"", 1))
    good[-1] ^= 0xFF
    assert "checksum" in str(_broken(bytes(good)))


def test_garbage_is_refused_after_24_bytes():
    assert isinstance(_broken(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").cause, errors.ProtocolError)


def test_unknown_message_type_names_the_type():
    error = _broken(Message(99, b"", 1, 0, 5).to_bytes())
    assert "invalid msg type 99" in str(error) and error.message.seq == 5


def test_type_not_allowed_here():
    reader_kwargs = {"allowed_types": frozenset({wire.MSG_CONNECT})}
    error = _broken(wire.encode(wire.MSG_INVOKE, b"x", 1, 0, 3), **reader_kwargs)
    assert "invalid msg type 4" in str(error) and error.message.seq == 3


def test_size_limit_is_checked_on_the_header_before_reading_the_payload():
    header = wire.encode(wire.MSG_INVOKE, b"x" * 1000, 1, 0, 9)[: wire.HEADER_SIZE]
    error = _broken(header, max_message_size=100)
    assert isinstance(error.cause, errors.MessageTooLargeError) and error.message.seq == 9


def test_size_limit_follows_pyro4_config(monkeypatch):
    import Pyro4

    monkeypatch.setattr(Pyro4.config, "MAX_MESSAGE_SIZE", 50)
    header = wire.encode(wire.MSG_INVOKE, b"x" * 40, 1, 0, 1)[: wire.HEADER_SIZE]
    assert list(wire.MessageReader().feed(header)) == []  # 40 bytes fit
    monkeypatch.setattr(Pyro4.config, "MAX_MESSAGE_SIZE", 30)
    _broken(header)


def test_negative_size():
    raw = struct.pack(Message.header_format, b"PYRO", constants.PROTOCOL_VERSION, 4, 0, 1, -5, 1,
                      0, 0, (4 + constants.PROTOCOL_VERSION - 5 + 0 + 0 + 1 + 1 + 0x34E9) & 0xFFFF)
    assert "invalid message size" in str(_broken(raw))


def test_annotation_lengths_are_checked():
    chunk = struct.pack("!4sH", b"CORR", 50) + b"x" * 10  # claims 50, has 10
    checksum = (4 + constants.PROTOCOL_VERSION + 0 + len(chunk) + 1 + 0 + 1 + 0x34E9) & 0xFFFF
    header = struct.pack(Message.header_format, b"PYRO", constants.PROTOCOL_VERSION, 4, 0, 1, 0,
                         1, len(chunk), 0, checksum)
    error = _broken(header + chunk)
    assert "annotation" in str(error) and error.message.seq == 1


def test_hmac_mismatch_and_asymmetry():
    keyed = wire.encode(wire.MSG_INVOKE, b"x", 1, 0, 1, hmac_key=b"right")
    assert isinstance(_broken(keyed, hmac_key=b"wrong").cause, errors.SecurityError)
    assert "not symmetric" in str(_broken(keyed))
    plain = wire.encode(wire.MSG_INVOKE, b"x", 1, 0, 1)
    assert "not symmetric" in str(_broken(plain, hmac_key=b"key"))


def test_tampered_data_fails_the_hmac():
    keyed = bytearray(wire.encode(wire.MSG_INVOKE, b"amount=1", 1, 0, 1, hmac_key=b"k"))
    keyed[-1] = ord("9")
    assert "hmac mismatch" in str(_broken(bytes(keyed), hmac_key=b"k"))


def test_hmac_key_is_read_per_message():
    key = [b"one"]
    reader = wire.MessageReader(hmac_key=lambda: key[0])
    assert len(list(reader.feed(wire.encode(wire.MSG_PING, b"", 1, hmac_key=b"one")))) == 1
    key[0] = b"two"
    assert len(list(reader.feed(wire.encode(wire.MSG_PING, b"", 1, hmac_key=b"two")))) == 1


def test_parse_annotations_rejects_non_ascii_keys():
    with pytest.raises(errors.ProtocolError):
        wire.parse_annotations(struct.pack("!4sH", b"\xff\xfe\xfd\xfc", 0))


@given(messages, st.one_of(st.none(), st.binary(min_size=1, max_size=16)))
def test_encode_is_byte_for_byte_pyro4s_for_any_message(fields, hmac_key):
    theirs = Message(fields["msg_type"], fields["data"], fields["serializer_id"],
                     fields["flags"], fields["seq"], fields["annotations"], hmac_key).to_bytes()
    assert wire.encode(hmac_key=hmac_key, **fields) == theirs


def test_encode_checks_like_pyro4(monkeypatch):
    import Pyro4

    with pytest.raises(errors.ProtocolError):
        wire.encode(wire.MSG_RESULT, b"", 1, annotations={"TOOLONG": b""})
    monkeypatch.setattr(Pyro4.config, "MAX_MESSAGE_SIZE", 10)
    with pytest.raises(errors.MessageTooLargeError):
        wire.encode(wire.MSG_RESULT, b"x" * 11, 1)


def _from_header(header: bytes) -> tuple:
    """What Pyro4's own header parser makes of ``header``: the fields, or the error text."""
    try:
        msg = Message.from_header(header)
    except errors.ProtocolError as exc:
        return ("error", str(exc))
    return (msg.type, msg.flags, msg.seq, msg.serializer_id, msg.data_size, msg.annotations_size,
            msg.data, msg.annotations, msg.hmac_key)


def _parse_header(header: bytes) -> tuple:
    try:
        msg = wire.parse_header(header)
    except wire.WireError as exc:
        return ("error", str(exc.cause))
    return (msg.type, msg.flags, msg.seq, msg.serializer_id, msg.data_size, msg.annotations_size,
            msg.data, msg.annotations, msg.hmac_key)


V = constants.PROTOCOL_VERSION
headers = st.builds(
    lambda t, f, s, d, i, a, fix: (
        lambda raw: raw[:22] + struct.pack("!H", (t + V + d + a + f + i + s + Message.checksum_magic) & 0xFFFF)
        if fix else raw
    )(struct.pack(Message.header_format, b"PYRO", V, t, f, s, d, i, a, 0, 0)),
    st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
    st.integers(-(2**31), 2**31 - 1), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
    st.booleans(),
)


@settings(max_examples=500)
@given(st.one_of(headers, st.binary(min_size=24, max_size=24), st.binary(max_size=30)))
def test_parse_header_agrees_with_pyro4(header):
    assert _parse_header(header) == _from_header(header)
