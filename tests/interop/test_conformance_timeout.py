"""Pyro4 4.82's ``tests/PyroTests/test_server_timeout.py``: the server tests with ``COMMTIMEOUT``.

Pyro4's file reruns its server tests with ``config.COMMTIMEOUT = 2.0``, set in ``setUp`` for
the whole process. That changes both ends: Pyro4's daemons give every accepted socket that
timeout, and every ``Pyro4.Proxy`` made meanwhile takes it as its ``_pyroTimeout``, so the
client connects with a timeout and reads its replies through socket-timeout loops
(``Pyro4.socketutil.receiveData``), other code paths than a blocking socket's.

:class:`ServerTestsReactorThreadTimeout` and :class:`ServerTestsThreadPoolTimeout` rerun the
port of the server tests (``test_conformance``: both variants, servants in the reactor thread
or in a thread pool, the relatives of Pyro4's multiplex and thread servers) with the real
client's ``COMMTIMEOUT = 2.0``, set as the port sets client config (``patch_config``, before
the factory is made, as Pyro4 sets it before its daemon). Left out, as in Pyro4's timeout
classes:

* ``test_exception``: Pyro4's timeout classes override ``testException`` with ``pass``, with
  no comment; the same override is in its ``ServerTestsMultiplexNoTimeout``, so the reason is
  not ``COMMTIMEOUT``, and Pyro4's source gives none. Its body (the remote traceback of a
  ``ZeroDivisionError``) runs without ``COMMTIMEOUT`` in both variants in ``test_conformance``.

Kept, although Pyro4's timeout classes drop them: ``test_serverParallelism`` and
``test_proxySharing`` ("not suitable on a server with timeout set", says Pyro4's comment):
the comment blames the server's timeout, and ours has none here (the clients have), so they
run, and pass, with the clients' timeout.

The server-side half of ``COMMTIMEOUT`` (:class:`IdleConnectionTests`). Pyro4's servers set
it on every accepted socket (``csock.settimeout(config.COMMTIMEOUT)`` in
``threadpoolserver.py`` and ``multiplexserver.py``). The thread server's worker then blocks
in ``handleRequest`` reading the next request: a client quiet for longer gets
``TimeoutError`` there, which ends the connection (a logged warning, ``clientDisconnect``,
``close``). The multiplex server reads only from sockets ``select`` reports readable, so an
idle connection is never timed out there; its timeout only bounds a handshake, a message
that stalls half-way, or a reply the client does not read (each blocking the whole server
meanwhile). The factory's ``idle_timeout`` gives the thread server's behaviour for idle
connections, pending handshakes and stalled messages (``idle_timeout=config.COMMTIMEOUT``);
its default, ``None``, keeps them all open. Not the same: a client that stops reading its
replies is not idle to the factory (it serves others meanwhile), whereas both of Pyro4's
servers end such a connection when a send times out.
"""

from __future__ import annotations

import threading

import Pyro4
import Pyro4.errors
from twisted.internet import defer
from twisted.trial import unittest

from ..support.config import patch_config
from ..support.our_server import serve
from ..support.pyro4_peers import serve_pyro4
from . import test_conformance
from .test_conformance import client

#: Pyro4's test_server_timeout.py: ``COMMTIMEOUT = 2.0``.
COMMTIMEOUT = 2.0


class _WithCommTimeout:
    """Pyro4's timeout classes: the same tests, ``config.COMMTIMEOUT = 2.0`` for the test."""

    def setUp(self):
        patch_config(self, COMMTIMEOUT=COMMTIMEOUT)  # before the server, as in Pyro4's setUp
        super().setUp()
        with Pyro4.Proxy(self.objectUri) as proxy:  # what every proxy of the test now gets
            self.assertEqual(proxy._pyroTimeout, COMMTIMEOUT)

    def test_exception(self):
        raise unittest.SkipTest(
            "Pyro4's timeout classes drop testException (see the module docstring); it runs "
            "without COMMTIMEOUT in test_conformance")


class ServerTestsReactorThreadTimeout(_WithCommTimeout, test_conformance.ServerTestsReactorThread):
    """Servant calls in the reactor thread, clients with ``COMMTIMEOUT = 2.0``."""


class ServerTestsThreadPoolTimeout(_WithCommTimeout, test_conformance.ServerTestsThreadPool):
    """Servant calls in a thread pool, clients with ``COMMTIMEOUT = 2.0``."""


# -- the server side of COMMTIMEOUT -----------------------------------------------------------

#: Short: the test waits for it twice per server (really: it is the server's socket timeout).
IDLE = 0.5


@Pyro4.expose
class Pinged:
    def ping(self):
        return "pong"


class DisconnectSignal:
    """The daemon's ``clientDisconnect`` hook (Pyro4's, or our factory's) tells the client."""

    def clientDisconnect(self, conn):
        self.disconnected.release()


class WatchedPyro4Daemon(DisconnectSignal, Pyro4.Daemon):
    pass


class WatchedFactory(DisconnectSignal, test_conformance.RecordingFactory):
    pass


def idle_client(proxy_class, error_class, uri, disconnected):
    """A real proxy (``COMMTIMEOUT`` as its timeout; a ``Pyro4.Proxy``, or Pyro5's for
    test_conformance5_timeout) goes quiet after one call, twice: what it sees of the server
    closing its connection. Waits for the server's ``clientDisconnect``, never sleeps."""
    seen = []

    def call(proxy):
        try:
            seen.append(proxy.ping())
        except error_class as x:
            seen.append((type(x).__name__, str(x)))

    with proxy_class(uri) as proxy:
        call(proxy)
        seen.append(disconnected.acquire(timeout=10))  # the server closed it (idle)
        call(proxy)  # MAX_RETRIES = 0, Pyro's default: the call fails ...
        call(proxy)  # ... and the next one connects again
        proxy._pyroMaxRetries = 1
        seen.append(disconnected.acquire(timeout=10))  # idle again
        call(proxy)  # now the proxy reconnects and retries by itself
    return seen


#: What ``idle_client`` sees from Pyro's thread servers (Pyro4's and Pyro5's alike).
SEEN_FROM_THREAD_SERVER = [
    "pong", True,
    ("ConnectionClosedError", "receiving: not enough data"), "pong",
    True, "pong"]


class IdleConnectionTests(unittest.TestCase):
    """Pyro4's thread server and our factory with ``idle_timeout=config.COMMTIMEOUT``, side by
    side: a real client that goes quiet for longer is cut off, and sees the same from both."""

    timeout = 30

    def setUp(self):
        # read by Pyro4's daemon when it accepts a connection, and by the Proxy when made
        patch_config(self, COMMTIMEOUT=IDLE, MAX_RETRIES=0)

    @defer.inlineCallbacks
    def test_idleConnectionClosed(self):
        peer = serve_pyro4(self, "thread", daemon_class=WatchedPyro4Daemon)
        peer.daemon.disconnected = threading.Semaphore(0)
        theirs = yield client(idle_client, Pyro4.Proxy, Pyro4.errors.PyroError,
                              peer.register(Pinged()), peer.daemon.disconnected)

        factory = serve(self, WatchedFactory(idle_timeout=Pyro4.config.COMMTIMEOUT))
        factory.disconnected = threading.Semaphore(0)
        ours = yield client(idle_client, Pyro4.Proxy, Pyro4.errors.PyroError,
                            factory.register(Pinged()), factory.disconnected)

        self.assertEqual(theirs, SEEN_FROM_THREAD_SERVER)
        self.assertEqual(ours, theirs)
        for _ in range(3):  # every connection closed by the server, or by the proxy
            yield factory.gone.get()
