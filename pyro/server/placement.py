"""Where a servant call runs: the reactor thread, or the factory's thread pool.

A module of its own because both the dispatcher and the ``Pyro.Daemon`` object (whose methods
are all quick) need the marker, and the marker must not drag the dispatcher in with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["in_reactor", "runs_in_reactor"]


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
