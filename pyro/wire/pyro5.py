"""What each Pyro5 message means, for both roles: the codec ``PYRO5`` (wire protocol 502).

The same methods as :data:`pyro.wire.pyro4.PYRO4`, so the server and the client pick a
codec per connection and do not otherwise care which generation they speak. Pyro5's own
pieces do the work: its serializers (``Pyro5.serializers``), ``URI``, ``Proxy``,
``SerializedBlob``, errors and ``current_context``; the frames are :mod:`pyro.wire.framing5`.

What differs from Pyro4 (checked against Pyro5 5.17's ``protocol.py``, ``client.py``,
``server.py`` and ``serializers.py``):

- Flags: EXCEPTION 1, COMPRESSED 2, ONEWAY 4 and BATCH 8 are as in Pyro4, but 16 is
  ITEMSTREAMRESULT (Pyro4: META_ON_CONNECT), 32 is KEEPSERIALIZED (Pyro4: ITEMSTREAMRESULT)
  and 64 is CORR_ID (Pyro4: KEEPSERIALIZED). Pyro5 has no META_ON_CONNECT flag: the
  CONNECT always carries ``{"handshake", "object"}`` and CONNECTOK always answers
  ``{"handshake", "meta"}``.
- Serializer ids: serpent 1, marshal 2, json 3, msgpack 4 (Pyro4: json 2, marshal 3,
  pickle 4, dill 5, msgpack 6). There is no pickle, dill or cloudpickle.
- The correlation id travels in the header (flag CORR_ID), not as a ``CORR`` annotation.
  This codec takes and gives it in the form both roles already use for Pyro4: a ``CORR``
  annotation of 16 bytes among the outgoing annotations is moved into the header, and
  :meth:`Pyro5Codec.correlation_id` reads it from a received header.
- Compression belongs to the message, not the serializer: a payload over 100 bytes is
  zlib-compressed (level 4) when ``Pyro5.config.COMPRESSION`` is on, as ``SendingMessage``
  does; annotations are never compressed.
- No HMAC (Pyro5 relies on TLS): the ``hmac_key`` parameters exist for the common API and
  are ignored.
- Payloads name ``Pyro5.core.URI``, ``Pyro5.client.Proxy``, ``Pyro5.errors.*`` and
  ``Pyro5.core._ExceptionWrapper`` (a batch's failed call); the size limit is
  ``Pyro5.config.MAX_MESSAGE_SIZE`` (1 GiB by default).
"""

from __future__ import annotations

import marshal
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import Pyro5.callcontext
import Pyro5.client
import Pyro5.core
from Pyro5 import config, errors, serializers

from . import fastserpent
from .events import (
    REPLY_EXCEPTION,
    ConnectReply,
    ConnectRequest,
    Invoke,
    Request,
    SameInBoth,
    reply_of,
)
from .framing import LARGE_PAYLOAD, Frame, MessageReader
from .framing5 import (
    FLAGS_BATCH,
    FLAGS_COMPRESSED,
    FLAGS_CORR_ID,
    FLAGS_EXCEPTION,
    FLAGS_ITEMSTREAMRESULT,
    FLAGS_KEEPSERIALIZED,
    FLAGS_ONEWAY,
    HEADER_SIZE,
    MSG_CONNECT,
    MSG_CONNECTFAIL,
    MSG_CONNECTOK,
    MSG_INVOKE,
    MSG_PING,
    MSG_RESULT,
    PROTOCOL_VERSION,
    PYRO5_FRAMES,
    encode,
    encode_frame,
)

__all__ = ["PYRO5", "Pyro5Codec"]

_MARSHAL_ID = serializers.MarshalSerializer.serializer_id  # 2
_COMPRESS_ABOVE = 100  # bytes: Pyro5's SendingMessage compresses longer payloads
_COMPRESS_LEVEL = 4

fastserpent.register_serpent_serializer(serializers.SerpentSerializer)


def _compress(data: bytes, flags: int) -> tuple[bytes, int]:
    """Pyro5's rule: with ``config.COMPRESSION``, a payload over 100 bytes is compressed."""
    flags &= ~FLAGS_COMPRESSED
    if config.COMPRESSION and len(data) > _COMPRESS_ABOVE:
        return zlib.compress(data, _COMPRESS_LEVEL), flags | FLAGS_COMPRESSED
    return data, flags


