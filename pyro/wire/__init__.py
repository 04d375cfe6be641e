"""Pyro's wire protocol as plain Python: no sockets, no reactor, no Twisted.

Both roles use it: the server (:mod:`pyro.server`) and the native client (:mod:`pyro.client`).

- :mod:`pyro.wire.framing`: Pyro4 frames (header, annotations, checksum, HMAC, size limits),
  :class:`MessageReader` (bytes in, messages out) and :func:`encode`.
- :mod:`pyro.wire.fastserpent`: a decoder for serpent's literal subset, for the hot path.

Everything :mod:`pyro.wire.framing` exports is importable from here too (``pyro.wire.encode``).
"""

from .framing import *  # noqa: F403 -- the documented flat names (pyro.wire.MessageReader)
from .framing import __all__ as _framing_all

__all__ = list(_framing_all)
