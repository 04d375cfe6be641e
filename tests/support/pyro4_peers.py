"""Real Pyro4 peers for tests: Pyro4's own daemons and name server, each in a background thread.

Our client code (``pyro.proxy``, the native client) must interoperate with the real thing, so
its tests talk to Pyro4 4.82's own servers rather than to mocks. Everything here listens on
127.0.0.1 (port 0 unless told otherwise) and is stopped again by the caller, by a test cleanup,
or by leaving a ``with`` block.

Three ways to use it:

- ``serve_pyro4(testcase, servertype, obj)`` in a ``twisted.trial`` (or ``unittest``) test: the
  peer is stopped by a cleanup; under trial the cleanup runs in a thread and returns a Deferred,
  so the reactor keeps running while Pyro4's (sleepy, blocking) ``Daemon.shutdown()`` works.
- ``with pyro4_daemon(servertype) as peer:`` anywhere, e.g. inside a pytest fixture.
- ``start_pyro4_daemon`` / ``start_pyro4_nameserver`` and ``peer.stop()`` by hand.

``Pyro4.config`` is global and Pyro4's daemons read ``SERVERTYPE`` (and a few other settings)
when they are constructed: the helpers apply the requested settings only for the duration of
the constructor call and restore them at once. ``tests.support.config.patch_config`` changes settings
for a whole test and restores them in a cleanup.

Stop order matters with the ``thread`` server type: each client connection occupies one of
the daemon's worker threads until the client closes it, so close your clients (proxies,
``PyroDeferredService``) before the peer stops. With trial's LIFO cleanups that means: start the
peer first, create (and register the cleanup of) the clients afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import Pyro4
import Pyro4.naming
from twisted.internet import threads
from twisted.trial.unittest import TestCase as TrialTestCase

from .config import config_changed

__all__ = [
    "Pyro4Peer",
    "Pyro4NameServerPeer",
    "SERVERTYPES",
    "free_port",
    "pyro4_daemon",
    "pyro4_nameserver",
    "serve_pyro4",
    "serve_pyro4_nameserver",
    "start_pyro4_daemon",
    "start_pyro4_nameserver",
]

#: The server types Pyro4 4.82 offers (``Pyro4.config.SERVERTYPE``).
SERVERTYPES = ("thread", "multiplex")

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago, for a server that must start *later* on a known
    address (a ``PYRONAME:name@host:port`` URI names its name server before it runs).

    There is a small race (someone else may take the port meanwhile); fine for tests, and the
    only way to test "the server is not there yet" against a real server.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class Pyro4Peer:
    """A ``Pyro4.Daemon`` serving its request loop in a background (daemon) thread.

    :ivar daemon: the Pyro4 daemon; ``register`` objects on it at any time.
    :ivar servertype: ``"thread"`` or ``"multiplex"``.
    :ivar thread: the thread running ``daemon.requestLoop()``.
    """

    def __init__(self, daemon: Pyro4.Daemon, servertype: str, name: str = "pyro4-daemon") -> None:
        self.daemon = daemon
        self.servertype = servertype
        #: URIs of the objects a helper registered for you, in order.
        self.uris: list[Pyro4.URI] = []
        self._stopped = False
        self._lock = threading.Lock()
        # The listening socket exists already (the constructor bound it), so clients may
        # connect before the loop runs: the kernel queues them. No need to wait for the thread.
        self.thread = threading.Thread(target=daemon.requestLoop, name=f"{name}-{servertype}",
                                       daemon=True)
        self.thread.start()

    @property
    def location(self) -> str:
        """``host:port`` the daemon listens on."""
        return self.daemon.locationStr

    @property
    def port(self) -> int:
        return int(self.location.rsplit(":", 1)[1])

    def register(self, obj: Any, objectId: str | None = None) -> Pyro4.URI:
        """Register a servant (object or class); returns its ``PYRO:`` URI."""
        return self.daemon.register(obj, objectId)

    def stop(self) -> None:
        """Shut the daemon down and wait for its loop thread (blocking; idempotent).

        Pyro4's ``shutdown()`` sleeps a few hundredths of a second and waits for the loop: call
        this from a thread, not from the reactor thread (``serve_pyro4`` does that for trial).
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.daemon.shutdown()
        self.thread.join(timeout=10)

    def __enter__(self) -> Pyro4Peer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.servertype} on {self.location}>"