def _payload(msg: Any) -> bytes:
    """A received message's data, decompressed if it came compressed."""
    if msg.flags & FLAGS_COMPRESSED:
        return zlib.decompress(msg.data)
    return msg.data


def _split_corr(annotations: Mapping[str, bytes] | None
                ) -> tuple[Mapping[str, bytes] | None, bytes | None]:
    """The annotations without a 16-byte ``CORR``, and that correlation id (for the header)."""
    if not annotations:
        return annotations, None
    corr = annotations.get("CORR")
    if corr is None or len(corr) != 16:
        return annotations, None
    if len(annotations) == 1:  # (a reply's usual annotations: the correlation id alone)
        return None, bytes(corr)
    rest = {key: value for key, value in annotations.items() if key != "CORR"}
    return rest, bytes(corr)


def _serializer_by_id(serializer_id: int) -> Any:
    try:
        return serializers.serializers_by_id[serializer_id]
    except KeyError:
        raise errors.SerializeError("unknown serializer id: %d" % serializer_id) from None


class Pyro5Codec(SameInBoth):
    """Pyro5 5.x's messages (wire protocol 502), both ways, for both roles."""

    name = "Pyro5"
    pyro_version = 5
    version = PROTOCOL_VERSION
    header_size = HEADER_SIZE
    frames = PYRO5_FRAMES
    #: the generation's own classes, for what the client and server build or check
    errors = errors
    uri_class = Pyro5.core.URI
    proxy_class = Pyro5.client.Proxy
    blob_class = Pyro5.client.SerializedBlob
    exception_wrapper = Pyro5.core._ExceptionWrapper
    #: where the generation keeps per-thread call facts
    context = Pyro5.callcontext.current_context
    #: the config object its users change (``Pyro5.config``)
    config = config
    #: message types each role may receive, before and after the handshake
    server_handshake_types = frozenset({MSG_CONNECT})
    server_request_types = frozenset({MSG_INVOKE, MSG_PING})
    client_handshake_types = frozenset({MSG_CONNECTOK, MSG_CONNECTFAIL})
    client_reply_types = frozenset({MSG_RESULT})

    # -- serializers ----------------------------------------------------------------------

    def serializer_ids(self, names: Iterable[str]) -> frozenset[int]:
        """The ids of the serializers ``names`` that Pyro5 has (Pyro4's pickle and dill,
        say, have no Pyro5 counterpart and are left out)."""
        return frozenset(serializers.serializers[name].serializer_id for name in names
                         if name in serializers.serializers)

    def accepted_serializer(self, msg: Any, accepted_ids: frozenset[int]) -> Any:
        """The serializer of ``msg``, if the server accepts it (else Pyro5's SerializeError)."""
        if msg.serializer_id not in accepted_ids:
            raise errors.SerializeError(
                "message used serializer that is not accepted: %d" % msg.serializer_id)
        return _serializer_by_id(msg.serializer_id)

    def get_serializer(self, name: str | None) -> Any:
        """The serializer ``name`` (``None``: ``Pyro5.config.SERIALIZER``, read now)."""
        name = name or config.SERIALIZER
        try:
            return serializers.serializers[name]
        except KeyError:
            raise errors.SerializeError(
                "serializer '%s' is unknown or not available" % name) from None

    @staticmethod
    def wants_metadata() -> bool:
        """Pyro5 always sends the object id in CONNECT and always gets its metadata back."""
        return True

    @staticmethod
    def correlation_id(msg: Any) -> bytes | None:
        """The 16 bytes of the correlation id in the message's header, if it carries one."""
        return bytes(msg.corr_id) if msg.flags & FLAGS_CORR_ID else None

    @staticmethod
    def _reply_serializer(serializer_id: int, accepted_ids: frozenset[int] | None = None) -> Any:
        """The serializer to answer in: the request's own if known (and accepted), else
        marshal, which every Pyro5 client has."""
        if accepted_ids is not None and serializer_id not in accepted_ids:
            serializer_id = _MARSHAL_ID
        return serializers.serializers_by_id.get(
            serializer_id, serializers.serializers_by_id[_MARSHAL_ID])

    # -- what a message is ----------------------------------------------------------------

    def reader(self, **options: Any) -> MessageReader:
        """A :class:`~pyro.wire.framing.MessageReader` for Pyro5 frames (no HMAC: an
        ``hmac_key`` option is dropped)."""
        options.pop("hmac_key", None)
        return MessageReader(frames=PYRO5_FRAMES, **options)

    # -- the server's side: reading requests ----------------------------------------------

    def read_connect(self, msg: Any, serializer: Any) -> ConnectRequest:
        """The handshake: Pyro5 always names the object, and always gets its metadata."""
        try:
            data = fastserpent.deserialize_data(serializer, _payload(msg))
            return ConnectRequest(data["handshake"], data.get("object"), True)
        except Exception as exc:
            raise errors.SerializeError(
                "invalid handshake data: %s: %s" % (type(exc).__name__, exc)) from None

    def read_invoke(self, msg: Any, serializer: Any) -> Invoke:
        """The call in an INVOKE, or a clear SerializeError (see the Pyro4 codec's).

        With KEEPSERIALIZED the servant gets a ``Pyro5.api.SerializedBlob`` holding the
        message itself, its data decompressed (as Pyro5's own reader leaves it), since the
        blob's ``deserialized()`` loads ``msg.data`` as it is.
        """
        flags = msg.flags
        try:
            if flags & FLAGS_KEEPSERIALIZED:
                blobinfo, object_id, method = marshal.loads(msg.annotations["BLBI"])
                if flags & FLAGS_COMPRESSED:
                    msg.data = zlib.decompress(msg.data)
                    msg.flags = flags & ~FLAGS_COMPRESSED
                    msg.data_size = len(msg.data)
                vargs: Any = (Pyro5.client.SerializedBlob(blobinfo, msg, is_blob=True),)
                kwargs: Any = {}
            else:
                object_id, method, vargs, kwargs = fastserpent.deserialize_call(
                    serializer, _payload(msg))
        except Exception as exc:
            raise errors.SerializeError(
                "invalid call data: %s: %s" % (type(exc).__name__, exc)) from None
        return Invoke(object_id, method, vargs, kwargs, bool(flags & FLAGS_ONEWAY),
                      bool(flags & FLAGS_BATCH))

    #: what :meth:`~pyro.wire.events.SameInBoth.plain_call` uses: the flags a plain call
    #: may carry, and the generation's serializers by id
    _PLAIN_FLAGS = FLAGS_CORR_ID
    _serializers_by_id = serializers.serializers_by_id

    def plain_result(self, msg: Any, serializer: Any, value: Any, corr_id: bytes,
                     hmac_key: bytes | None = None) -> bytes | None:
        """What :meth:`result` writes for a scalar ``value`` serpent writes as ``repr()``,
        with only the correlation id as annotation; else None (then :meth:`result`)."""
        data = fastserpent.serialize_scalar(serializer, value)
        if data is None or len(data) > _COMPRESS_ABOVE and (
                config.COMPRESSION or len(data) >= LARGE_PAYLOAD):
            return None
        return encode(MSG_RESULT, data, serializer.serializer_id, 0, msg.seq, None, corr_id)

    # -- the server's side: answers -------------------------------------------------------

    @staticmethod
    def _frame(msg_type: int, data: bytes, serializer_id: int, flags: int, seq: int,
               annotations: Mapping[str, bytes] | None) -> Frame:
        """A frame as ``SendingMessage`` builds it: compressed by Pyro5's rule, the
        correlation id (a ``CORR`` annotation) moved into the header; a large payload as
        ``(head, payload)``."""
        data, flags = _compress(data, flags)
        rest, corr_id = _split_corr(annotations)
        return encode_frame(msg_type, data, serializer_id, flags, seq, rest, corr_id)

    def connect_ok(self, msg: Any, serializer: Any, response: Any,
                   metadata: dict[str, Any] | None, annotations: Mapping[str, bytes],
                   hmac_key: bytes | None = None) -> Frame:
        """CONNECTOK with ``{"handshake": response, "meta": metadata}``, always (Pyro5's
        daemon always answers with the object's metadata)."""
        data = serializer.dumps({"handshake": response, "meta": metadata})
        return self._frame(MSG_CONNECTOK, data, serializer.serializer_id, 0, msg.seq,
                           annotations)

    def connect_fail(self, msg: Any, reason: Any, accepted_ids: frozenset[int],
                     annotations: Mapping[str, bytes], hmac_key: bytes | None = None) -> bytes:
        """CONNECTFAIL carrying ``str(reason)``, in the request's serializer if accepted,
        else marshal (``msg`` None: nothing of the request could be read)."""
        serializer = self._reply_serializer(
            msg.serializer_id if msg is not None else _MARSHAL_ID, accepted_ids)
        data, flags = _compress(serializer.dumps(str(reason)), 0)
        rest, corr_id = _split_corr(annotations)
        return encode(MSG_CONNECTFAIL, data, serializer.serializer_id, flags,
                      msg.seq if msg is not None else 0, rest, corr_id)

    def pong(self, msg: Any, annotations: Mapping[str, bytes],
             hmac_key: bytes | None = None) -> bytes:
        rest, corr_id = _split_corr(annotations)
        return encode(MSG_PING, b"pong", msg.serializer_id, 0, msg.seq, rest, corr_id)

    def result(self, msg: Any, serializer: Any, value: Any, batch: bool,
               annotations: Mapping[str, bytes], hmac_key: bytes | None = None) -> Frame:
        """RESULT carrying a call's value (a batch's list of values when ``batch``)."""
        data = fastserpent.serialize_scalar(serializer, value)  # (serpent's output, faster)
        if data is None:
            data = serializer.dumps(value)
        return self._frame(MSG_RESULT, data, serializer.serializer_id,
                           FLAGS_BATCH if batch else 0, msg.seq, annotations)

    def exception(self, msg: Any, exc: BaseException, tblines: list[str] | None,
                  annotations: Mapping[str, bytes], hmac_key: bytes | None = None,
                  stream_id: str | None = None) -> Frame:
        """RESULT with EXCEPTION, as Pyro5's ``_sendExceptionResponse`` builds it: ``exc``
        with ``_pyroTraceback``; one the serializer cannot write becomes a ``PyroError`` that
        says so. With ``stream_id``: the notice that an item stream is open
        (ITEMSTREAMRESULT, ``STRM`` first among the annotations, as Pyro5 puts it)."""
        serializer = self._reply_serializer(msg.serializer_id)
        exc._pyroTraceback = tblines  # type: ignore[attr-defined]
        try:
            data = serializer.dumps(exc)
        except Exception as problem:
            substitute = errors.PyroError(
                "Error serializing exception: %s. Original exception: %s: %s"
                % (problem, type(exc), exc))
            substitute._pyroTraceback = tblines  # type: ignore[attr-defined]
            data = serializer.dumps(substitute)
        flags = FLAGS_EXCEPTION
        if stream_id is not None:
            flags |= FLAGS_ITEMSTREAMRESULT
            if stream_id:
                annotations = {"STRM": stream_id.encode(), **annotations}
        return self._frame(MSG_RESULT, data, serializer.serializer_id, flags, msg.seq,
                           annotations)

    def stream_opened(self, msg: Any, stream_id: str | None,
                      annotations: Mapping[str, bytes], hmac_key: bytes | None = None) -> Frame:
        """The answer to a call that returned an iterator: item stream ``stream_id`` is open
        (``None``: streaming is off, and the client is told so)."""
        notice = errors.ProtocolError("result of call is an iterator")
        return self.exception(msg, notice, None, annotations, None, stream_id or "")

    # -- the client's side: requests ------------------------------------------------------

    def connect(self, serializer: Any, handshake: Any, object_id: str | None,
                annotations: Mapping[str, bytes], hmac_key: bytes | None = None,
                seq: int = 0) -> bytes:
        """CONNECT with ``{"handshake": handshake, "object": object_id}``, as Pyro5's proxy
        sends it (always with the object: the answer always carries its metadata)."""
        data, flags = _compress(
            serializer.dumps({"handshake": handshake, "object": object_id}), 0)
        rest, corr_id = _split_corr(annotations)
        return encode(MSG_CONNECT, data, serializer.serializer_id, flags, seq, rest, corr_id)

    def request(self, serializer: Any, object_id: str, method: str, vargs: Any, kwargs: Any,
                batch: bool = False) -> Request:
        """Serialize a call now (for a batch, ``vargs`` is the list of ``(method, vargs,
        kwargs)``), compressed by Pyro5's rule; a ``Pyro5.api.SerializedBlob`` as the first
        argument goes as Pyro5's proxy sends it (:meth:`_blob_request`). A batch's
        ``kwargs`` go as ``{}`` (Pyro5's proxy sends None, which its marshal serializer
        cannot write; its daemon ignores them)."""
        flags = FLAGS_BATCH if batch else 0
        if batch and kwargs is None:
            kwargs = {}
        annotations: dict[str, bytes] = {}
        if vargs and isinstance(vargs[0], Pyro5.client.SerializedBlob):
            return self._blob_request(serializer, object_id, method, vargs, kwargs, flags,
                                      annotations)
        data, flags = _compress(serializer.dumpsCall(object_id, method, vargs, kwargs), flags)
        return Request(data, serializer, flags, annotations)

    def _blob_request(self, serializer: Any, object_id: str, method: str, vargs: Any,
                      kwargs: Any, flags: int, annotations: dict[str, bytes]) -> Request:
        """Pyro5's KEEPSERIALIZED request: the blob must be the only argument; ``BLBI``
        carries ``marshal.dumps((blob.info, object_id, method))``. A blob holding a
        received message is passed on as it is, labelled with that message's serializer
        (Pyro5 labels it with the proxy's, which the receiver cannot decode when the two
        differ), else the blob's data is serialized as the call's ``vargs``."""
        if len(vargs) > 1 or kwargs:
            raise errors.SerializeError("if SerializedBlob is used, it must be the only argument")
        blob = vargs[0]
        flags |= FLAGS_KEEPSERIALIZED
        annotations["BLBI"] = marshal.dumps((blob.info, object_id, method))
        if blob._contains_blob:
            received = blob._data
            data = bytes(received.data)
            if received.flags & FLAGS_COMPRESSED:
                data = zlib.decompress(data)
            serializer = _serializer_by_id(received.serializer_id)
        else:
            data = serializer.dumpsCall(object_id, method, blob._data, kwargs)
        data, flags = _compress(data, flags)
        return Request(data, serializer, flags, annotations)

    def invoke(self, request: Request, seq: int, hmac_key: bytes | None = None,
               oneway: bool = False, annotations: Mapping[str, bytes] | None = None) -> bytes:
        """The INVOKE frame of a prepared request (``oneway``: no reply), with the caller's
        annotations beside the request's own; a 16-byte ``CORR`` among them goes into the
        header as the correlation id."""
        flags = request.flags | FLAGS_ONEWAY if oneway else request.flags
        if request.annotations:
            annotations = {**(annotations or {}), **request.annotations}
        rest, corr_id = _split_corr(annotations)
        return encode(MSG_INVOKE, request.data, request.serializer.serializer_id, flags, seq,
                      rest, corr_id)

    # -- the client's side: reading answers -----------------------------------------------

    def read_connect_reply(self, msg: Any) -> ConnectReply:
        """CONNECTOK (always ``{"handshake", "meta"}``) or CONNECTFAIL (a reason string)."""
        response: Any = "?"
        if msg.data:
            response = fastserpent.deserialize_data(_serializer_by_id(msg.serializer_id),
                                                    _payload(msg))
        if msg.type == MSG_CONNECTFAIL:
            return ConnectReply(False, response, None)
        if not isinstance(response, dict) or "handshake" not in response:
            raise errors.ProtocolError("invalid CONNECTOK data: %r" % (response,))
        return ConnectReply(True, response["handshake"], response.get("meta"))

    def read_reply(self, msg: Any, serializer: Any) -> tuple[str, Any]:
        """``(REPLY_RESULT, value)``, ``(REPLY_EXCEPTION, exception)`` or ``(REPLY_STREAM,
        stream id)`` for the answer to a call made with ``serializer``; a reply that breaks
        the rules comes back as a Pyro5 exception the caller can be given."""
        if msg.serializer_id != serializer.serializer_id:
            return REPLY_EXCEPTION, errors.SerializeError(
                "invalid serializer in response: %d" % msg.serializer_id)
        flags = msg.flags
        data = fastserpent.deserialize_data(serializer, _payload(msg))
        return reply_of(data, bool(flags & FLAGS_ITEMSTREAMRESULT),
                        bool(flags & FLAGS_EXCEPTION), msg.annotations, errors)


#: The codec of Pyro5 (wire protocol 502).
PYRO5 = Pyro5Codec()
