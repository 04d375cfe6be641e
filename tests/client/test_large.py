"""Large replies to the native client, from Pyro4's daemons (thread and multiplex) and ours.

The reply's payload is received in place (``pyro._transport.ReadInPlace``: ``recv_into`` the
reader's buffer, which becomes the message's data); what arrives is checked byte for byte,
keyed and not. No timing assertions.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import Pyro4
from twisted.trial.unittest import TestCase

from pyro import _transport
from pyro.client import DeferredProxy
from pyro.protocol import Pyro4ProtocolFactory

from ..support import our_server, pyro4_peers
from ..support.asynctest import async_test

MiB = 1 << 20
_SO_RCVLOWAT = getattr(socket, "SO_RCVLOWAT", None)


@Pyro4.expose
class Blobs:
    def get(self, size: int) -> bytes:
        return bytes(range(256)) * (size // 256)

    def echo(self, value: Any) -> Any:
        return value


class LargeReplyTests:
    """The tests; a subclass says which server they run against."""

    def serve(self, hmac_key: bytes | None = None) -> Any:
        raise NotImplementedError

    def proxy(self, uri: Any, **kwargs: Any) -> DeferredProxy:
        proxy = DeferredProxy(uri, serializer="marshal", **kwargs)
        self.addCleanup(proxy.close)  # type: ignore[attr-defined]
        return proxy

    def count_reads_in_place(self) -> list[int]:
        """[reads in place so far, the highest SO_RCVLOWAT seen meanwhile]"""
        count = [0, 0]
        original = _transport.ReadInPlace.__call__

        def counted(this: Any) -> Any:
            count[0] += 1
            if _SO_RCVLOWAT is not None:
                lowat = this.transport.socket.getsockopt(socket.SOL_SOCKET, _SO_RCVLOWAT)
                count[1] = max(count[1], lowat)
            return original(this)

        self.patch(_transport.ReadInPlace, "__call__", counted)  # type: ignore[attr-defined]
        return count

    @async_test
    async def test_a_large_reply_arrives_whole(self) -> None:
        reads = self.count_reads_in_place()
        proxy = self.proxy(self.serve())
        expected = bytes(range(256)) * (6 * MiB // 256)
        self.assertEqual(await proxy.get(6 * MiB), expected)
        self.assertEqual(await proxy.get(256), expected[:256])  # Twisted's own doRead again
        self.assertEqual(await proxy.get(6 * MiB), expected)
        self.assertGreater(reads[0], 0)
        (connection,) = proxy._connections
        self.assertNotIn("doRead", connection.transport.__dict__)
        if _SO_RCVLOWAT is not None:  # fewer, larger reads meanwhile; back to 1 afterwards
            self.assertEqual(reads[1], _transport.RCVLOWAT)
            sock = connection.transport.socket
            self.assertEqual(sock.getsockopt(socket.SOL_SOCKET, _SO_RCVLOWAT), 1)

    @async_test
    async def test_keyed_large_replies(self) -> None:
        key = b"large secret"
        proxy = self.proxy(self.serve(hmac_key=key), hmac_key=key)
        payload = os.urandom(MiB) * 3 + b"Pyro4.core.Proxy"  # a bytes result is not searched
        self.assertEqual(await proxy.echo(payload), payload)

    @async_test
    async def test_pipelined_large_replies_in_order(self) -> None:
        proxy = self.proxy(self.serve(), max_connections=1)
        sizes = [3 * MiB, 256, 2 * MiB, 512 * 1024]
        results = [proxy.get(size) for size in sizes]
        for size, result in zip(sizes, results, strict=True):
            self.assertEqual(len(await result), size)


class OurServerTests(LargeReplyTests, TestCase):
    def serve(self, hmac_key: bytes | None = None) -> Any:
        factory = Pyro4ProtocolFactory()
        factory._pyroHmacKey = hmac_key
        our_server.serve(self, factory)
        return factory.register(Blobs())


class Pyro4ThreadServerTests(LargeReplyTests, TestCase):
    servertype = "thread"

    def serve(self, hmac_key: bytes | None = None) -> Any:
        peer = pyro4_peers.serve_pyro4(self, self.servertype, Blobs(), hmac_key=hmac_key,
                                       SERIALIZERS_ACCEPTED={"marshal", "serpent"})
        return peer.uris[0]


class Pyro4MultiplexServerTests(Pyro4ThreadServerTests):
    servertype = "multiplex"
