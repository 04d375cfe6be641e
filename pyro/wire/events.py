"""What Pyro messages mean, independent of the protocol generation: one small class each.

A codec (:data:`pyro.wire.pyro4.PYRO4`, :data:`pyro.wire.pyro5.PYRO5`) decodes frames into
these and encodes them back; the server and the client only ever see these objects and the
codec's methods, never a flag bit, so both generations share one dispatcher and one client.
"""

from __future__ import annotations

from typing import Any

from . import fastserpent

__all__ = [
    "ConnectReply",
    "ConnectRequest",
    "Invoke",
    "REPLY_EXCEPTION",
    "REPLY_RESULT",
    "REPLY_STREAM",
    "Request",
    "SameInBoth",
    "reply_of",
]

# What both generations number alike (Pyro4.message and Pyro5.protocol; the tests check it):
# the message types, and the flag bits ONEWAY and COMPRESSED.
MSG_CONNECT, MSG_INVOKE, MSG_PING = 1, 4, 6
FLAGS_COMPRESSED, FLAGS_ONEWAY = 1 << 1, 1 << 2

#: What a codec's ``read_reply`` found in a RESULT message.
REPLY_RESULT = "result"  #: the call's value
REPLY_EXCEPTION = "exception"  #: the exception the call raised (``_pyroTraceback`` attached)
REPLY_STREAM = "stream"  #: the call returned an iterator: the value is the item stream's id


class ConnectRequest:
    """A client's CONNECT, as the server reads it."""

    __slots__ = ("handshake", "object_id", "wants_metadata")

    def __init__(self, handshake: Any, object_id: str | None, wants_metadata: bool):
        self.handshake = handshake  #: what the client's ``_pyroHandshake`` sent
        #: the object the client is connecting for (absent when its METADATA is off)
        self.object_id = object_id
        self.wants_metadata = wants_metadata  #: answer with the object's metadata


class ConnectReply:
    """The server's answer to CONNECT, as the client reads it."""

    __slots__ = ("accepted", "response", "metadata")

    def __init__(self, accepted: bool, response: Any, metadata: dict[str, Any] | None):
        self.accepted = accepted
        #: ``validateHandshake``'s value when accepted; the reason (a string) when refused
        self.response = response
        self.metadata = metadata  #: the object's metadata, if the client asked for it


class Invoke:
    """An INVOKE, as the server reads it.

    ``method`` ``"__getattr__"``/``"__setattr__"`` with ``vargs`` ``(name,)``/
    ``(name, value)`` is attribute access; with ``batch`` set, ``vargs`` is the list of
    ``(method, vargs, kwargs)`` calls; a ``SerializedBlob`` argument (``blob``) is handed
    to the servant still serialized, as the only argument.
    """

    __slots__ = ("object_id", "method", "vargs", "kwargs", "oneway", "batch")

    def __init__(self, object_id: str, method: str, vargs: Any, kwargs: Any, oneway: bool,
                 batch: bool):
        self.object_id = object_id
        self.method = method
        self.vargs = vargs
        self.kwargs = kwargs
        self.oneway = oneway  #: the client wants no reply
        self.batch = batch


class Request:
    """A call a client prepared: serialized when it is made (as Pyro4's proxy captures the
    arguments then), framed with its sequence number when it is sent. ``flags`` and
    ``annotations`` (``BLBI`` for a blob) are the codec's business (and so are their bits:
    Pyro4's and Pyro5's differ)."""

    __slots__ = ("data", "serializer", "flags", "annotations")

    def __init__(self, data: bytes, serializer: Any, flags: int, annotations: dict[str, bytes]):
        self.data = data
        self.serializer = serializer  #: the serializer the data is in; the reply must match
        self.flags = flags
        self.annotations = annotations


def reply_of(value: Any, stream: bool, exception: bool, annotations: Any,
             errors: Any) -> tuple[str, Any]:
    """What a RESULT says, once its payload is decoded: ``(REPLY_RESULT, value)``,
    ``(REPLY_EXCEPTION, exception)`` or ``(REPLY_STREAM, stream id)``, the same rules in
    both generations (the codec reads its own flag bits for ``stream`` and ``exception``
    and passes its ``errors`` module). A reply that breaks them (a stream without an id,
    an "exception" that is not one) comes back as an exception the caller can be given."""
    if stream:
        stream_id = bytes(annotations.get("STRM", b"")).decode()
        if not stream_id:
            return REPLY_EXCEPTION, errors.ProtocolError(
                "result of call is an iterator, but the server is not configured to "
                "allow streaming")
        return REPLY_STREAM, stream_id
    if exception:
        if isinstance(value, BaseException):
            return REPLY_EXCEPTION, value  # _pyroTraceback came along as an attribute
        return REPLY_EXCEPTION, errors.ProtocolError(
            "exception reply is not an exception: %r" % (value,))
    return REPLY_RESULT, value


class SameInBoth:
    """The codec methods whose answer depends only on what both generations number alike
    (message types, ONEWAY, COMPRESSED): a base of ``Pyro4Codec`` and ``Pyro5Codec``."""

    @staticmethod
    def is_connect(msg: Any) -> bool:
        return msg.type == MSG_CONNECT

    @staticmethod
    def is_ping(msg: Any) -> bool:
        return msg.type == MSG_PING

    @staticmethod
    def is_oneway(msg: Any) -> bool:
        """The request owes no reply (known from the header, before the payload is read)."""
        return bool(msg.flags & FLAGS_ONEWAY)

    @staticmethod
    def may_hold_proxies(msg: Any) -> bool:
        """Whether a reply's value can contain a proxy (``Pyro4.Proxy``, ``Pyro5.client.
        Proxy``: autoproxies): every serializer of both names the class, so an uncompressed
        payload without ``Proxy`` in it holds none."""
        return bool(msg.flags & FLAGS_COMPRESSED) or b"Proxy" in msg.data

    #: (each codec's: the flags a plain call may carry, its serializers by id)
    _PLAIN_FLAGS = 0
    _serializers_by_id: dict[int, Any] = {}

    def plain_call(self, msg: Any, accepted_ids: frozenset[int]) -> Any:
        """``(object_id, method, vargs, serializer)`` when ``msg`` is the most common request,
        else None: a call (no oneway, batch, blob or compression) in an accepted serpent
        serializer, scalar arguments, no keywords (:func:`~pyro.wire.fastserpent.
        plain_call`). What ``read_invoke`` would read for it, with less work: the server's
        shortcut for small calls; anything else takes the general path."""
        if (msg.type != MSG_INVOKE or msg.flags & ~self._PLAIN_FLAGS
                or msg.serializer_id not in accepted_ids):
            return None
        serializer = self._serializers_by_id.get(msg.serializer_id)
        call = fastserpent.plain_call(serializer, msg.data)
        if call is None:
            return None
        return call[0], call[1], call[2], serializer
