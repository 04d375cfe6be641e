"""The server role: a ``Pyro4.Daemon`` for Twisted. Public names are in :mod:`pyro.protocol`.

- :mod:`~pyro.server.factory`: :class:`Pyro4ProtocolFactory`, the daemon (registry, ports,
  hooks, connections).
- :mod:`~pyro.server.protocol`: :class:`Pyro4Protocol`, one connection as a state machine.
- :mod:`~pyro.server.dispatch`: from a parsed request to a servant call and back to a reply.
- :mod:`~pyro.server.context`, :mod:`~pyro.server.connection`, :mod:`~pyro.server.streams`,
  :mod:`~pyro.server.daemonobject`, :mod:`~pyro.server.tracebacks`,
  :mod:`~pyro.server.placement`: what the dispatcher needs, one job each.
- :mod:`~pyro.server.pyro5`: what serving Pyro5 clients adds (their ``current_context``,
  Pyro5's exception classes, Pyro5 autoproxies); imported only when Pyro5 is needed.
- :mod:`~pyro.server.references`: a URI or proxy of either generation that a servant returns
  reaches each client as its own generation's (same text, same metadata), in every
  serializer; installed with :mod:`~pyro.server.pyro5`.
"""
