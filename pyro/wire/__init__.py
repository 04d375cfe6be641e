"""Pyro's wire protocol as plain Python: no sockets, no reactor, no Twisted.

Both roles use it: the server (:mod:`pyro.server`) and the native client (:mod:`pyro.client`),
for both protocol generations, one codec each with the same methods:

- :mod:`pyro.wire.framing`: Pyro4 frames (header, annotations, checksum, HMAC, size limits),
  :class:`MessageReader` (bytes in, messages out; either generation, by its
  :class:`FrameFormat`) and :func:`encode`.
- :mod:`pyro.wire.framing5`: Pyro5's frames (40-byte header, correlation id, no HMAC).
- :mod:`pyro.wire.events`: what a message means (connect, invoke, replies), for both.
- :mod:`pyro.wire.pyro4` (:data:`PYRO4`) and :mod:`pyro.wire.pyro5` (``PYRO5``, needs the
  optional Pyro5 package): the codecs; :mod:`pyro.wire.messages` keeps the older imports.
- :mod:`pyro.wire.generations`: :func:`generation_of` (which codec a connection's first
  6 bytes ask for) and :class:`Generation`.
- :mod:`pyro.wire.fastserpent`: a decoder for serpent's literal subset, for the hot path.

Everything :mod:`pyro.wire.framing` exports is importable from here too (``pyro.wire.encode``),
and so are :func:`generation_of`, :class:`Generation` and :class:`GenerationUnavailable`.
Nothing here imports Pyro5 until the Pyro5 codec is asked for.
"""

from .framing import *  # noqa: F403 -- the documented flat names (pyro.wire.MessageReader)
from .framing import __all__ as _framing_all
from .generations import (
    PREFIX_SIZE,
    Generation,
    GenerationUnavailable,
    UnknownGeneration,
    generation_of,
    pyro5_codec,
)

__all__ = [*_framing_all, "PREFIX_SIZE", "Generation", "GenerationUnavailable",
           "UnknownGeneration", "generation_of", "pyro5_codec"]
