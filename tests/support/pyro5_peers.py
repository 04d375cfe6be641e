"""Real Pyro5 peers for tests: Pyro5's own daemons and name server, each in a background thread.

The Pyro5 sibling of :mod:`tests.support.pyro4_peers` (same shapes, same rules): clients
that speak Pyro5 are tested against Pyro5 5.x's own servers, not mocks. Everything listens
on 127.0.0.1 port 0 unless told otherwise and is stopped by the caller, a test cleanup, or
the end of a ``with`` block:

- ``serve_pyro5(testcase, servertype, obj)`` in a trial (or unittest) test; stopped by a
  cleanup, in a thread under trial (Pyro5's ``Daemon.shutdown()`` sleeps and blocks).
- ``with pyro5_daemon(servertype) as peer:`` anywhere (pytest fixtures).
- ``start_pyro5_daemon`` / ``start_pyro5_nameserver`` and ``peer.stop()`` by hand.

``Pyro5.config`` is global too, and Pyro5's daemons read ``SERVERTYPE`` when constructed: the
helpers apply the settings asked for only around the constructor. :func:`pyro5_config_changed`
and :func:`patch_pyro5_config` change ``Pyro5.config`` for a block or a test.

As with Pyro4's ``thread`` server, each client connection holds one of the daemon's worker
threads until the client closes it: close clients before the peer stops (with trial's LIFO
cleanups: start the peer first, then the clients).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import Pyro5
import Pyro5.api
import Pyro5.nameserver
from twisted.internet import threads
from twisted.trial.unittest import TestCase as TrialTestCase

from .pyro4_peers import LOOPBACK, free_port

__all__ = [
    "Pyro5NameServerPeer",
    "Pyro5Peer",
    "SERVERTYPES",
    "free_port",
    "patch_pyro5_config",
    "pyro5_config_changed",
    "pyro5_daemon",
    "pyro5_nameserver",
    "serve_pyro5",
    "serve_pyro5_nameserver",
    "start_pyro5_daemon",
    "start_pyro5_nameserver",
]

#: The server types Pyro5 offers (``Pyro5.config.SERVERTYPE``).
SERVERTYPES = ("thread", "multiplex")


@contextlib.contextmanager
def pyro5_config_changed(**changes: Any) -> Iterator[None]:
    """Change ``Pyro5.config`` settings inside a ``with`` block; restore them on the way out."""
    config = Pyro5.config
    saved = {name: getattr(config, name) for name in changes}
    try:
        for name, value in changes.items():
            setattr(config, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(config, name, value)


def patch_pyro5_config(testcase: Any, **changes: Any) -> None:
    """Change ``Pyro5.config`` for one test; an ``addCleanup`` puts the old values back."""
    config = Pyro5.config
    for name, value in changes.items():
        testcase.addCleanup(setattr, config, name, getattr(config, name))
        setattr(config, name, value)


class Pyro5Peer:
    """A ``Pyro5.api.Daemon`` serving its request loop in a background (daemon) thread.

    :ivar daemon: the Pyro5 daemon; ``register`` objects on it at any time.
    :ivar servertype: ``"thread"`` or ``"multiplex"``.
    :ivar uris: URIs of the objects a helper registered for you, in order.
    """

    def __init__(self, daemon: Pyro5.api.Daemon, servertype: str,
                 name: str = "pyro5-daemon") -> None:
        self.daemon = daemon
        self.servertype = servertype
        self.uris: list[Pyro5.api.URI] = []
        self._stopped = False
        self._lock = threading.Lock()
        # The constructor bound the listening socket: clients may connect at once.
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

    def register(self, obj: Any, objectId: str | None = None) -> Pyro5.api.URI:
        """Register a servant (object or class); returns its ``PYRO:`` URI."""
        return self.daemon.register(obj, objectId)

    def stop(self) -> None:
        """Shut the daemon down and wait for its loop thread (blocking; idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.daemon.shutdown()
        self.thread.join(timeout=10)

    def __enter__(self) -> Pyro5Peer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.servertype} on {self.location}>"


