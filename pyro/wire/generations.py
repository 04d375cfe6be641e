"""Which Pyro generation a connection speaks, from its first bytes; the codec for each.

Both generations open with a CONNECT whose header starts with ``b"PYRO"`` and a u16 protocol
version: 48 for Pyro4, 502 for Pyro5. So the first 6 bytes a server receives choose the
codec for the whole connection (:func:`generation_of`), with nothing for the user to set.
The Pyro5 codec is imported only when it is asked for (:attr:`Generation.codec`): Pyro5 is
an optional dependency, and a missing one is a clear :class:`GenerationUnavailable`.
"""

from __future__ import annotations

import enum
import struct
from typing import Any

from Pyro4 import errors

from .framing import WireError

__all__ = ["Generation", "GenerationUnavailable", "PREFIX_SIZE", "UnknownGeneration",
           "generation_of", "pyro5_codec"]

#: How many bytes :func:`generation_of` needs: ``b"PYRO"`` and the u16 version.
PREFIX_SIZE = 6
_TAG = b"PYRO"


class UnknownGeneration(WireError):
    """The first bytes of a connection are no Pyro message of a generation we know.

    ``version`` is the protocol version they named (None: not even ``b"PYRO"``), so a
    server can word its refusal as the real daemons do."""

    def __init__(self, text: str, version: int | None):
        super().__init__(errors.ProtocolError(text))
        self.version = version


class GenerationUnavailable(ImportError):
    """The package a protocol generation needs is not installed (one line, names it)."""


class Generation(enum.Enum):
    """A Pyro protocol generation, named by its wire protocol version."""

    PYRO4 = 48
    PYRO5 = 502

    @property
    def codec(self) -> Any:
        """The generation's codec (``PYRO4`` or ``PYRO5``, same methods); Pyro5's is imported
        now, raising :class:`GenerationUnavailable` when the Pyro5 package is missing."""
        if self is Generation.PYRO4:
            from .pyro4 import PYRO4

            return PYRO4
        return pyro5_codec()


def pyro5_codec() -> Any:
    """:data:`pyro.wire.pyro5.PYRO5`, or :class:`GenerationUnavailable` saying what to
    install, or why Pyro5 cannot be imported (its config refuses environment variables
    ``PYRO_*`` it does not know, such as Pyro4's ``PYRO_HMAC_KEY``)."""
    try:
        from .pyro5 import PYRO5
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] not in ("Pyro5", "serpent"):
            raise
        raise GenerationUnavailable(
            "Pyro5 is not installed: pip install Pyro5 (or twisted-pyro[pyro5])") from exc
    except ValueError as exc:  # Pyro5's config refuses PYRO_* variables it does not know
        raise GenerationUnavailable("Pyro5 cannot be imported: %s" % exc) from exc
    return PYRO5


def generation_of(first_bytes: bytes) -> Generation | None:
    """The generation a connection speaks, from the first bytes it sent.

    ``None`` while fewer than :data:`PREFIX_SIZE` bytes arrived and they still look like
    the start of a Pyro message; :class:`UnknownGeneration` (a :class:`WireError` with a
    ``Pyro4.errors.ProtocolError`` cause) when they are not a Pyro message at all or name a
    version neither generation has.
    """
    prefix = bytes(first_bytes[:PREFIX_SIZE])
    if not _TAG.startswith(prefix[:4]):
        raise UnknownGeneration("invalid data: not a Pyro message", None)
    if len(prefix) < PREFIX_SIZE:
        return None
    (version,) = struct.unpack_from("!H", prefix, 4)
    try:
        return Generation(version)
    except ValueError:
        raise UnknownGeneration("invalid protocol version: %d" % version, version) from None
