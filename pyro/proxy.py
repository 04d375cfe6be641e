"""Call Pyro4 objects from Twisted code through worker threads: every call returns a ``Deferred``.

The public face of :mod:`pyro.threaded`. Two classes:

``PyroDeferredService`` (:mod:`pyro.threaded.service`)
    wraps any ``Pyro4.Proxy`` (``PYRO:``, ``PYRONAME:``, ``PYROMETA:``; HMAC key, handshake,
    serializer, timeout, retries: whatever the proxy was set up with). ``service.method(...)``
    returns a ``Deferred``; the blocking Pyro4 call runs in a small pool of worker threads and
    the result comes back to the reactor thread. A remote generator's result is an
    ``ItemStream`` (items as Deferreds, ``async for``); ``service.batch()`` gives a ``Batch``
    (Pyro4's batch calls: one message, a Deferred of the list of results).

``PyroPatientProxy`` (:mod:`pyro.threaded.patient`)
    a ``Pyro4.Proxy`` that waits for its name server, its object or its daemon to appear
    instead of failing at once. It *blocks* while it waits: give it to a
    ``PyroDeferredService`` (or use it in a thread of your own), never call it directly from
    the reactor thread.

The native client, with no threads at all, is :mod:`pyro.client`.
"""

from .threaded.patient import DEFAULT_MAX_TRIES, DEFAULT_RETRY_INTERVAL, PyroPatientProxy
from .threaded.service import DEFAULT_MAX_WORKERS, Batch, ItemStream, PyroDeferredService
from .threaded.workers import ReactorForService

__all__ = [
    "DEFAULT_MAX_TRIES", "DEFAULT_MAX_WORKERS", "DEFAULT_RETRY_INTERVAL", "Batch", "ItemStream",
    "PyroDeferredService", "PyroPatientProxy", "ReactorForService",
]
