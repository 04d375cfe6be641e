"""twisted-pyro: Pyro4 and Twisted, working together.

- :mod:`pyro.protocol` serves Pyro4 objects from a Twisted reactor to unmodified Pyro4 clients.
- :mod:`pyro.proxy` calls Pyro4 objects from Twisted code through worker threads; every call
  returns a Deferred.
- :mod:`pyro.client` is a native Twisted Pyro4 client (no threads): calls return Deferreds.
- :mod:`pyro.wire` is Pyro4's wire protocol as plain Python (no I/O, no Twisted).
- :mod:`pyro.nameserver` is Pyro4's name server on the reactor; :mod:`pyro.service` has
  Twisted services (a server, a name server) for ``.tac`` files and ``twistd``;
  :mod:`pyro.cli` is the command line (``python -m pyro``, ``twisted-pyro``).

Importing this package installs no reactor.
"""

__version__ = "0.1.0"
