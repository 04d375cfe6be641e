"""A scripted Pyro4 peer for unit tests: builds requests and reads replies as plain bytes.

It uses Pyro4's own serializers and :mod:`pyro.wire`, so the bytes are exactly what a
``Pyro4.Proxy`` would send, without a socket.
"""

from __future__ import annotations

from typing import Any

from Pyro4 import util

from pyro import wire


class ScriptedPeer:
    def __init__(self, serializer: str = "serpent", hmac_key: bytes | None = None):
        self.serializer = util.get_serializer(serializer)
        self.hmac_key = hmac_key
        self.reader = wire.MessageReader(hmac_key=hmac_key)
        self.seq = 0

    def connect(self, object_id: str = "Pyro.Daemon", handshake: Any = "hello",
                flags: int = 0) -> bytes:
        data, _ = self.serializer.serializeData({"handshake": handshake, "object": object_id})
        return wire.encode(wire.MSG_CONNECT, data, self.serializer.serializer_id, flags, 0,
                           None, self.hmac_key)

    def invoke(self, object_id: str, method: str, *args: Any, flags: int = 0,
               annotations: dict[str, bytes] | None = None, **kwargs: Any) -> bytes:
        self.seq += 1
        data, compressed = self.serializer.serializeCall(object_id, method, args, kwargs)
        if compressed:
            flags |= wire.FLAGS_COMPRESSED
        return wire.encode(wire.MSG_INVOKE, data, self.serializer.serializer_id, flags,
                           self.seq, annotations, self.hmac_key)

    def replies(self, transport: Any) -> list[Any]:
        """Every complete reply written to ``transport`` since the last look."""
        data = transport.value()
        transport.clear()
        return list(self.reader.feed(data))

    def load(self, msg: Any) -> Any:
        return self.serializer.deserializeData(msg.data, msg.flags & wire.FLAGS_COMPRESSED)
