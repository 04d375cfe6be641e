"""Helpers for tests written as coroutines: trial runs them on the reactor, and they await
the Deferreds they check (failures included) instead of chaining callbacks."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet import defer


def async_test(function: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Let trial run an ``async def`` test (a coroutine driven by the reactor)."""
    @functools.wraps(function)
    def wrapper(self: Any) -> defer.Deferred[Any]:
        return defer.ensureDeferred(function(self))
    return wrapper


async def failure_of(d: defer.Deferred[Any]) -> BaseException:
    """The exception ``d`` fails with; an ``AssertionError`` if it succeeds instead."""
    try:
        result = await d
    except BaseException as exc:  # noqa: BLE001 -- the point is to return it
        return exc
    raise AssertionError(f"expected a failure, got {result!r}")
