"""What both clients' ``Batch`` share: recording calls, and reading a batch's results.

Pyro4's ``batch(proxy)`` records method calls and sends them as one message; the server runs
them in order and stops at the first exception. :class:`pyro.proxy.Batch` sends the message
from a worker thread through a ``Pyro4.Proxy``, :class:`pyro.client.Batch` on the reactor;
the recording and the results are the same, so they live here once. No Twisted import: the
``send()`` of a subclass decides how the message travels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import Pyro4.errors
import Pyro4.futures

#: A recorded call: (method name, positional arguments, keyword arguments), as Pyro4's
#: ``_pyroInvokeBatch`` and the batch message's data hold it.
RecordedCall = tuple[str, tuple[Any, ...], dict[str, Any]]


class CallRecorder:
    """Records ``batch.method(*args, **kwargs)`` calls until :meth:`send` takes them.

    Any public attribute is a method to record (so a remote method may be called ``add`` or
    ``items``); names starting with ``_`` are refused, as Pyro4 refuses to call them.
    Calling the batch, ``batch(oneway=False, asynchronous=False)``, is Pyro4's spelling of
    :meth:`send` and never clashes with a remote method called ``send``; every batch here is
    asynchronous (``send`` returns a Deferred), so ``asynchronous`` only keeps Pyro4 code valid.
    """

    def __init__(self, target: Any) -> None:
        self._target = target
        self._calls: list[RecordedCall] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args: Any, **kwargs: Any) -> None:
            self._calls.append((name, args, kwargs))

        return record

    def __len__(self) -> int:
        return len(self._calls)

    def _take(self) -> list[RecordedCall]:
        """The recorded calls; the batch starts again, empty (as Pyro4's does once sent)."""
        calls, self._calls = self._calls, []
        return calls

    def send(self, oneway: bool = False) -> Any:
        raise NotImplementedError

    def __call__(self, oneway: bool = False, asynchronous: bool = False) -> Any:
        if oneway and asynchronous:
            raise Pyro4.errors.PyroError("async oneway calls make no sense")  # Pyro4's words
        return self.send(oneway)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self._calls)} calls for {self._target!r}>"


def collect_results(results: Iterable[Any],
                    wrapper: type = Pyro4.futures._ExceptionWrapper) -> list[Any]:
    """A batch reply's results in order, or raise the first exception the server met.

    The server wraps that exception in ``Pyro4.futures._ExceptionWrapper`` (a Pyro5 server:
    ``Pyro5.core._ExceptionWrapper``, passed as ``wrapper``) and runs nothing after it.
    Raised here, it carries the results of the calls before it in ``_pyroBatchResults``
    (where an exception type allows new attributes), so nothing that did run is lost.
    """
    collected: list[Any] = []
    for result in results:
        if isinstance(result, wrapper):
            exception: Any = result.exception  # type: ignore[attr-defined]
            try:
                exception._pyroBatchResults = collected
            except AttributeError:  # e.g. an exception type with __slots__
                pass
            raise exception
        collected.append(result)
    return collected
