"""What :class:`~pyro.threaded.service.PyroDeferredService` needs to know about the Pyro
generation of the proxy it wraps: ``Pyro4.Proxy`` or ``Pyro5.api.Proxy``.

The two proxies are called the same way (``_pyroInvoke``, ``_pyroInvokeBatch``, ``_pyroBind``,
``_pyroRelease``, ``copy.copy``); what differs is collected here, one :class:`ProxyKind` each:
the errors, the per-thread ``current_context``, the item-stream iterator and batch wrapper
classes, which ``_pyro*`` settings exist (Pyro5 has no HMAC key), whether metadata is on
(``Pyro4.config.METADATA``; Pyro5 always has it), and ownership: a Pyro5 proxy belongs to the
thread that made it, so a thread that takes over a copy calls ``_pyroClaimOwnership()``
(:meth:`ProxyKind.claim`) before using or releasing it. Pyro5 is imported only for a Pyro5
proxy.
"""

from __future__ import annotations

from typing import Any

import Pyro4
import Pyro4.core
import Pyro4.errors
import Pyro4.futures

__all__ = ["PYRO4_PROXIES", "ProxyKind", "claim", "kind_of"]


class ProxyKind:
    """The classes and rules of one generation's proxies (see the module)."""

    __slots__ = ("name", "proxy_class", "errors", "context", "stream_iterator",
                 "exception_wrapper", "live_settings", "metadata_on", "owned_by_thread")

    def __init__(self, name: str, proxy_class: type, errors: Any, context: Any,
                 stream_iterator: Any, exception_wrapper: type, live_settings: tuple[str, ...],
                 metadata_on: Any, owned_by_thread: bool):
        self.name = name
        self.proxy_class = proxy_class
        self.errors = errors
        self.context = context
        self.stream_iterator = stream_iterator
        self.exception_wrapper = exception_wrapper
        #: the settings an open item stream's connection takes on when they change
        self.live_settings = live_settings
        self.metadata_on = metadata_on  #: f() -> bool, read per call
        self.owned_by_thread = owned_by_thread


PYRO4_PROXIES = ProxyKind(
    "Pyro4", Pyro4.Proxy, Pyro4.errors, Pyro4.current_context,
    Pyro4.core._StreamResultIterator, Pyro4.futures._ExceptionWrapper,
    ("_pyroTimeout", "_pyroHmacKey", "_pyroSerializer", "_pyroMaxRetries"),
    lambda: bool(Pyro4.config.METADATA), False)

_pyro5_proxies: ProxyKind | None = None


def _pyro5() -> ProxyKind:
    global _pyro5_proxies
    if _pyro5_proxies is None:
        import Pyro5.api
        import Pyro5.client
        import Pyro5.core
        import Pyro5.errors

        _pyro5_proxies = ProxyKind(
            "Pyro5", Pyro5.api.Proxy, Pyro5.errors, Pyro5.api.current_context,
            Pyro5.client._StreamResultIterator, Pyro5.core._ExceptionWrapper,
            ("_pyroTimeout", "_pyroSerializer", "_pyroMaxRetries"), lambda: True, True)
    return _pyro5_proxies


def kind_of(proxy: Any) -> ProxyKind:
    """The kind of ``proxy``: a ``Pyro4.Proxy`` or a ``Pyro5.api.Proxy`` (subclasses too);
    anything else is a TypeError."""
    if isinstance(proxy, Pyro4.Proxy):
        return PYRO4_PROXIES
    if type(proxy).__module__.split(".")[0] != "Pyro5" and not any(
            cls.__module__.split(".")[0] == "Pyro5" for cls in type(proxy).__mro__):
        raise TypeError(f"expected a Pyro4.Proxy or a Pyro5.api.Proxy, got {proxy!r}")
    kind = _pyro5()
    if not isinstance(proxy, kind.proxy_class):
        raise TypeError(f"expected a Pyro4.Proxy or a Pyro5.api.Proxy, got {proxy!r}")
    return kind


def claim(proxy: Any) -> None:
    """This thread takes over ``proxy``: Pyro5's ``_pyroClaimOwnership()`` (a Pyro4 proxy
    may be used from any thread, one at a time, and has no such method)."""
    if not isinstance(proxy, Pyro4.Proxy):
        proxy._pyroClaimOwnership()
