"""The one place that finds the global reactor, and the one timeout hook.

Everything in twisted-pyro takes ``reactor=None`` and asks :func:`default_reactor` only when it
needs one: importing the package installs no reactor (a program may still choose the asyncio
reactor after ``import pyro``), and tests pass a ``Clock`` or ``MemoryReactor`` instead.
"""

from __future__ import annotations

from typing import Any, TypeVar

from Pyro4 import errors
from twisted.internet import defer
from twisted.python.failure import Failure

__all__ = ["default_reactor", "with_timeout"]

_T = TypeVar("_T")


def default_reactor(reactor: Any = None) -> Any:
    """``reactor`` if one was given, else the global reactor (imported now, not earlier)."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        return global_reactor
    return reactor


def _timeout_error(result: Any, timeout: float, error: type[Exception] = errors.TimeoutError
                   ) -> Any:
    """``Deferred.addTimeout`` hook: a timed-out call fails as Pyro's proxy would."""
    if isinstance(result, Failure) and result.check(defer.CancelledError):
        return Failure(error("call timed out after %s seconds" % timeout))
    return result


def with_timeout(d: defer.Deferred[_T], timeout: float | None, clock: Any,
                 error: type[Exception] = errors.TimeoutError) -> None:
    """Fail ``d`` with ``error`` (``Pyro4.errors.TimeoutError``; a Pyro5 client passes
    Pyro5's) after ``timeout`` seconds on ``clock`` (``d`` is cancelled, so whatever it
    waits for is told); no timeout when it is falsy."""
    if timeout:
        hook = _timeout_error if error is errors.TimeoutError else (
            lambda result, seconds: _timeout_error(result, seconds, error))
        d.addTimeout(timeout, clock, onTimeoutCancel=hook)