class Pyro5NameServerPeer(Pyro5Peer):
    """Pyro5's name server (``Pyro5.nameserver.NameServerDaemon``) in a background thread.

    No broadcast responder: clients find it by address (``PYRONAME:name@127.0.0.1:port``).

    :ivar nameserver: the ``Pyro5.nameserver.NameServer`` itself (thread-safe: tests may
        ``register``/``remove`` on it directly).
    :ivar uri: the name server's own ``PYRO:`` URI.
    """

    daemon: Pyro5.nameserver.NameServerDaemon

    def __init__(self, daemon: Pyro5.nameserver.NameServerDaemon, servertype: str) -> None:
        self.nameserver = daemon.nameserver
        self.uri = daemon.uriFor(daemon.nameserver)
        super().__init__(daemon, servertype, name="pyro5-nameserver")

    def pyroname(self, name: str) -> str:
        """The ``PYRONAME:`` URI of ``name`` through this name server."""
        return f"PYRONAME:{name}@{self.location}"

    def pyrometa(self, *metadata: str) -> str:
        """The ``PYROMETA:`` URI for objects registered with all the given metadata."""
        return f"PYROMETA:{','.join(metadata)}@{self.location}"

    def register_name(self, name: str, uri: Any, metadata: Iterable[str] | None = None) -> None:
        """Register ``name`` -> ``uri`` (with optional metadata strings) in this name server."""
        self.nameserver.register(name, uri, metadata=set(metadata) if metadata else None)


def _check(servertype: str) -> None:
    if servertype not in SERVERTYPES:
        raise ValueError(f"servertype must be one of {SERVERTYPES}, not {servertype!r}")


def start_pyro5_daemon(servertype: str = "thread", host: str = LOOPBACK, port: int = 0,
                       daemon_class: type = Pyro5.api.Daemon, **config: Any) -> Pyro5Peer:
    """Create a Pyro5 daemon of ``servertype`` and run its request loop in a thread.

    ``config`` holds extra ``Pyro5.config`` settings applied while the daemon is constructed
    (e.g. ``THREADPOOL_SIZE=8``); they are restored right after.
    """
    _check(servertype)
    with pyro5_config_changed(SERVERTYPE=servertype, **config):
        daemon = daemon_class(host=host, port=port)
    return Pyro5Peer(daemon, servertype)


def start_pyro5_nameserver(servertype: str = "thread", host: str = LOOPBACK, port: int = 0,
                           **config: Any) -> Pyro5NameServerPeer:
    """Start Pyro5's name server (no broadcast server) in a thread, on ``host:port``."""
    _check(servertype)
    with pyro5_config_changed(SERVERTYPE=servertype, **config):
        daemon = Pyro5.nameserver.NameServerDaemon(host=host, port=port)
    return Pyro5NameServerPeer(daemon, servertype)


@contextlib.contextmanager
def pyro5_daemon(servertype: str = "thread", *objects: Any, **kwargs: Any) -> Iterator[Pyro5Peer]:
    """``with pyro5_daemon("multiplex", Servant()) as peer:`` registers ``objects`` (URIs in
    ``peer.uris``) and stops the daemon on the way out."""
    peer = start_pyro5_daemon(servertype, **kwargs)
    try:
        peer.uris = [peer.register(obj) for obj in objects]
        yield peer
    finally:
        peer.stop()


@contextlib.contextmanager
def pyro5_nameserver(servertype: str = "thread", **kwargs: Any) -> Iterator[Pyro5NameServerPeer]:
    """``with pyro5_nameserver() as ns:``: a Pyro5 name server for the duration of the block."""
    peer = start_pyro5_nameserver(servertype, **kwargs)
    try:
        yield peer
    finally:
        peer.stop()


def _stop_later(testcase: Any, peer: Pyro5Peer) -> None:
    if isinstance(testcase, TrialTestCase):
        testcase.addCleanup(lambda: threads.deferToThread(peer.stop))
    else:
        testcase.addCleanup(peer.stop)


def serve_pyro5(testcase: Any, servertype: str = "thread", *objects: Any,
                **kwargs: Any) -> Pyro5Peer:
    """Start a Pyro5 daemon for one test, register ``objects`` (URIs in ``peer.uris``), stop
    it in a cleanup. Extra keyword arguments go to :func:`start_pyro5_daemon`."""
    peer = start_pyro5_daemon(servertype, **kwargs)
    _stop_later(testcase, peer)
    peer.uris = [peer.register(obj) for obj in objects]
    return peer


def serve_pyro5_nameserver(testcase: Any, servertype: str = "thread",
                           **kwargs: Any) -> Pyro5NameServerPeer:
    """Start a Pyro5 name server for one test; stopped in a cleanup."""
    peer = start_pyro5_nameserver(servertype, **kwargs)
    _stop_later(testcase, peer)
    return peer
