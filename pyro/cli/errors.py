"""What went wrong, in one line a person can act on: the commands print these, not tracebacks.

:func:`describe` knows the mistakes people make (a port in use, a module that is not there,
an endpoint that does not parse, a name server that cannot be reached, a wrong storage URL);
anything else is named by its type and message, with a hint that ``--verbose`` shows the
traceback.
"""

from __future__ import annotations

import errno

from Pyro4 import errors as pyro_errors
from twisted.internet.error import CannotListenError

from ..service import BroadcastListenError
from ..storage import StorageError
from .options import UsageError
from .reactors import ReactorUnavailable
from .registration import NameServerError
from .specs import SpecError

__all__ = ["StartupError", "describe"]


class StartupError(Exception):
    """A startup step failed; the message says which and why."""


_EXPECTED = (StartupError, UsageError, SpecError, StorageError, NameServerError,
             ReactorUnavailable)


def _listen_error(exc: CannotListenError) -> str:
    error = exc.socketError
    code = getattr(error, "errno", None)
    if exc.interface is None or isinstance(exc.port, (str, bytes)):  # a UNIX socket
        where = "UNIX socket %s" % (exc.port.decode() if isinstance(exc.port, bytes)
                                     else exc.port)
    else:
        kind = "UDP port" if isinstance(exc, BroadcastListenError) else "port"
        where = "%s %s on %s" % (kind, exc.port, exc.interface or "all interfaces")
        if isinstance(exc, BroadcastListenError):
            where += " (name server broadcasts)"
    if code == errno.EADDRINUSE:
        return "%s is in use" % where
    if code == errno.EACCES:
        return "no permission to listen on %s" % where
    if code == errno.EADDRNOTAVAIL:
        return "cannot listen on %s: no such address here" % where
    reason = getattr(error, "strerror", None) or str(error)
    return "cannot listen on %s: %s" % (where, reason)


def describe(exc: BaseException) -> tuple[str, bool]:
    """``(message, expected)``: one line, and whether it is a mistake we know (no traceback
    needed) rather than a surprise."""
    if isinstance(exc, CannotListenError):
        return _listen_error(exc), True
    if isinstance(exc, _EXPECTED):
        return str(exc), True
    if isinstance(exc, pyro_errors.PyroError):
        return "%s: %s" % (type(exc).__name__, exc), True
    return "unexpected %s: %s (--verbose shows the traceback)" % (type(exc).__name__, exc), False
