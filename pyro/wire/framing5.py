"""Pyro5's frames (wire protocol 502) without any I/O: the header, annotations and limits.

The layout is ``Pyro5.protocol``'s (checked byte for byte against its ``SendingMessage`` in
the tests): a 40-byte header ``!4sHBBHHII16sHH`` -- ``b"PYRO"``, version 502, type (u8),
serializer id (u8), flags (u16), sequence (u16), data length (u32), annotations length
(u32), a 16-byte correlation id, reserved (u16), magic ``0x4dc5`` -- then annotation chunks
``!4sI`` (4 ASCII bytes, u32 length, value), then the payload. What is not here, because
Pyro5 has none of it: a checksum (the magic number stands in its place) and HMAC (Pyro5
relies on TLS). The limit is ``Pyro5.config.MAX_MESSAGE_SIZE`` (1 GiB by default).

The reader is :class:`pyro.wire.framing.MessageReader` with :data:`PYRO5_FRAMES`; what it
yields are ``Pyro5.protocol.ReceivingMessage`` objects (Pyro5's own class, so that a
``Pyro5.api.SerializedBlob`` can wrap one), their data still compressed if the sender
compressed it: decompressing is the codec's business (:mod:`pyro.wire.pyro5`), as is
Pyro5's rule for when to compress.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from Pyro5 import config, errors
from Pyro5.protocol import (
    FLAGS_BATCH,
    FLAGS_COMPRESSED,
    FLAGS_CORR_ID,
    FLAGS_EXCEPTION,
    FLAGS_ITEMSTREAMRESULT,
    FLAGS_KEEPSERIALIZED,
    FLAGS_ONEWAY,
    MSG_CONNECT,
    MSG_CONNECTFAIL,
    MSG_CONNECTOK,
    MSG_INVOKE,
    MSG_PING,
    MSG_RESULT,
    PROTOCOL_VERSION,
    ReceivingMessage,
)

from . import framing
from .framing import LARGE_PAYLOAD, FrameFormat, WireError

__all__ = [
    "FLAGS_BATCH",
    "FLAGS_COMPRESSED",
    "FLAGS_CORR_ID",
    "FLAGS_EXCEPTION",
    "FLAGS_ITEMSTREAMRESULT",
    "FLAGS_KEEPSERIALIZED",
    "FLAGS_ONEWAY",
    "HEADER_SIZE",
    "MAGIC",
    "MSG_CONNECT",
    "MSG_CONNECTFAIL",
    "MSG_CONNECTOK",
    "MSG_INVOKE",
    "MSG_PING",
    "MSG_RESULT",
    "PROTOCOL_VERSION",
    "PYRO5_FRAMES",
    "encode",
    "encode_frame",
    "encode_parts",
    "parse_annotations",
    "parse_header",
]

_HEADER = struct.Struct("!4sHBBHHII16sHH")
_ANNOTATION_HEADER = struct.Struct("!4sI")
HEADER_SIZE: int = _HEADER.size  # 40
MAGIC = 0x4DC5
_NO_CORRELATION_ID = b"\0" * 16
_U32 = 0xFFFFFFFF


def _too_large(total: int, limit: int | None) -> errors.MessageTooLargeError:
    """Pyro5's words for an oversize frame (it raises a plain ProtocolError; this is the
    subclass it has for the purpose, so ``except ProtocolError`` still catches it)."""
    if limit is None:
        return errors.MessageTooLargeError("message too large to receive: %d bytes" % total)
    return errors.MessageTooLargeError("message too large (%d, max=%d)" % (total, limit))


def parse_header(header: bytes) -> ReceivingMessage:
    """The message a 40-byte header announces (no annotations or data yet).

    Pyro5's checks (tag, version, magic) with its words, one error per reason, without the
    constructor of ``ReceivingMessage`` (which checks the size limit against the global
    config, while the reader's limit may be the caller's).
    """
    if len(header) != HEADER_SIZE:
        raise WireError(errors.ProtocolError("header data size mismatch"))
    (tag, version, msg_type, serializer_id, flags, seq, data_size, annotations_size, corr_id,
     _, magic) = _HEADER.unpack(header)
    if tag != b"PYRO":
        raise WireError(errors.ProtocolError("invalid data"))
    if version != PROTOCOL_VERSION:
        raise WireError(errors.ProtocolError("invalid protocol version: %d" % version))
    if magic != MAGIC:
        raise WireError(errors.ProtocolError("invalid magic number"))
    msg = ReceivingMessage.__new__(ReceivingMessage)
    msg.type, msg.serializer_id, msg.flags, msg.seq = msg_type, serializer_id, flags, seq
    msg.data, msg.data_size = b"", data_size
    msg.annotations, msg.annotations_size = {}, annotations_size
    msg.corr_id = corr_id
    return msg


def parse_annotations(data: bytes) -> dict[str, bytes]:
    """Split annotation bytes into a ``{key: value}`` dict, checking every length (values
    are ``bytes``; Pyro5's own reader gives memoryviews, which compare equal)."""
    return framing.parse_annotations(data, _ANNOTATION_HEADER, errors.ProtocolError)


def _no_hmac(msg: Any, hmac_key: bytes | None) -> None:
    """Pyro5 frames carry no HMAC: nothing to verify (a key set for Pyro4 is not used)."""


#: Pyro5 5.x's frames (wire protocol 502), for :class:`pyro.wire.framing.MessageReader`.
PYRO5_FRAMES = FrameFormat(
    "Pyro5", PROTOCOL_VERSION, HEADER_SIZE, parse_header, parse_annotations, _no_hmac,
    config, _too_large, errors.ProtocolError)


def _head(msg_type: int, data_size: int, serializer_id: int, flags: int, seq: int,
          annotations: Mapping[str, bytes] | None, corr_id: bytes | None) -> bytes:
    """Header and annotation bytes, with ``Pyro5.protocol.SendingMessage``'s checks."""
    chunks = []
    if annotations:
        for key, value in annotations.items():
            if len(key) != 4:
                raise errors.ProtocolError("annotation identifier must be 4 ascii characters")
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise errors.ProtocolError(
                    "annotation data must be bytes, bytearray, or memoryview", type(value))
            chunks.append(_ANNOTATION_HEADER.pack(key.encode("ascii"), len(value)))
            chunks.append(value)
    annotation_bytes = b"".join(chunks)
    total = data_size + len(annotation_bytes)
    if total > config.MAX_MESSAGE_SIZE:
        raise _too_large(total, config.MAX_MESSAGE_SIZE)
    if data_size > _U32 or len(annotation_bytes) > _U32:
        raise ValueError("invalid message size (outside range 0..4Gb)")
    if corr_id:
        flags |= FLAGS_CORR_ID
    else:
        corr_id = _NO_CORRELATION_ID
    header = _HEADER.pack(b"PYRO", PROTOCOL_VERSION, msg_type, serializer_id, flags, seq,
                          data_size, len(annotation_bytes), corr_id, 0, MAGIC)
    return header + annotation_bytes


def encode(msg_type: int, data: bytes, serializer_id: int, flags: int = 0, seq: int = 0,
           annotations: Mapping[str, bytes] | None = None,
           corr_id: bytes | None = None) -> bytes:
    """One complete Pyro5 frame. With ``corr_id`` (16 bytes) the header carries it and the
    CORR_ID flag. ``data`` is sent as given: compressing it (and setting COMPRESSED) is the
    caller's choice. Byte for byte what ``Pyro5.protocol.SendingMessage`` gives for the same
    payload, flags and correlation id (the tests check it). Raises
    ``Pyro5.errors.MessageTooLargeError`` above ``Pyro5.config.MAX_MESSAGE_SIZE``."""
    return _head(msg_type, len(data), serializer_id, flags, seq, annotations, corr_id) + data


def encode_parts(msg_type: int, data: bytes, serializer_id: int, flags: int = 0,
                 seq: int = 0, annotations: Mapping[str, bytes] | None = None,
                 corr_id: bytes | None = None) -> tuple[bytes, bytes]:
    """The frame :func:`encode` makes, as ``(head, data)``, the payload not copied (see
    :func:`pyro.wire.framing.encode_parts`)."""
    return _head(msg_type, len(data), serializer_id, flags, seq, annotations, corr_id), data


def encode_frame(msg_type: int, data: bytes, serializer_id: int, flags: int = 0,
                 seq: int = 0, annotations: Mapping[str, bytes] | None = None,
                 corr_id: bytes | None = None) -> bytes | tuple[bytes, bytes]:
    """:func:`encode_parts` for a payload of ``LARGE_PAYLOAD`` or more, else :func:`encode`."""
    if len(data) >= LARGE_PAYLOAD:
        return encode_parts(msg_type, data, serializer_id, flags, seq, annotations, corr_id)
    return encode(msg_type, data, serializer_id, flags, seq, annotations, corr_id)
