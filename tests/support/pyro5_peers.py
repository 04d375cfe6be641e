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
from collections.abc import Iterator
from typing import Any

import Pyro5
import Pyro5.api
import Pyro5.nameserver

from .pyro4_peers import LOOPBACK, Pyro4NameServerPeer, Pyro4Peer, _stop_later, free_port

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


class Pyro5Peer(Pyro4Peer):
    """A ``Pyro5.api.Daemon`` serving its request loop in a background (daemon) thread: the
    same as :class:`~tests.support.pyro4_peers.Pyro4Peer` (``daemon``, ``servertype``,
    ``uris``, ``location``, ``port``, ``register``, ``stop``, ``with``), Pyro5's daemon inside
    (``register`` gives a ``Pyro5.api.URI``)."""

    def __init__(self, daemon: Pyro5.api.Daemon, servertype: str,
                 name: str = "pyro5-daemon") -> None:
        super().__init__(daemon, servertype, name)


class Pyro5NameServerPeer(Pyro4NameServerPeer):
    """Pyro5's name server (``Pyro5.nameserver.NameServerDaemon``) in a background thread,
    as :class:`~tests.support.pyro4_peers.Pyro4NameServerPeer` (``nameserver``, ``uri``,
    ``pyroname``, ``pyrometa``, ``register_name``). No broadcast responder: clients find
    it by address (``PYRONAME:name@127.0.0.1:port``)."""

    def __init__(self, daemon: Pyro5.nameserver.NameServerDaemon, servertype: str) -> None:
        self.nameserver = daemon.nameserver
        self.uri = daemon.uriFor(daemon.nameserver)
        Pyro4Peer.__init__(self, daemon, servertype, name="pyro5-nameserver")


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
