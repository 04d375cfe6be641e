"""What each Pyro4 message means, for both roles: the codec ``PYRO4`` of Pyro4's protocol
(wire 48). Its Pyro5 sibling is :mod:`pyro.wire.pyro5`; the message meanings both produce
are the classes of :mod:`pyro.wire.events`.

:mod:`pyro.wire.framing` cuts a byte stream into :class:`~Pyro4.message.Message` frames;
this module is the one place that knows what their flags and payloads *mean*: the CONNECT
handshake and its answers (with metadata), INVOKE (call, batch, oneway, attribute access,
``SerializedBlob`` arguments), and the RESULT forms (value, exception with its remote
traceback, item stream opened). The server (:mod:`pyro.server.dispatch`) and the native
client (:mod:`pyro.client.protocol`) both use it, each for its side of every exchange:
what one encodes, the other decodes here.

A codec is an object (:data:`PYRO4`) rather than loose functions so that the second protocol
generation (Pyro5: another header, other flag bits and serializer ids, ``Pyro5.*`` classes
in payloads) is a second codec with the same methods (:data:`pyro.wire.pyro5.PYRO5`),
chosen per connection, without forking the server or the client. The rules of its methods:
decoders take a framed :class:`Message` and return one small object (or raise a Pyro4 error
the peer can be sent); encoders return the bytes of one complete frame. No I/O, no Twisted.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Mapping
from typing import Any

import Pyro4
import Pyro4.futures
from Pyro4 import errors, util
from Pyro4.configuration import config
from Pyro4.core import URI, SerializedBlob

from . import fastserpent
from .events import (
    REPLY_EXCEPTION,
    REPLY_RESULT,
    REPLY_STREAM,
    ConnectReply,
    ConnectRequest,
    Invoke,
    Request,
    SameInBoth,
    reply_of,
)
from .framing import (
    FLAGS_BATCH,
    FLAGS_COMPRESSED,
    FLAGS_EXCEPTION,
    FLAGS_ITEMSTREAMRESULT,
    FLAGS_KEEPSERIALIZED,
    FLAGS_META_ON_CONNECT,
    FLAGS_ONEWAY,
    HEADER_SIZE,
    LARGE_PAYLOAD,
    MSG_CONNECT,
    MSG_CONNECTFAIL,
    MSG_CONNECTOK,
    MSG_INVOKE,
    MSG_PING,
    MSG_RESULT,
    PYRO4_FRAMES,
    Frame,
    Message,
    MessageReader,
    encode,
    encode_frame,
)

__all__ = [
    "PYRO4",
    "ConnectReply",
    "ConnectRequest",
    "Invoke",
    "Pyro4Codec",
    "REPLY_EXCEPTION",
    "REPLY_RESULT",
    "REPLY_STREAM",
    "Request",
]

_MARSHAL_ID = util.MarshalSerializer.serializer_id


class Pyro4Codec(SameInBoth):
    """Pyro4 4.82's messages (wire protocol 48), both ways, for both roles."""

    name = "Pyro4"
    pyro_version = 4
    version = 48
    header_size = HEADER_SIZE
    frames = PYRO4_FRAMES
    #: the generation's own classes, for what the client and server build or check
    errors = errors
    uri_class = URI
    proxy_class = Pyro4.Proxy
    blob_class = SerializedBlob
    exception_wrapper = Pyro4.futures._ExceptionWrapper
    #: where the generation keeps per-thread call facts (``current_context``)
    context = Pyro4.current_context
    #: the config object its users change (``Pyro4.config``)
    config = config
    #: message types each role may receive, before and after the handshake
    server_handshake_types = frozenset({MSG_CONNECT})
    server_request_types = frozenset({MSG_INVOKE, MSG_PING})
    client_handshake_types = frozenset({MSG_CONNECTOK, MSG_CONNECTFAIL})
    client_reply_types = frozenset({MSG_RESULT})

    # -- serializers ----------------------------------------------------------------------

    def serializer_ids(self, names: Iterable[str]) -> frozenset[int]:
        """The ids of the serializers ``names`` (``Pyro4.config.SERIALIZERS_ACCEPTED``)."""
        return frozenset(util.get_serializer(name).serializer_id for name in names)

    def accepted_serializer(self, msg: Message, accepted_ids: frozenset[int]) -> Any:
        """The serializer of ``msg``, if the server accepts it (else Pyro4's SerializeError)."""
        if msg.serializer_id not in accepted_ids:
            raise errors.SerializeError(
                "message used serializer that is not accepted: %d" % msg.serializer_id)
        return util.get_serializer_by_id(msg.serializer_id)

    def get_serializer(self, name: str | None) -> Any:
        """The serializer ``name`` (``None``: ``Pyro4.config.SERIALIZER``, read now); an
        unknown one raises Pyro4's SerializeError, as a ``Pyro4.Proxy`` does."""
        return util.get_serializer(name or config.SERIALIZER)

    @staticmethod
    def wants_metadata() -> bool:
        """Whether a client asks for metadata in its CONNECT (``Pyro4.config.METADATA``)."""
        return bool(config.METADATA)

    @staticmethod
    def correlation_id(msg: Message) -> bytes | None:
        """The 16 bytes of the message's correlation id (annotation ``CORR``), if it has one.

        Both codecs take an outgoing correlation id as a ``CORR`` annotation of 16 bytes:
        Pyro4 sends it as that annotation, Pyro5 moves it into its header."""
        corr = msg.annotations.get("CORR")
        return bytes(corr) if corr is not None and len(corr) == 16 else None

    @staticmethod
    def _reply_serializer(serializer_id: int, accepted_ids: frozenset[int] | None = None) -> Any:
        """The serializer to answer in: the request's own if known (and accepted), else
        marshal, which every Pyro4 client has."""
        if accepted_ids is not None and serializer_id not in accepted_ids:
            serializer_id = _MARSHAL_ID
        try:
            return util.get_serializer_by_id(serializer_id)
        except errors.SerializeError:
            return util.get_serializer_by_id(_MARSHAL_ID)

    # -- what a message is ----------------------------------------------------------------

    def reader(self, **options: Any) -> MessageReader:
        """A :class:`~pyro.wire.framing.MessageReader` for this generation's frames."""
        return MessageReader(**options)

    # -- the server's side: reading requests ----------------------------------------------

    def read_connect(self, msg: Message, serializer: Any) -> ConnectRequest:
        data = fastserpent.deserialize_data(serializer, msg.data, msg.flags & FLAGS_COMPRESSED)
        return ConnectRequest(data["handshake"], data.get("object"),
                              bool(msg.flags & FLAGS_META_ON_CONNECT))

    def read_invoke(self, msg: Message, serializer: Any) -> Invoke:
        """The call in an INVOKE, or a clear SerializeError.

        Garbage that a serializer chokes on would otherwise travel back as whatever the
        serializer raised (a ``UnicodeDecodeError`` holding bytes, say), which the client's
        serializer may not even be able to rebuild.
        """
        flags = msg.flags
        try:
            if flags & FLAGS_KEEPSERIALIZED:
                # the servant gets the still-serialized payload (Pyro4's rule); what to call
                # travels in the BLBI annotation, as the payload is not decoded here
                blobinfo, object_id, method = marshal.loads(msg.annotations["BLBI"])
                vargs: Any = (SerializedBlob(blobinfo, msg, is_blob=True),)
                kwargs: Any = {}
            else:
                object_id, method, vargs, kwargs = fastserpent.deserialize_call(
                    serializer, msg.data, compressed=flags & FLAGS_COMPRESSED)
        except Exception as exc:
            raise errors.SerializeError("invalid call data: %s: %s" % (type(exc).__name__, exc))
        return Invoke(object_id, method, vargs, kwargs, bool(flags & FLAGS_ONEWAY),
                      bool(flags & FLAGS_BATCH))

    #: what :meth:`~pyro.wire.events.SameInBoth.plain_call` uses: the flags a plain call
    #: may carry, and the generation's serializers by id
    _PLAIN_FLAGS = 0
    _serializers_by_id = util._serializers_by_id

    def plain_result(self, msg: Message, serializer: Any, value: Any, corr_id: bytes,
                     hmac_key: bytes | None = None) -> bytes | None:
        """What :meth:`result` writes for a scalar ``value`` serpent writes as ``repr()``,
        with only the correlation id (``CORR``) as annotation; else None (then
        :meth:`result`)."""
        if config.COMPRESSION:
            return None
        data = fastserpent.serialize_scalar(serializer, value)
        if data is None or len(data) >= LARGE_PAYLOAD:
            return None
        return encode(MSG_RESULT, data, serializer.serializer_id, 0, msg.seq,
                      {"CORR": corr_id}, hmac_key)

    # -- the server's side: answers -------------------------------------------------------

    def connect_ok(self, msg: Message, serializer: Any, response: Any,
                   metadata: dict[str, Any] | None, annotations: Mapping[str, bytes],
                   hmac_key: bytes | None) -> Frame:
        """CONNECTOK carrying ``response``, and ``metadata`` unless it is None (the client
        asked for it with META_ON_CONNECT)."""
        flags = 0
        if metadata is not None:
            flags = FLAGS_META_ON_CONNECT
            response = {"handshake": response, "meta": metadata}
        data, compressed = serializer.serializeData(response, config.COMPRESSION)
        if compressed:
            flags |= FLAGS_COMPRESSED
        return encode_frame(MSG_CONNECTOK, data, serializer.serializer_id, flags, msg.seq,
                            annotations, hmac_key)

    def connect_fail(self, msg: Message | None, reason: Any, accepted_ids: frozenset[int],
                     annotations: Mapping[str, bytes], hmac_key: bytes | None) -> bytes:
        """CONNECTFAIL carrying ``str(reason)``, in the request's serializer if accepted."""
        serializer = self._reply_serializer(
            msg.serializer_id if msg is not None else _MARSHAL_ID, accepted_ids)
        data, compressed = serializer.serializeData(str(reason), False)
        return encode(MSG_CONNECTFAIL, data, serializer.serializer_id,
                      FLAGS_COMPRESSED if compressed else 0, msg.seq if msg is not None else 0,
                      annotations, hmac_key)

    def pong(self, msg: Message, annotations: Mapping[str, bytes],
             hmac_key: bytes | None) -> bytes:
        return encode(MSG_PING, b"pong", msg.serializer_id, 0, msg.seq, annotations, hmac_key)

    def result(self, msg: Message, serializer: Any, value: Any, batch: bool,
               annotations: Mapping[str, bytes], hmac_key: bytes | None) -> Frame:
        """RESULT carrying a call's value (a batch's list of values when ``batch``); a large
        payload comes as ``(head, payload)`` (see :func:`~pyro.wire.framing.encode_frame`)."""
        data = None if config.COMPRESSION else fastserpent.serialize_scalar(serializer, value)
        compressed = False
        if data is None:
            data, compressed = serializer.serializeData(value, compress=config.COMPRESSION)
        flags = (FLAGS_COMPRESSED if compressed else 0) | (FLAGS_BATCH if batch else 0)
        return encode_frame(MSG_RESULT, data, serializer.serializer_id, flags, msg.seq,
                            annotations, hmac_key)

    def exception(self, msg: Message, exc: BaseException, tblines: list[str] | None,
                  annotations: Mapping[str, bytes], hmac_key: bytes | None,
                  stream_id: str | None = None) -> Frame:
        """RESULT with EXCEPTION: ``exc`` with ``_pyroTraceback`` (the server-side traceback
        lines), as Pyro4's ``_sendExceptionResponse`` builds it. An exception the serializer
        cannot write travels as a ``PyroError`` that says so. With ``stream_id`` it is
        Pyro4's notice that the call returned an item stream (ITEMSTREAMRESULT, ``STRM``)."""
        serializer = self._reply_serializer(msg.serializer_id)
        exc._pyroTraceback = tblines  # type: ignore[attr-defined]
        try:
            data, compressed = serializer.serializeData(exc)
        except Exception as problem:
            substitute = errors.PyroError(
                "Error serializing exception: %s. Original exception: %s: %s"
                % (problem, type(exc), exc))
            substitute._pyroTraceback = tblines  # type: ignore[attr-defined]
            data, compressed = serializer.serializeData(substitute)
        flags = FLAGS_EXCEPTION | (FLAGS_COMPRESSED if compressed else 0)
        if stream_id is not None:
            flags |= FLAGS_ITEMSTREAMRESULT
            if stream_id:
                annotations = {"STRM": stream_id.encode(), **annotations}
        return encode_frame(MSG_RESULT, data, serializer.serializer_id, flags, msg.seq,
                            annotations, hmac_key)

    def stream_opened(self, msg: Message, stream_id: str | None,
                      annotations: Mapping[str, bytes], hmac_key: bytes | None) -> Frame:
        """The answer to a call that returned an iterator: an item stream ``stream_id`` is
        open (``None``: streaming is off, and the client is told so)."""
        notice = errors.ProtocolError("result of call is an iterator")
        return self.exception(msg, notice, None, annotations, hmac_key, stream_id or "")

    # -- the client's side: requests ------------------------------------------------------

    def connect(self, serializer: Any, handshake: Any, object_id: str | None,
                annotations: Mapping[str, bytes], hmac_key: bytes | None,
                seq: int = 0) -> bytes:
        """CONNECT with the client's handshake data; with ``object_id`` (Pyro4's METADATA
        on), it asks for that object's metadata in the answer."""
        data: dict[str, Any] = {"handshake": handshake}
        flags = 0
        if object_id is not None:
            data["object"] = object_id
            flags = FLAGS_META_ON_CONNECT
        payload, compressed = serializer.serializeData(data, config.COMPRESSION)
        if compressed:
            flags |= FLAGS_COMPRESSED
        return encode(MSG_CONNECT, payload, serializer.serializer_id, flags, seq, annotations,
                      hmac_key)

    def request(self, serializer: Any, object_id: str, method: str, vargs: Any, kwargs: Any,
                batch: bool = False) -> Request:
        """Serialize a call (for a batch: ``vargs`` is the list of ``(method, vargs,
        kwargs)``). A ``SerializedBlob`` as the first argument is sent the way Pyro4's
        ``Proxy._pyroInvoke`` sends it: see :meth:`_blob_request`. Whether it is oneway is
        decided when it is framed (:meth:`invoke`), as metadata saying so may come later, and
        so are the caller's annotations."""
        flags = FLAGS_BATCH if batch else 0
        annotations: dict[str, bytes] = {}
        if vargs and isinstance(vargs[0], SerializedBlob):
            return self._blob_request(serializer, object_id, method, vargs, kwargs, flags,
                                      annotations)
        data, compressed = serializer.serializeCall(object_id, method, vargs, kwargs,
                                                    compress=config.COMPRESSION)
        if compressed:
            flags |= FLAGS_COMPRESSED
        return Request(data, serializer, flags, annotations)

    def _blob_request(self, serializer: Any, object_id: str, method: str, vargs: Any,
                      kwargs: Any, flags: int, annotations: dict[str, bytes]) -> Request:
        """Pyro4's ``KEEPSERIALIZED`` request.

        The blob must be the only argument (else ``SerializeError``, Pyro4's message). The
        ``BLBI`` annotation carries ``marshal.dumps((blob.info, object_id, method))``, since
        the receiving daemon does not deserialize the data to find them. A blob that holds a
        received message (a servant forwarding what it was given) is passed on as it is:
        its data, its compression, and its serializer (Pyro4 would label it with the proxy's
        serializer instead, which the receiver cannot decode when the two differ); else the
        blob's data is serialized as the call's ``vargs``.
        """
        if len(vargs) > 1 or kwargs:
            raise errors.SerializeError("if SerializedBlob is used, it must be the only argument")
        blob = vargs[0]
        flags |= FLAGS_KEEPSERIALIZED
        annotations["BLBI"] = marshal.dumps((blob.info, object_id, method))
        if blob._contains_blob:
            received = blob._data
            data = received.data
            compressed = received.flags & FLAGS_COMPRESSED
            serializer = util.get_serializer_by_id(received.serializer_id)
        else:
            data, compressed = serializer.serializeCall(object_id, method, blob._data, kwargs,
                                                        compress=config.COMPRESSION)
        if compressed:
            flags |= FLAGS_COMPRESSED
        return Request(data, serializer, flags, annotations)

    def invoke(self, request: Request, seq: int, hmac_key: bytes | None, oneway: bool = False,
               annotations: Mapping[str, bytes] | None = None) -> bytes:
        """The INVOKE frame of a prepared request (``oneway``: the server sends no reply),
        with the caller's ``annotations`` (``CORR`` and the like) beside the request's own."""
        flags = request.flags | FLAGS_ONEWAY if oneway else request.flags
        if request.annotations:
            annotations = {**(annotations or {}), **request.annotations}
        return encode(MSG_INVOKE, request.data, request.serializer.serializer_id, flags, seq,
                      annotations, hmac_key)

    # -- the client's side: reading answers -----------------------------------------------

    def read_connect_reply(self, msg: Message) -> ConnectReply:
        response: Any = "?"
        if msg.data:
            response = fastserpent.deserialize_data(
                util.get_serializer_by_id(msg.serializer_id), msg.data,
                compressed=msg.flags & FLAGS_COMPRESSED)
        if msg.type == MSG_CONNECTFAIL:
            return ConnectReply(False, response, None)
        metadata = None
        if msg.flags & FLAGS_META_ON_CONNECT:
            metadata, response = response["meta"], response["handshake"]
        return ConnectReply(True, response, metadata)

    def read_reply(self, msg: Message, serializer: Any) -> tuple[str, Any]:
        """``(REPLY_RESULT, value)``, ``(REPLY_EXCEPTION, exception)`` or ``(REPLY_STREAM,
        stream id)`` for the answer to a call made with ``serializer``. A reply that breaks
        the rules (another serializer, a stream without an id, an "exception" that is not
        one) comes back as an exception the caller can be given."""
        if msg.serializer_id != serializer.serializer_id:
            return REPLY_EXCEPTION, errors.SerializeError(
                "invalid serializer in response: %d" % msg.serializer_id)
        flags = msg.flags
        data = fastserpent.deserialize_data(serializer, msg.data,
                                            compressed=flags & FLAGS_COMPRESSED)
        return reply_of(data, bool(flags & FLAGS_ITEMSTREAMRESULT),
                        bool(flags & FLAGS_EXCEPTION), msg.annotations, errors)


#: The codec of Pyro4 4.82 (wire protocol 48).
PYRO4 = Pyro4Codec()
