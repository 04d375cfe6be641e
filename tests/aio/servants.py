"""Servants for the asyncio programs: each awaits asyncio, Twisted, or both.

Imported by programs that run in their own process (see :mod:`tests.aio.programs`); nothing
here imports the reactor before it is used, so a program still chooses it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import Pyro4
from Pyro4.core import current_context


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def defer_later(seconds: float, value: Any = None) -> Any:
    """Twisted's way to wait: a Deferred that fires after ``seconds``."""
    from twisted.internet import task

    return task.deferLater(_reactor(), seconds, lambda: value)


@Pyro4.expose
class Waiter:
    """Calls that wait on asyncio, on Twisted, on both."""

    def __init__(self) -> None:
        self.remembered: list[Any] = []
        self.cancelled: list[str] = []

    async def asyncio_sleep(self, seconds: float, value: Any) -> Any:
        await asyncio.sleep(seconds)
        return value

    async def deferred_sleep(self, seconds: float, value: Any) -> Any:
        return await defer_later(seconds, value)

    async def both(self, seconds: float) -> list[str]:
        """asyncio, then Twisted, then an asyncio task, then a Deferred again."""
        await asyncio.sleep(seconds)
        first = await defer_later(seconds, "deferred")
        second = await asyncio.ensure_future(self.asyncio_sleep(seconds, "task"))
        third = await defer_later(0, "fired")
        return [first, second, third]

    async def context(self, seconds: float) -> list[str]:
        """The call's correlation id before and after awaits (asyncio's and Twisted's); the
        reply carries an annotation added after them."""
        seen = [str(current_context.correlation_id)]
        await asyncio.sleep(seconds)
        seen.append(str(current_context.correlation_id))
        await defer_later(seconds)
        seen.append(str(current_context.correlation_id))
        current_context.response_annotations["XSEE"] = seen[-1].encode()
        return seen

    async def fails(self) -> None:
        await asyncio.sleep(0.01)
        raise ValueError("failed after an await")

    async def fails_deferred(self) -> None:
        """A Deferred that fails: its exception reaches the servant's ``await``."""
        from twisted.internet import defer

        try:
            await defer.fail(KeyError("from a Deferred"))
        except KeyError as exc:
            raise ValueError("caught %s" % exc) from exc

    async def numbers(self, count: int) -> Any:
        for number in range(count):
            await asyncio.sleep(0.001)
            yield number

    async def mixed_numbers(self, count: int) -> Any:
        for number in range(count):
            if number % 2:
                await defer_later(0.001)
            else:
                await asyncio.sleep(0.001)
            yield (number, str(current_context.correlation_id))

    @Pyro4.oneway
    async def remember(self, value: Any) -> None:
        await asyncio.sleep(0.01)
        self.remembered.append(value)

    async def recall(self, count: int) -> list[Any]:
        for _ in range(500):  # the oneway calls finish on their own time
            if len(self.remembered) >= count:
                break
            await asyncio.sleep(0.01)
        return sorted(self.remembered)

    async def hang(self, how: str) -> None:
        """Waits for a minute (``asyncio`` or ``deferred``), noting its cancellation."""
        try:
            if how == "asyncio":
                await asyncio.sleep(60)
            else:
                await defer_later(60)
        except asyncio.CancelledError:
            self.cancelled.append(how)
            print("servant cancelled while awaiting", how, flush=True)
            raise

    def blocking(self, seconds: float) -> str:
        time.sleep(seconds)
        return threading.current_thread().name


@Pyro4.expose
@Pyro4.behavior(instance_mode="session")
class Session:
    """One per connection; its calls await before they count."""

    def __init__(self) -> None:
        self.count = 0

    async def increment(self) -> int:
        await asyncio.sleep(0.001)
        self.count += 1
        return self.count


@Pyro4.expose
class Plain:
    """A servant written for Pyro4 (nothing asynchronous), for any daemon."""

    def __init__(self) -> None:
        self._value = 1
        self.arrived = threading.Event()  # (not exposed: a plain attribute)

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def gate(self) -> str:
        """Tells the program (in whose process the daemon runs) that the call arrived."""
        self.arrived.set()
        return "through"

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def numbers(self, count: int) -> Any:
        yield from range(count)

    def close(self) -> str:
        return "a remote method called close"

    def child(self) -> Plain:
        """A new servant, registered: it travels as a proxy (Pyro4's autoproxy)."""
        child = Plain()
        self._pyroDaemon.register(child)  # type: ignore[attr-defined]
        return child

    @property
    def value(self) -> int:
        return self._value

    @value.setter
    def value(self, value: int) -> None:
        self._value = value
