"""A native Twisted Pyro4 client: Deferreds from the reactor thread, no threads at all.

``pyro.proxy`` wraps Pyro4's blocking ``Proxy`` in threads. This package speaks the wire
protocol itself, on top of the sans-IO :mod:`pyro.wire`, so that a Twisted program can call
thousands of Pyro4 objects concurrently without a thread per call::

    from pyro.client import DeferredProxy

    proxy = DeferredProxy("PYRONAME:example.thing")        # or PYRO:obj@host:port
    total = await proxy.add(1, 2)                          # any remote method → Deferred
    async for item in await proxy.numbers(10): ...         # item streams
    await proxy.close()

Four layers, one module each, each testable on its own:

- :mod:`pyro.client.protocol`: :class:`PyroClientProtocol` is one connection: the CONNECT
  handshake, then pipelined INVOKE requests matched to replies by sequence number (Pyro4
  servers answer in order); :class:`ItemStream` reads item streams on it.
- :mod:`pyro.client.pool`: :class:`~pyro.client.pool.ConnectionPool` holds a proxy's
  connections to one server: it opens them (reconnecting with backoff, keeping
  ``min_connections``), chooses the connection for each call and queues the calls that must
  wait (``max_in_flight``, room per connection).
- :mod:`pyro.client.proxy`: :class:`DeferredProxy` is Pyro4's proxy behaviour (metadata,
  oneway, attributes, batches, annotations, ``_pyro*`` names), timeouts and cancellation, on
  top of its pool.
- :mod:`pyro.client.naming`: :func:`resolve` / :func:`locate_ns` turn ``PYRONAME:`` /
  ``PYROMETA:`` URIs into ``PYRO:`` URIs through a Pyro4 name server, using the same client,
  optionally patiently.

Beside them, :mod:`pyro.client.endpoints` makes the Twisted endpoint for a URI (TCP, TLS
from ``Pyro4.config``'s SSL items, UNIX sockets), and :mod:`pyro.client.lifetime` lets a
proxy nobody holds close its connections, as a collected ``Pyro4.Proxy`` does.

Everything Pyro4 already does well is reused: its serializers (``Pyro4.util``), ``URI``,
errors, and ``futures._ExceptionWrapper`` for batches. Call everything from the reactor thread.

Pyro5: ``DeferredProxy(uri, pyro_version=5)`` (or a ``Pyro5.core.URI`` object as ``uri``)
speaks Pyro5's protocol instead, through the codec :data:`pyro.wire.pyro5.PYRO5` that each
connection carries (``PyroClientProtocol.codec``), with Pyro5's own serializers, URIs,
errors, ``current_context``, config and name server (``locate_ns(codec=PYRO5)``). It needs
the optional Pyro5 package (``pip install twisted-pyro[pyro5]``).
"""

from .naming import locate_ns, resolve
from .protocol import ClientState, ItemStream, PyroClientProtocol
from .proxy import Batch, DeferredProxy, default_endpoint

__all__ = [
    "Batch",
    "ClientState",
    "DeferredProxy",
    "ItemStream",
    "PyroClientProtocol",
    "default_endpoint",
    "locate_ns",
    "resolve",
]
