"""Pyro's frames without any I/O: bytes in, messages out (Pyro4's layout here).

This module knows the byte layout of a Pyro4 message (wire version 48) and holds the one
incremental reader, :class:`MessageReader`, for both protocol generations: what differs
between them (header size and parsing, annotation chunks, HMAC, the size limit, the error
classes) is a :class:`FrameFormat`, :data:`PYRO4_FRAMES` here and ``PYRO5_FRAMES`` in
:mod:`pyro.wire.framing5`. It deliberately imports nothing from Twisted, so that the server
protocol, the native client and plain unit tests (including property-based ones) can all
drive it with ordinary ``bytes``.

It reuses Pyro4's own :class:`Pyro4.message.Message` for the header layout, the checksum
and encoding, so that what we send is byte for byte what Pyro4 would send. What Pyro4 does
not offer is an *incremental* reader (its ``Message.recv`` pulls from a blocking socket), and
that is what :class:`MessageReader` adds: feed it any chunks of a byte stream and it yields
complete, verified message objects (:class:`~Pyro4.message.Message` for Pyro4).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Union

from Pyro4 import constants, errors
from Pyro4.configuration import config
from Pyro4.message import (
    FLAGS_BATCH,
    FLAGS_COMPRESSED,
    FLAGS_EXCEPTION,
    FLAGS_ITEMSTREAMRESULT,
    FLAGS_KEEPSERIALIZED,
    FLAGS_META_ON_CONNECT,
    FLAGS_ONEWAY,
    MSG_CONNECT,
    MSG_CONNECTFAIL,
    MSG_CONNECTOK,
    MSG_INVOKE,
    MSG_PING,
    MSG_RESULT,
    Message,
    secure_compare,
)

__all__ = [
    "HEADER_SIZE",
    "FrameFormat",
    "LARGE_PAYLOAD",
    "LARGE_SECTION",
    "MESSAGE_TYPES",
    "MessageReader",
    "Frame",
    "ReadState",
    "WireError",
    "encode",
    "encode_frame",
    "encode_parts",
    "hmac_key_bytes",
    "parse_header",
    "parse_annotations",
    "FLAGS_BATCH",
    "FLAGS_COMPRESSED",
    "FLAGS_EXCEPTION",
    "FLAGS_ITEMSTREAMRESULT",
    "FLAGS_KEEPSERIALIZED",
    "FLAGS_META_ON_CONNECT",
    "FLAGS_ONEWAY",
    "MSG_CONNECT",
    "MSG_CONNECTFAIL",
    "MSG_CONNECTOK",
    "MSG_INVOKE",
    "MSG_PING",
    "MSG_RESULT",
    "Message",
    "PYRO4_FRAMES",
]

HEADER_SIZE: int = Message.header_size  # 24
MESSAGE_TYPES = frozenset(
    {MSG_CONNECT, MSG_CONNECTOK, MSG_CONNECTFAIL, MSG_INVOKE, MSG_RESULT, MSG_PING}
)
_ANNOTATION_HEADER = struct.Struct("!4sH")
_HEADER = struct.Struct(Message.header_format)

#: A DATA section at least this large is received into one buffer of its final size (see
#: :meth:`MessageReader.receive_buffer`) instead of a list of chunks joined at the end.
LARGE_SECTION = 256 * 1024
#: Payloads at least this large are worth sending as ``(head, payload)``
#: (:func:`encode_parts`) rather than as one joined frame.
LARGE_PAYLOAD = 64 * 1024
#: An encoded message: one joined ``bytes`` (:func:`encode`), or ``(head, payload)``
#: (:func:`encode_parts`) for a large payload, whose parts are sent one after the other.
Frame = Union[bytes, tuple[bytes, bytes]]  # noqa: UP007 -- a runtime alias (Python 3.10)
_OUT_OF_REACH = 1 << 62  # _needed while a section is filled in place: no chunk is this long


class ReadState(enum.Enum):
    """Where the reader is inside the current message (Pyro4's own vocabulary)."""

    # Members are singletons: hashed by identity, in C (``Enum.__hash__`` hashes the name in
    # Python, and membership tests of these states run several times a request).
    __hash__ = object.__hash__

    HEADER = "header"  #: waiting for the 24 header bytes
    ANNOTATIONS = "annotations"  #: header parsed, waiting for the announced annotation bytes
    DATA = "data"  #: waiting for the announced payload bytes
    BROKEN = "broken"  #: the stream cannot be resynchronised; nothing more is read


class WireError(errors.ProtocolError):
    """The byte stream is not a valid Pyro message stream (of either generation).

    ``message`` is the partly parsed message when the header was good enough to know its
    sequence number and serializer (so a reply can still name the request), else ``None``.
    ``cause`` is the exception to report to the peer, of the stream's own generation: for
    Pyro4 a ``Pyro4.errors.ProtocolError``, ``MessageTooLargeError`` or ``SecurityError``,
    exactly as Pyro4's ``Message.recv`` would raise it; for Pyro5 the ``Pyro5.errors`` ones.
    """

    def __init__(self, cause: Exception, message: Any = None):
        super().__init__(str(cause))
        self.cause = cause
        self.message = message


def parse_annotations(data: bytes, chunk: struct.Struct = _ANNOTATION_HEADER,
                      protocol_error: type[Exception] = errors.ProtocolError
                      ) -> dict[str, bytes]:
    """Split annotation bytes into a ``{key: value}`` dict, checking every length.

    Pyro4's chunks by default (``!4sH``: key, u16 length); Pyro5's are ``!4sI`` and its
    errors ``Pyro5.errors.ProtocolError`` (see :mod:`pyro.wire.framing5`)."""
    if not data:
        return {}  # most messages: no annotations at all
    annotations: dict[str, bytes] = {}
    offset, end = 0, len(data)
    size = chunk.size
    while offset < end:
        if end - offset < size:
            raise protocol_error("truncated annotation chunk")
        key, length = chunk.unpack_from(data, offset)
        offset += size
        if offset + length > end:
            raise protocol_error("annotation chunk longer than the annotations")
        try:
            name = key.decode("ascii")
        except UnicodeDecodeError:
            raise protocol_error("annotation key is not ASCII") from None
        annotations[name] = data[offset : offset + length]
        offset += length
    return annotations


def encode(
    msg_type: int,
    data: bytes,
    serializer_id: int,
    flags: int = 0,
    seq: int = 0,
    annotations: Mapping[str, bytes] | None = None,
    hmac_key: bytes | None = None,
) -> bytes:
    """Encode one complete message (header, annotations, data), HMAC included if keyed.

    Byte for byte what ``Pyro4.message.Message(...).to_bytes()`` gives (the tests check it),
    without building a ``Message``: this runs for every reply, and the object costs more than
    the bytes. Keyed messages go through Pyro4's own class, which computes the HMAC. Raises
    ``Pyro4.errors.MessageTooLargeError`` above ``config.MAX_MESSAGE_SIZE``, like Pyro4.
    """
    if hmac_key:
        return Message(msg_type, data, serializer_id, flags, seq, annotations,
                       hmac_key).to_bytes()
    # The same packing as _head(), inline: this runs for every reply, and the call and tuple
    # cost ~10 % of it (the property tests check that both agree).
    chunks = []
    if annotations:
        for key, value in annotations.items():
            if len(key) != 4:
                raise errors.ProtocolError("annotation key must be of length 4")
            chunks.append(_ANNOTATION_HEADER.pack(key.encode("ascii"), len(value)))
            chunks.append(value)
    annotation_bytes = b"".join(chunks)
    data_size, annotations_size = len(data), len(annotation_bytes)
    if 0 < config.MAX_MESSAGE_SIZE < data_size + annotations_size:
        raise errors.MessageTooLargeError("max message size exceeded (%d where max=%d)"
                                          % (data_size + annotations_size, config.MAX_MESSAGE_SIZE))
    if data_size > 0x7FFFFFFF:
        raise ValueError("invalid message size (outside range 0..2Gb)")
    checksum = (msg_type + constants.PROTOCOL_VERSION + data_size + annotations_size
                + serializer_id + flags + seq + Message.checksum_magic) & 0xFFFF
    header = _HEADER.pack(b"PYRO", constants.PROTOCOL_VERSION, msg_type, flags, seq, data_size,
                          serializer_id, annotations_size, 0, checksum)
    return b"".join((header, annotation_bytes, data))


def encode_parts(
    msg_type: int,
    data: bytes,
    serializer_id: int,
    flags: int = 0,
    seq: int = 0,
    annotations: Mapping[str, bytes] | None = None,
    hmac_key: bytes | None = None,
) -> tuple[bytes, bytes]:
    """The frame :func:`encode` makes, as ``(head, data)``: header and annotations, then the
    payload object itself, not copied into a joined frame.

    For large payloads: the two parts go to the socket as they are (``sendmsg``, or one
    after the other), so a 64 MiB reply is not copied once more just to put 24 header bytes
    in front of it. ``b"".join(encode_parts(...)) == encode(...)`` for every message, keyed
    ones included (the HMAC is computed as Pyro4's ``Message`` computes it).
    """
    if hmac_key:
        annotations = dict(annotations or {})
        annotations["HMAC"] = _hmac(hmac_key, data, annotations)  # last, as in Pyro4
    header, annotation_bytes = _head(msg_type, len(data), serializer_id, flags, seq, annotations)
    return header + annotation_bytes, data


def encode_frame(
    msg_type: int,
    data: bytes,
    serializer_id: int,
    flags: int = 0,
    seq: int = 0,
    annotations: Mapping[str, bytes] | None = None,
    hmac_key: bytes | None = None,
) -> Frame:
    """:func:`encode_parts` for a payload of :data:`LARGE_PAYLOAD` or more (sent without
    joining), else :func:`encode` (one ``bytes``: one write, the cheaper for small ones)."""
    if len(data) >= LARGE_PAYLOAD:
        return encode_parts(msg_type, data, serializer_id, flags, seq, annotations, hmac_key)
    return encode(msg_type, data, serializer_id, flags, seq, annotations, hmac_key)


def _head(msg_type: int, data_size: int, serializer_id: int, flags: int, seq: int,
          annotations: Mapping[str, bytes] | None) -> tuple[bytes, bytes]:
    """The packed header and annotation bytes of a message, with Pyro4's checks."""
    chunks = []
    if annotations:
        for key, value in annotations.items():
            if len(key) != 4:
                raise errors.ProtocolError("annotation key must be of length 4")
            chunks.append(_ANNOTATION_HEADER.pack(key.encode("ascii"), len(value)))
            chunks.append(value)
    annotation_bytes = b"".join(chunks)
    annotations_size = len(annotation_bytes)
    if 0 < config.MAX_MESSAGE_SIZE < data_size + annotations_size:
        raise errors.MessageTooLargeError("max message size exceeded (%d where max=%d)"
                                          % (data_size + annotations_size, config.MAX_MESSAGE_SIZE))
    if data_size > 0x7FFFFFFF:
        raise ValueError("invalid message size (outside range 0..2Gb)")
    checksum = (msg_type + constants.PROTOCOL_VERSION + data_size + annotations_size
                + serializer_id + flags + seq + Message.checksum_magic) & 0xFFFF
    header = _HEADER.pack(b"PYRO", constants.PROTOCOL_VERSION, msg_type, flags, seq, data_size,
                          serializer_id, annotations_size, 0, checksum)
    return header, annotation_bytes


def _hmac(key: bytes, data: Any, annotations: Mapping[str, bytes]) -> bytes:
    """Pyro4's message HMAC: SHA-1 over the data, then the other annotations by key."""
    mac = hmac.new(key, data, digestmod=hashlib.sha1)
    for name, value in sorted(annotations.items()):
        if name != "HMAC":
            mac.update(value)
    return mac.digest()


def parse_header(header: bytes) -> Message:
    """The :class:`Message` a 24-byte header announces (no annotations or data yet).

    The same checks and errors as Pyro4's ``Message.from_header``, without building the
    message through its constructor (which re-checks sizes and copies dicts meant for
    outgoing messages): this runs for every request a server receives.
    """
    if len(header) != HEADER_SIZE:
        raise WireError(errors.ProtocolError("header data size mismatch"))
    tag, version, msg_type, flags, seq, data_size, serializer_id, annotations_size, _, checksum = (
        _HEADER.unpack(header))
    if tag != b"PYRO" or version != constants.PROTOCOL_VERSION:
        raise WireError(errors.ProtocolError("invalid data or unsupported protocol version"))
    if checksum != (msg_type + version + data_size + annotations_size + flags + serializer_id
                    + seq + Message.checksum_magic) & 0xFFFF:
        raise WireError(errors.ProtocolError("header checksum mismatch"))
    msg = Message.__new__(Message)
    msg.type, msg.flags, msg.seq, msg.serializer_id = msg_type, flags, seq, serializer_id
    msg.data, msg.data_size = b"", data_size
    msg.annotations, msg.annotations_size = {}, annotations_size
    msg.hmac_key = None
    return msg


def hmac_key_bytes(key: bytes | str | None) -> bytes | None:
    """An HMAC key as Pyro4 keeps it: bytes (a ``str`` is UTF-8 encoded), or ``None``."""
    if key and not isinstance(key, bytes):
        key = key.encode("utf-8")
    return key or None


def verify_hmac(msg: Message, hmac_key: bytes | None) -> None:
    """Apply Pyro4's HMAC rule: both sides keyed and matching, or neither keyed."""
    has_hmac = "HMAC" in msg.annotations
    if has_hmac and hmac_key:
        msg.hmac_key = hmac_key
        if not secure_compare(msg.annotations["HMAC"], msg.hmac()):
            raise WireError(errors.SecurityError("message hmac mismatch"), msg)
    elif has_hmac != bool(hmac_key):
        raise WireError(errors.SecurityError("hmac key config not symmetric"), msg)


class FrameFormat:
    """What one protocol generation's frames look like, for :class:`MessageReader`.

    ``parse_header(bytes) -> message`` (raising :class:`WireError`), ``parse_annotations(
    bytes) -> dict`` (raising the generation's ``ProtocolError``), ``verify(message,
    hmac_key)`` (raising :class:`WireError`; Pyro5 has no HMAC), ``config`` (the
    generation's config: its ``MAX_MESSAGE_SIZE`` is the default limit, read per message),
    ``too_large(total, limit)`` (the exception for an oversize frame, in the generation's
    words; ``limit`` None: no memory for it) and ``protocol_error(text)`` (the generation's
    ``ProtocolError``). One object per generation, shared by every reader.
    """

    __slots__ = ("name", "version", "header_size", "parse_header", "parse_annotations",
                 "verify", "config", "too_large", "protocol_error")

    def __init__(self, name: str, version: int, header_size: int,
                 parse_header: Callable[[bytes], Any],
                 parse_annotations: Callable[[bytes], dict[str, bytes]],
                 verify: Callable[[Any, bytes | None], None],
                 config: Any,
                 too_large: Callable[[int, int | None], Exception],
                 protocol_error: Callable[[str], Exception]):
        self.name = name
        self.version = version
        self.header_size = header_size
        self.parse_header = parse_header
        self.parse_annotations = parse_annotations
        self.verify = verify
        self.config = config
        self.too_large = too_large
        self.protocol_error = protocol_error

    def __repr__(self) -> str:
        return "<FrameFormat %s (wire %d)>" % (self.name, self.version)


def _too_large(total: int, limit: int | None) -> Exception:
    if limit is None:
        return errors.MessageTooLargeError("message too large to receive: %d bytes" % total)
    return errors.MessageTooLargeError(
        "max message size exceeded (%d where max=%d)" % (total, limit))


#: Pyro4 4.82's frames (wire protocol 48): 24-byte header, ``!4sH`` annotation chunks, HMAC.
PYRO4_FRAMES = FrameFormat("Pyro4", constants.PROTOCOL_VERSION, HEADER_SIZE, parse_header,
                           parse_annotations, verify_hmac, config, _too_large,
                           errors.ProtocolError)


def _uninitialized_bytes() -> Callable[[int], tuple[Any, memoryview]] | None:
    """CPython's way to fill a ``bytes`` object in place, through ctypes, or None.

    The C API allows exactly this: a bytes object made by ``PyBytes_FromStringAndSize(NULL,
    size)`` may be written through ``PyBytes_AsString`` until it is handed to anyone else.
    Large allocations come from ``mmap``, so pages cost memory only once bytes arrive.
    """
    try:
        import ctypes

        api = ctypes.pythonapi
        new, address = api.PyBytes_FromStringAndSize, api.PyBytes_AsString
    except (ImportError, AttributeError):  # not CPython (PyPy), or no ctypes
        return None
    new.restype, new.argtypes = ctypes.py_object, (ctypes.c_void_p, ctypes.c_ssize_t)
    address.restype, address.argtypes = ctypes.c_void_p, (ctypes.py_object,)

    def allocate(size: int) -> tuple[bytes, memoryview]:
        target = new(None, size)
        window = (ctypes.c_char * size).from_address(address(target))
        window.target = target  # type: ignore[attr-defined] # the view keeps the bytes alive
        return target, memoryview(window).cast("B")

    return allocate


_allocate_bytes = _uninitialized_bytes()


class _Section:
    """One large DATA section, filled in place in the ``bytes`` object that becomes the
    message's data: no list of chunks, no join, at most one copy of the payload alive.

    Where CPython's in-place fill is not available, a ``bytearray`` is filled and copied into
    ``bytes`` once at the end (still no chunk list; briefly two copies).
    """

    __slots__ = ("target", "view", "size", "filled")

    def __init__(self, size: int):
        if _allocate_bytes is not None:
            self.target, self.view = _allocate_bytes(size)
        else:
            self.target = bytearray(size)
            self.view = memoryview(self.target)
        self.size = size
        self.filled = 0

    def fill(self, data: bytes, offset: int) -> int:
        """Copy what ``data[offset:]`` has of the section; how many bytes were taken."""
        count = min(len(data) - offset, self.size - self.filled)
        if count > 0:
            with memoryview(data) as source:
                self.view[self.filled:self.filled + count] = source[offset:offset + count]
            self.filled += count
        return max(count, 0)

    def take(self) -> bytes:
        """The filled section as ``bytes``; the section is unusable afterwards."""
        self.view.release()
        target, self.target = self.target, None
        return target if type(target) is bytes else bytes(target)


class MessageReader:
    """Incremental parser for a stream of Pyro messages, of the generation ``frames`` names
    (:data:`PYRO4_FRAMES` by default; ``pyro.wire.framing5.PYRO5_FRAMES`` for Pyro5).

    Call :meth:`feed` with whatever bytes arrived, in chunks of any size; it yields each
    complete message (a :class:`Pyro4.message.Message`, or a ``Pyro5.protocol.
    ReceivingMessage``) with its annotations parsed, its HMAC checked (Pyro4), its data
    still serialized and possibly compressed. A violation raises :class:`WireError`
    and leaves the reader :attr:`ReadState.BROKEN`: after a bad header there is no way to
    find the next message boundary, so the connection must be closed.

    Large payloads (a DATA section of at least ``large_section`` bytes) are collected in one
    buffer of their final size, the ``bytes`` object that becomes ``msg.data``, so a message
    is never held twice (no list of chunks joined at the end). While that happens,
    :attr:`section` is not None and the caller may also write into the buffer directly:
    :meth:`receive_buffer` gives the missing part as a writable view (for
    ``socket.recv_into``) and :meth:`received` says how much was written. The contract of
    both ways in: every call returns the messages completed, raises :class:`WireError`, or
    returns nothing because more bytes are needed.

    ``hmac_key`` and ``max_message_size`` are read for every message (they may be callables),
    because Pyro4 lets users change both at run time: ``daemon._pyroHmacKey = b"..."`` after
    construction, and ``Pyro4.config.MAX_MESSAGE_SIZE`` (by default the limit is the
    generation's config: ``Pyro5.config.MAX_MESSAGE_SIZE`` for Pyro5, which has no HMAC and
    ignores the key). The size limit is checked on the header, before anything of the
    payload is buffered.
    """

    # One per connection: small. The frame format's hooks are slots of their own, read into
    # a local before each call: that costs what calling a global did when this reader knew
    # Pyro4 only (A/B, 10 alternating runs: 2.30 vs 2.29 us per message, median), where
    # ``self.frames.parse_header(...)`` or ``self._parse(...)`` cost ~0.1 us more.
    __slots__ = ("_hmac_key", "_max_message_size", "allowed_types", "large_section",
                 "_pending", "_pending_size", "_needed", "_current", "section",
                 "state", "frames", "_header_size", "_parse", "_parse_annotations", "_verify")

    def __init__(
        self,
        hmac_key: Callable[[], bytes | None] | bytes | None = None,
        max_message_size: Callable[[], int] | int | None = None,
        allowed_types: frozenset[int] = MESSAGE_TYPES,
        large_section: int = LARGE_SECTION,
        frames: FrameFormat = PYRO4_FRAMES,
    ):
        self.frames = frames
        self._header_size = frames.header_size
        self._parse = frames.parse_header
        self._parse_annotations = frames.parse_annotations
        self._verify = frames.verify
        self._hmac_key = hmac_key
        self._max_message_size = max_message_size
        self.allowed_types = allowed_types
        self.large_section = max(1, large_section)
        # Bytes received but not yet consumed, as a list of chunks joined only once enough
        # have arrived (a header, annotations, a payload below large_section), and None (no
        # list at all) on the many idle connections.
        self._pending: list[bytes] | None = None
        self._pending_size = 0
        self._needed = self._header_size
        self._current: Any = None
        #: The large DATA section being filled in place, else None.
        self.section: _Section | None = None
        self.state = ReadState.HEADER

    @property
    def hmac_key(self) -> bytes | None:
        key = self._hmac_key
        return key() if callable(key) else key

    @property
    def max_message_size(self) -> int:
        limit = self._max_message_size
        if callable(limit):
            limit = limit()
        return self.frames.config.MAX_MESSAGE_SIZE if limit is None else limit

    @property
    def buffered(self) -> int:
        """How many received bytes are waiting to become (part of) a message."""
        section = self.section
        return self._pending_size + (section.filled if section is not None else 0)

    def feed(self, data: bytes) -> Iterator[Any]:
        """Add ``data`` to the stream and yield every message it completes."""
        if self.state is ReadState.BROKEN:
            return
        if self.section is not None:
            yield from self._fill(data, 0)
            return
        if self._pending is not None:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._needed:
                return
            data = b"".join(self._pending)
            self._pending, self._pending_size = None, 0
        offset, size = 0, len(data)
        while size - offset >= self._needed:
            try:
                if self.state is ReadState.HEADER:
                    message, offset = self._message_at(data, offset, size)
                else:
                    end = offset + self._needed
                    chunk = data[offset:end] if offset or end != size else data
                    offset = end
                    message = self._advance(chunk)
            except WireError:
                self.state = ReadState.BROKEN
                raise
            if message is not None:
                yield message
        if self.section is not None:  # a large payload began (_needed is out of reach)
            yield from self._fill(data, offset)
        elif offset < size:
            self._pending = [data[offset:]]
            self._pending_size = size - offset

    def _fill(self, data: bytes, offset: int) -> Iterator[Any]:
        """Copy ``data[offset:]`` into the large section; go on after it if it completes."""
        section = self.section
        assert section is not None
        offset += section.fill(data, offset)
        if section.filled < section.size:
            return
        yield self._section_complete()
        if offset < len(data):  # what follows the payload in this chunk (a copy of the rest:
            yield from self.feed(data[offset:])  # chunks from a socket are 64 KiB at most)

    def receive_buffer(self) -> memoryview | None:
        """The missing part of the large section being received, as a writable view; None
        when no large section is being received (then use :meth:`feed`).

        Write the bytes that follow in the stream into it (``sock.recv_into(view)``), release
        the view (``with`` it), then call :meth:`received` with the count. The view is valid
        only until that call: it must not be kept.
        """
        section = self.section
        if section is None:
            return None
        return section.view[section.filled:]

    def received(self, count: int) -> Any:
        """``count`` bytes were written into :meth:`receive_buffer`'s view: the message they
        complete, else None (more is needed)."""
        section = self.section
        if section is None or not 0 <= count <= section.size - section.filled:
            raise ValueError("received(%d) does not match the receive buffer" % count)
        section.filled += count
        if section.filled < section.size:
            return None
        return self._section_complete()

    def _section_complete(self) -> Any:
        section, self.section = self.section, None
        assert section is not None
        try:
            return self._data(section.take())  # (the section is gone: no second copy)
        except WireError:
            self.state = ReadState.BROKEN
            raise

    def _message_at(self, data: bytes, offset: int, size: int) -> tuple[Any, int]:
        """At a message boundary, with a header's worth of ``data`` from ``offset`` on: the
        message there and the offset after it, when all of it arrived (the usual small
        request: one header parse and two slices, no state in between); else ``(None, the
        offset after its header)``, the reader waiting for the rest section by section."""
        end = offset + self._header_size
        msg = self._parse_header(data[offset:end] if offset or end != size else data)
        annotations_end = end + msg.annotations_size
        data_end = annotations_end + msg.data_size
        if data_end > size or msg.data_size >= self.large_section:
            self._current = msg
            return self._expect(ReadState.ANNOTATIONS, msg.annotations_size), end
        if annotations_end > end:
            msg.annotations = self._annotations(data[end:annotations_end], msg)
        msg.data = data[annotations_end:data_end]
        verify = self._verify
        verify(msg, self.hmac_key)
        return msg, data_end

    def _annotations(self, chunk: bytes, msg: Any) -> dict[str, bytes]:
        try:
            parse = self._parse_annotations
            return parse(chunk)  # type: ignore[no-any-return]
        except WireError:
            raise
        except Exception as exc:  # the generation's ProtocolError
            raise WireError(exc, msg) from None

    def _advance(self, chunk: bytes) -> Any:
        """Consume exactly the chunk the current state asked for; move to the next state."""
        if self.state is ReadState.HEADER:
            self._current = self._parse_header(chunk)
            return self._expect(ReadState.ANNOTATIONS, self._current.annotations_size)
        msg = self._current
        assert msg is not None
        if self.state is ReadState.ANNOTATIONS:
            msg.annotations = self._annotations(chunk, msg)
            if msg.data_size >= self.large_section:
                self._open_section(msg)
                return None
            return self._expect(ReadState.DATA, msg.data_size)
        msg.data = chunk  # (as in _data, inline: the per-message hot path)
        self._current = None
        self.state, self._needed = ReadState.HEADER, self._header_size
        verify = self._verify
        verify(msg, self.hmac_key)
        return msg

    def _data(self, data: bytes) -> Any:
        """The current message's payload arrived: the message, checked."""
        msg = self._current
        assert msg is not None
        msg.data = data
        self._current = None
        self.state, self._needed = ReadState.HEADER, self._header_size
        verify = self._verify
        verify(msg, self.hmac_key)
        return msg

    def _expect(self, state: ReadState, size: int) -> Any:
        """Wait for ``size`` bytes in ``state``; an empty section is passed straight through."""
        self.state, self._needed = state, size
        return None if size else self._advance(b"")

    def _open_section(self, msg: Any) -> None:
        """A large payload follows: its buffer now (the header's size was checked), and
        ``_needed`` out of reach, so that :meth:`feed` fills the buffer instead of slicing."""
        try:
            self.section = _Section(msg.data_size)
        except MemoryError:
            raise WireError(self.frames.too_large(msg.data_size, None), msg) from None
        self.state, self._needed = ReadState.DATA, _OUT_OF_REACH

    def _parse_header(self, header: bytes) -> Any:
        parse = self._parse  # (a slot read, then a call: quicker than a method-style call)
        msg = parse(header)
        if msg.data_size < 0:
            raise WireError(self.frames.protocol_error("invalid message size"), msg)
        limit = self.max_message_size
        total = msg.data_size + msg.annotations_size
        if 0 < limit < total:
            raise WireError(self.frames.too_large(total, limit), msg)
        if msg.type not in self.allowed_types:
            raise WireError(self.frames.protocol_error(
                "invalid msg type %d received" % msg.type), msg)
        return msg

