"""Large messages in the sans-IO layer: payloads filled in place, frames sent in parts.

No timing here: what is checked is the bytes (the same messages whatever the chunking, the
same frames as Pyro4's), the HMAC and size rules, and memory (``tracemalloc``: the reader
holds one copy of a payload, not a list of chunks plus their join).
"""

from __future__ import annotations

import os
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from Pyro4 import errors
from Pyro4.message import Message

from pyro import wire
from pyro.wire import framing

from .test_framing import _reencode, messages

MiB = 1 << 20
keys = st.one_of(st.none(), st.binary(min_size=1, max_size=16))


def _chunks(frame: bytes, size: int):
    """``frame`` in pieces of ``size`` bytes, each a fresh bytes object (as recv() gives)."""
    view = memoryview(frame)
    for start in range(0, len(frame), size):
        yield bytes(view[start:start + size])


@settings(max_examples=200)
@given(st.lists(messages, min_size=1, max_size=5), st.data(), keys,
       st.integers(min_value=1, max_value=64))
def test_any_split_gives_the_same_messages_with_payloads_filled_in_place(batch, data, key,
                                                                         large_section):
    """The property test of test_framing, with a threshold small enough that most payloads
    are collected in place; keyed streams too (the HMAC is checked on the filled payload)."""
    stream = b"".join(wire.encode(hmac_key=key, **fields) for fields in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    reader = wire.MessageReader(hmac_key=key, large_section=large_section)
    parsed = [msg for chunk in chunks for msg in reader.feed(chunk)]
    assert [_reencode(m, key) for m in parsed] == [wire.encode(hmac_key=key, **f) for f in batch]
    assert all(type(m.data) is bytes for m in parsed)
    assert reader.state is wire.ReadState.HEADER and reader.buffered == 0
    assert reader.section is None


@settings(max_examples=100)
@given(st.lists(messages, min_size=1, max_size=4), st.data(), keys)
def test_receiving_into_the_buffer_gives_the_same_messages(batch, data, key):
    """A caller that writes into :meth:`receive_buffer` (as ``recv_into`` does) whenever it
    is offered, in pieces of any size, and feeds the rest."""
    stream = b"".join(wire.encode(hmac_key=key, **fields) for fields in batch)
    reader = wire.MessageReader(hmac_key=key, large_section=8)
    parsed, position = [], 0
    while position < len(stream):
        step = data.draw(st.integers(1, 64))
        view = reader.receive_buffer()
        if view is None:
            parsed += reader.feed(stream[position:position + step])
            position += step
            continue
        with view:
            count = min(step, len(view))
            view[:count] = stream[position:position + count]
        position += count
        msg = reader.received(count)
        if msg is not None:
            parsed.append(msg)
    assert [_reencode(m, key) for m in parsed] == [wire.encode(hmac_key=key, **f) for f in batch]
    assert reader.section is None and reader.buffered == 0


def test_a_large_payload_in_many_chunks_is_one_bytes_object_with_the_same_bytes():
    payload = os.urandom(MiB) * 9
    frame = wire.encode(wire.MSG_RESULT, payload, 3, 0, 7, {"CORR": b"c" * 16})
    reader = wire.MessageReader()
    parsed = [msg for chunk in _chunks(frame, 65536) for msg in reader.feed(chunk)]
    (msg,) = parsed
    assert type(msg.data) is bytes and msg.data == payload
    assert (msg.seq, msg.annotations) == (7, {"CORR": b"c" * 16})


def test_the_reader_holds_one_copy_of_a_large_payload():
    """Peak memory while 16 MiB arrive in 64 KiB chunks: the payload once (plus a chunk),
    not the chunks and then their join (which made it twice the payload)."""
    size, chunk = 16 * MiB, 65536
    frame = wire.encode(wire.MSG_INVOKE, b"\x01" * size, 3, 0, 1)
    reader = wire.MessageReader()
    parsed = []
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for piece in _chunks(frame, chunk):
            parsed += reader.feed(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(parsed) == 1 and len(parsed[0].data) == size
    assert peak < size + 4 * chunk, peak


def test_receive_buffer_is_written_in_place():
    """What ``recv_into`` writes into the view becomes ``msg.data``: no copy at the end."""
    payload = os.urandom(3 * MiB)
    frame = wire.encode(wire.MSG_RESULT, payload, 3, 0, 2)
    reader = wire.MessageReader()
    assert list(reader.feed(frame[:1000])) == []
    assert reader.section is not None
    tracemalloc.start()
    try:
        position, msg = 1000, None
        while msg is None:
            with reader.receive_buffer() as view:
                count = min(len(view), 100_000)
                view[:count] = frame[position:position + count]
            position += count
            msg = reader.received(count)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert msg.data == payload and position == len(frame)
    assert peak < 2 * 100_000 + 65536, peak  # only the slices of frame taken above
    assert reader.receive_buffer() is None and reader.state is wire.ReadState.HEADER


def test_received_refuses_counts_beyond_the_buffer():
    reader = wire.MessageReader(large_section=10)
    with pytest.raises(ValueError):
        reader.received(1)  # nothing offered
    list(reader.feed(wire.encode(wire.MSG_RESULT, b"x" * 100, 3)[:30]))
    with pytest.raises(ValueError):
        reader.received(95)  # 94 missing
    assert reader.received(94) is not None


def test_hmac_is_checked_on_a_payload_filled_in_place():
    payload = b"a" * (2 * MiB)
    keyed = bytearray(wire.encode(wire.MSG_INVOKE, payload, 3, 0, 1, hmac_key=b"k"))
    keyed[-1] ^= 1
    reader = wire.MessageReader(hmac_key=b"k")
    with pytest.raises(wire.WireError) as caught:
        for piece in _chunks(bytes(keyed), 65536):
            list(reader.feed(piece))
    assert isinstance(caught.value.cause, errors.SecurityError)
    assert reader.state is wire.ReadState.BROKEN and reader.section is None
    # and through the receive buffer
    reader = wire.MessageReader(hmac_key=b"other", large_section=16)
    frame = wire.encode(wire.MSG_INVOKE, b"b" * 100, 3, 0, 1, hmac_key=b"k")
    split = len(frame) - 100
    list(reader.feed(frame[:split]))
    with reader.receive_buffer() as view:
        view[:] = frame[split:]
    with pytest.raises(wire.WireError) as caught:
        reader.received(100)
    assert "hmac mismatch" in str(caught.value) and reader.state is wire.ReadState.BROKEN


def test_the_size_limit_is_enforced_before_anything_is_buffered():
    header = _header(2**31 - 1)
    reader = wire.MessageReader(max_message_size=64 * MiB)
    tracemalloc.start()
    try:
        with pytest.raises(wire.WireError) as caught:
            list(reader.feed(header + b"x" * 1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(caught.value.cause, errors.MessageTooLargeError)
    assert reader.section is None and peak < MiB


def test_a_payload_that_cannot_be_allocated_is_refused_as_too_large(monkeypatch):
    def no_memory(size):
        raise MemoryError

    monkeypatch.setattr(framing, "_allocate_bytes", no_memory)
    reader = wire.MessageReader()
    with pytest.raises(wire.WireError) as caught:
        list(reader.feed(_header(64 * MiB, seq=5)))
    assert isinstance(caught.value.cause, errors.MessageTooLargeError)
    assert caught.value.message.seq == 5 and reader.state is wire.ReadState.BROKEN


def test_without_ctypes_a_bytearray_is_filled_and_copied_once(monkeypatch):
    monkeypatch.setattr(framing, "_allocate_bytes", None)
    payload = os.urandom(MiB)
    frame = wire.encode(wire.MSG_RESULT, payload, 3, 0, 1, hmac_key=b"k")
    reader = wire.MessageReader(hmac_key=b"k")
    (msg,) = [m for piece in _chunks(frame, 4096) for m in reader.feed(piece)]
    assert type(msg.data) is bytes and msg.data == payload


def test_buffered_counts_the_payload_collected_so_far():
    frame = wire.encode(wire.MSG_RESULT, b"z" * 1000, 3)
    reader = wire.MessageReader(large_section=100)
    list(reader.feed(frame[:500]))
    assert reader.section is not None and reader.buffered == 500 - wire.HEADER_SIZE
    assert len(list(reader.feed(frame[500:]))) == 1 and reader.buffered == 0


@given(messages, keys)
def test_encode_parts_is_encode_in_two_parts(fields, key):
    head, data = wire.encode_parts(hmac_key=key, **fields)
    assert data is fields["data"]  # the payload itself, not a copy
    assert head + data == wire.encode(hmac_key=key, **fields)
    theirs = Message(fields["msg_type"], fields["data"], fields["serializer_id"], fields["flags"],
                     fields["seq"], fields["annotations"], key).to_bytes()
    assert head + data == theirs


def test_encode_parts_checks_like_encode(monkeypatch):
    import Pyro4

    with pytest.raises(errors.ProtocolError):
        wire.encode_parts(wire.MSG_RESULT, b"", 1, annotations={"TOOLONG": b""})
    monkeypatch.setattr(Pyro4.config, "MAX_MESSAGE_SIZE", 10)
    with pytest.raises(errors.MessageTooLargeError):
        wire.encode_parts(wire.MSG_RESULT, b"x" * 11, 1)


def _header(data_size: int, seq: int = 1) -> bytes:
    """A valid INVOKE header announcing ``data_size`` bytes (none of which follow)."""
    return framing._HEADER.pack(
        b"PYRO", 48, wire.MSG_INVOKE, 0, seq, data_size, 3, 0, 0,
        (wire.MSG_INVOKE + 48 + data_size + 3 + seq + Message.checksum_magic) & 0xFFFF)
