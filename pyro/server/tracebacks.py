"""Remote tracebacks in Pyro4's format, starting at the servant's own frames.

Pyro4 clients show ``_pyroTraceback`` (from ``Pyro4.util.formatTraceback``) to their users.
A call that went through Twisted has framework frames above the servant: Deferred
callbacks, ``inlineCallbacks``, thread pools, and our own dispatch. They say nothing about
the user's bug, so they are cut from the front of the traceback.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from types import TracebackType
from typing import Any

import twisted
from Pyro4 import util
from Pyro4.configuration import config
from twisted.python.failure import Failure

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_FRAMEWORK_PREFIXES = (
    os.path.dirname(os.path.abspath(twisted.__file__)) + os.sep,
    os.path.join(_PACKAGE_DIR, "dispatch.py"),
    os.path.join(_PACKAGE_DIR, "context.py"),
    os.path.join(_PACKAGE_DIR, "coroutines.py"),
    os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep,
    os.path.join(_PACKAGE_DIR, "protocol.py"),
)


def _is_framework_frame(tb: Any) -> bool:
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    return filename.startswith(_FRAMEWORK_PREFIXES)


def _servant_frames(tb: Any) -> Any:
    """Skip the framework frames at the front; keep everything if nothing else is left."""
    first = tb
    while tb is not None and _is_framework_frame(tb):
        tb = tb.tb_next
    return tb if tb is not None else first


def format_remote_traceback(
    exc_type: type[BaseException], exc_value: BaseException, tb: TracebackType | Any | None,
    detailed: bool | None = None,
) -> list[str]:
    """Lines for ``_pyroTraceback``, honouring ``DETAILED_TRACEBACK`` (``detailed``: the
    client generation's setting; None: ``Pyro4.config``'s, read now). Pyro5's
    ``errors.format_traceback`` writes the same lines as Pyro4's: one formatter serves both."""
    if tb is not None:
        tb = _servant_frames(tb)
    if detailed is None:
        detailed = config.DETAILED_TRACEBACK
    try:
        return util.formatTraceback(exc_type, exc_value, tb, detailed=detailed)
    except Exception:
        # a cleaned Failure's stand-in traceback may not satisfy every formatter
        return traceback.format_exception_only(exc_type, exc_value)


def failure_traceback(failure: Failure, detailed: bool | None = None) -> list[str]:
    """Remote traceback lines for a Twisted ``Failure``."""
    return format_remote_traceback(failure.type, failure.value, failure.getTracebackObject(),
                                   detailed)
