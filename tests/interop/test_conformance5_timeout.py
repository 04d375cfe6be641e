"""Pyro5 5.17's ``tests/test_server_timeout.py``: the server tests with ``COMMTIMEOUT``.

Pyro5's file reruns its server tests with ``config.COMMTIMEOUT = 2.0``, set in
``setup_method`` for the whole process. That changes both ends: Pyro5's daemons give every
accepted socket that timeout, and every ``Pyro5.api.Proxy`` made meanwhile takes it as its
``_pyroTimeout``, so the client connects with a timeout and reads its replies through
socket-timeout loops (``Pyro5.socketutil.receive_data``), other code paths than a blocking
socket's.

:class:`ServerTestsReactorThreadTimeout` and :class:`ServerTestsThreadPoolTimeout` rerun the
port of the server tests (``test_conformance5``: both variants, servants in the reactor thread
or in a thread pool, the relatives of Pyro5's multiplex and thread servers) with the real
client's ``COMMTIMEOUT = 2.0``, set as the port sets client config (``patch_pyro5_config``,
before the factory is made, as Pyro5 sets it before its daemon). Left out, as in Pyro5's
timeout classes:

* ``test_exception``: Pyro5's timeout classes override ``testException`` with ``pass``, with
  no comment; the same override is in its ``TestServerMultiplexNoTimeout``, so the reason is
  not ``COMMTIMEOUT``, and Pyro5's source gives none. Its body (the remote traceback of a
  ``ZeroDivisionError``) runs without ``COMMTIMEOUT`` in both variants in
  ``test_conformance5``.

The server-side half of ``COMMTIMEOUT`` (:class:`IdleConnectionTests`). Pyro5's servers set
it on every accepted socket (``csock.settimeout(config.COMMTIMEOUT)`` in ``svr_threads.py``
and ``svr_multiplex.py``). The thread server's worker then blocks in ``handleRequest``
reading the next request: a client quiet for longer gets ``TimeoutError`` there, which ends
the connection (a logged warning, ``clientDisconnect``, ``close``). The multiplex server reads
only from sockets its selector reports readable, so an idle connection is never timed out
there; its timeout only bounds a handshake, a message that stalls half-way, or a reply the
client does not read (each blocking the whole server meanwhile). The factory's
``idle_timeout`` gives the thread server's behaviour for idle connections, pending handshakes
and stalled messages (``idle_timeout=config.COMMTIMEOUT``); its default, ``None``, keeps them
all open. Not the same: a client that stops reading its replies is not idle to the factory
(it serves others meanwhile), whereas both of Pyro5's servers end such a connection when a
send times out.
"""

from __future__ import annotations

import threading

import Pyro5
import Pyro5.api
import Pyro5.errors
import Pyro5.server
from twisted.internet import defer
from twisted.trial import unittest

from ..support.our_server import serve
from ..support.pyro5_peers import patch_pyro5_config, serve_pyro5
from . import test_conformance5
from .test_conformance5 import client
from .test_conformance_timeout import (
    IDLE,
    SEEN_FROM_THREAD_SERVER,
    DisconnectSignal,
    WatchedFactory,
    idle_client,
)

#: Pyro5's test_server_timeout.py: ``COMMTIMEOUT = 2.0``.
COMMTIMEOUT = 2.0


class _WithCommTimeout:
    """Pyro5's timeout classes: the same tests, ``config.COMMTIMEOUT = 2.0`` for the test."""

    def setUp(self):
        patch_pyro5_config(self, COMMTIMEOUT=COMMTIMEOUT)  # before the server, as Pyro5 does
        super().setUp()
        with Pyro5.api.Proxy(self.objectUri) as proxy:  # what every proxy of the test now gets
            self.assertEqual(proxy._pyroTimeout, COMMTIMEOUT)

    def test_exception(self):
        raise unittest.SkipTest(
            "Pyro5's timeout classes drop testException (see the module docstring); it runs "
            "without COMMTIMEOUT in test_conformance5")


class ServerTestsReactorThreadTimeout(_WithCommTimeout,
                                      test_conformance5.ServerTestsReactorThread):
    """Servant calls in the reactor thread, clients with ``COMMTIMEOUT = 2.0``."""


class ServerTestsThreadPoolTimeout(_WithCommTimeout, test_conformance5.ServerTestsThreadPool):
    """Servant calls in a thread pool, clients with ``COMMTIMEOUT = 2.0``."""


# -- the server side of COMMTIMEOUT -----------------------------------------------------------

@Pyro5.server.expose
class Pinged:
    def ping(self):
        return "pong"


class WatchedPyro5Daemon(DisconnectSignal, Pyro5.api.Daemon):
    pass


class IdleConnectionTests(unittest.TestCase):
    """Pyro5's thread server and our factory with ``idle_timeout=config.COMMTIMEOUT``, side by
    side: a real client that goes quiet for longer is cut off, and sees the same from both."""

    timeout = 30

    def setUp(self):
        # read by Pyro5's daemon when it accepts a connection, and by the Proxy when made
        patch_pyro5_config(self, COMMTIMEOUT=IDLE, MAX_RETRIES=0, SERIALIZER="serpent")

    @defer.inlineCallbacks
    def test_idleConnectionClosed(self):
        peer = serve_pyro5(self, "thread", daemon_class=WatchedPyro5Daemon)
        peer.daemon.disconnected = threading.Semaphore(0)
        theirs = yield client(idle_client, Pyro5.api.Proxy, Pyro5.errors.PyroError,
                              peer.register(Pinged()), peer.daemon.disconnected)

        factory = serve(self, WatchedFactory(idle_timeout=Pyro5.config.COMMTIMEOUT))
        factory.disconnected = threading.Semaphore(0)
        uri = Pyro5.api.URI(str(factory.register(Pinged())))
        ours = yield client(idle_client, Pyro5.api.Proxy, Pyro5.errors.PyroError, uri,
                            factory.disconnected)

        self.assertEqual(theirs, SEEN_FROM_THREAD_SERVER)
        self.assertEqual(ours, theirs)
        for _ in range(3):  # every connection closed by the server, or by the proxy
            yield factory.gone.get()
