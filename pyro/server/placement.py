"""Where a servant call runs (the reactor thread, or the factory's thread pool), and whether
it holds its connection while it runs.

A module of its own because the dispatcher, the ``Pyro.Daemon`` object (whose methods are all
quick) and the connection's protocol need these markers, and they must not drag the
dispatcher in with them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["Exclusive", "in_reactor", "runs_in_reactor"]


def in_reactor(function: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a servant method as quick and non-blocking: it runs in the reactor thread.

    With a thread pool (or for oneway calls under ``ONEWAY_THREADED``) calls normally hop to
    a worker thread. A method that only touches in-memory state gains nothing from that hop,
    and if it touches state the reactor thread owns, it must not run elsewhere. Coroutine
    functions are treated this way without the marker. On a registered *class*, it keeps the
    creation of its instances (``__init__``, ``instance_creator``) in the reactor thread.
    """
    function._pyroInReactor = True  # type: ignore[attr-defined]
    return function


def runs_in_reactor(function: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(function) or getattr(function, "_pyroInReactor", False)


class Exclusive:
    """A request's outcome (the Deferred of its reply) that holds its connection: the
    connection starts no request behind it until it is done.

    A connection of :mod:`pyro.server.protocol` lets requests whose servant returned a
    Deferred or a coroutine run concurrently (their replies still leave in order); the
    dispatcher wraps in this the outcomes that must not overlap the next request: calls run
    in the thread pool (one per connection at a time, as in Pyro4's thread server) and calls
    on session servants (one instance per connection, written for one call at a time).
    """

    __slots__ = ("deferred",)

    def __init__(self, deferred: Any):
        self.deferred = deferred
