"""A client that stops reading its replies, over real sockets: with ``idle_timeout`` it is cut
off, as Pyro's servers cut it off when a send times out (``COMMTIMEOUT``); everybody else is
served meanwhile. (The rules, on a ``task.Clock``, and that without ``idle_timeout`` there
is no timer at all: ``IdleTimeoutTestCase`` in test_protocol.py.)
"""

from __future__ import annotations

import socket

import Pyro4
from twisted.internet import defer
from twisted.trial import unittest

from pyro.protocol import Pyro4ProtocolFactory

from ..support.our_server import call, in_thread, serve
from ..support.scripted_peer import ScriptedPeer

REPLY_SIZE = 256 * 1024


@Pyro4.expose
class Servant:
    def big(self):
        return "x" * REPLY_SIZE

    def add(self, a, b):
        return a + b


class WatchedFactory(Pyro4ProtocolFactory):
    """Tells when a connection with replies still unsent has gone."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gone = defer.Deferred()

    def connectionClosed(self, protocol, reason):
        super().connectionClosed(protocol, reason)
        if protocol._write_blocked and not self.gone.called:
            self.gone.callback(protocol)


class StalledClientTests(unittest.TestCase):
    timeout = 30

    def _frozen_client(self, port):
        """A client that asks for many large replies and reads none of them (after the
        handshake's): a process that froze, or a peer behind a dead link."""
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.addCleanup(sock.close)
        peer = ScriptedPeer()
        sock.sendall(peer.connect("servant"))
        peer.reader.feed(sock.recv(65536))  # (the CONNECTOK)
        sock.sendall(b"".join(peer.invoke("servant", "big") for _ in range(60)))
        return sock

    @defer.inlineCallbacks
    def test_a_client_that_reads_none_of_its_replies_is_cut_off(self):
        factory = serve(self, WatchedFactory(idle_timeout=0.5))
        uri = factory.register(Servant(), "servant")
        port = factory.ports[0].getHost().port
        yield in_thread(self._frozen_client, port)
        # meanwhile, another client is served as usual
        self.assertEqual((yield call(uri, "add", 1, 2)), 3)
        yield factory.gone  # the stalled one, cut off by the sweep
        self.assertEqual((yield call(uri, "add", 2, 2)), 4)