class Pyro4NameServerPeer(Pyro4Peer):
    """A Pyro4 name server (``Pyro4.naming.NameServerDaemon``) in a background thread.

    No broadcast responder is started (tests must not answer, or send, UDP broadcasts): clients
    find it through an explicit address, ``PYRONAME:name@127.0.0.1:<port>``.

    :ivar nameserver: the ``Pyro4.naming.NameServer`` object itself; it is thread-safe, so tests
        may ``register``/``remove`` names on it directly, without a proxy.
    :ivar uri: the name server's own ``PYRO:`` URI.
    """

    daemon: Pyro4.naming.NameServerDaemon

    def __init__(self, daemon: Pyro4.naming.NameServerDaemon, servertype: str) -> None:
        self.nameserver = daemon.nameserver
        self.uri = daemon.uriFor(daemon.nameserver)
        super().__init__(daemon, servertype, name="pyro4-nameserver")

    def pyroname(self, name: str) -> str:
        """The ``PYRONAME:`` URI of ``name`` through this name server."""
        return f"PYRONAME:{name}@{self.location}"

    def pyrometa(self, *metadata: str) -> str:
        """The ``PYROMETA:`` URI for objects registered with all the given metadata."""
        return f"PYROMETA:{','.join(metadata)}@{self.location}"

    def register_name(self, name: str, uri: Any, metadata: Iterable[str] | None = None) -> None:
        """Register ``name`` → ``uri`` (with optional metadata strings) in this name server."""
        self.nameserver.register(name, uri, metadata=set(metadata) if metadata else None)


def start_pyro4_daemon(servertype: str = "thread", host: str = LOOPBACK, port: int = 0,
                       hmac_key: bytes | None = None, daemon_class: type = Pyro4.Daemon,
                       **config: Any) -> Pyro4Peer:
    """Create a Pyro4 daemon of ``servertype`` and run its request loop in a thread.

    ``config`` holds extra ``Pyro4.config`` settings applied while the daemon is constructed
    (e.g. ``THREADPOOL_SIZE=4``); they are restored right after. Stop it with ``peer.stop()``.
    """
    if servertype not in SERVERTYPES:
        raise ValueError(f"servertype must be one of {SERVERTYPES}, not {servertype!r}")
    with config_changed(SERVERTYPE=servertype, **config):
        daemon = daemon_class(host=host, port=port)
    if hmac_key is not None:
        daemon._pyroHmacKey = hmac_key
    return Pyro4Peer(daemon, servertype)


def start_pyro4_nameserver(servertype: str = "thread", host: str = LOOPBACK, port: int = 0,
                           hmac_key: bytes | None = None, **config: Any) -> Pyro4NameServerPeer:
    """Start a Pyro4 name server (no broadcast server) in a thread, on ``host:port``.

    Unlike ``Pyro4.naming.startNSloop`` this prints nothing and returns at once. Pass a fixed
    ``port`` (see ``free_port``) to start it on an address clients already know.
    """
    if servertype not in SERVERTYPES:
        raise ValueError(f"servertype must be one of {SERVERTYPES}, not {servertype!r}")
    # NS_AUTOCLEAN would start a cleaner thread; keep the peer to one thread.
    with config_changed(SERVERTYPE=servertype, NS_AUTOCLEAN=0.0, **config):
        daemon = Pyro4.naming.NameServerDaemon(host=host, port=port)
    if hmac_key is not None:
        daemon._pyroHmacKey = hmac_key
    return Pyro4NameServerPeer(daemon, servertype)


@contextlib.contextmanager
def pyro4_daemon(servertype: str = "thread", *objects: Any, **kwargs: Any) -> Iterator[Pyro4Peer]:
    """``with pyro4_daemon("multiplex", Servant()) as peer:`` registers ``objects`` (their URIs
    are in ``peer.uris``) and stops the daemon on the way out. Good for pytest fixtures."""
    peer = start_pyro4_daemon(servertype, **kwargs)
    try:
        peer.uris = [peer.register(obj) for obj in objects]
        yield peer
    finally:
        peer.stop()


@contextlib.contextmanager
def pyro4_nameserver(servertype: str = "thread", **kwargs: Any) -> Iterator[Pyro4NameServerPeer]:
    """``with pyro4_nameserver() as ns:``: a name server for the duration of the block."""
    peer = start_pyro4_nameserver(servertype, **kwargs)
    try:
        yield peer
    finally:
        peer.stop()


def _stop_later(testcase: Any, peer: Pyro4Peer) -> None:
    """Register the cleanup that stops ``peer``: in a thread under trial (so the reactor keeps
    turning while Pyro4 sleeps in ``shutdown()``), directly under plain ``unittest``."""
    if isinstance(testcase, TrialTestCase):
        testcase.addCleanup(lambda: threads.deferToThread(peer.stop))
    else:
        testcase.addCleanup(peer.stop)


def serve_pyro4(testcase: Any, servertype: str = "thread", *objects: Any,
                **kwargs: Any) -> Pyro4Peer:
    """Start a Pyro4 daemon for one test, register ``objects`` on it (URIs in ``peer.uris``)
    and stop it in a cleanup. Extra keyword arguments go to ``start_pyro4_daemon``."""
    peer = start_pyro4_daemon(servertype, **kwargs)
    _stop_later(testcase, peer)
    peer.uris = [peer.register(obj) for obj in objects]
    return peer


def serve_pyro4_nameserver(testcase: Any, servertype: str = "thread",
                           **kwargs: Any) -> Pyro4NameServerPeer:
    """Start a Pyro4 name server for one test; stopped in a cleanup."""
    peer = start_pyro4_nameserver(servertype, **kwargs)
    _stop_later(testcase, peer)
    return peer
