"""The commands' log: ``twisted.logger`` events, one line each, on stderr.

By default ``pyro.*`` events from ``info`` up (listening, names registered, clients refused,
shutting down) and everything else (the native client's notes on reconnecting, Twisted's
"Starting factory") from ``warn`` up; ``--verbose`` shows everything from
``debug`` up, ``--quiet`` only warnings and errors. (Under ``twistd``, twistd's own log
is used instead.)
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

__all__ = ["log_observer", "start_logging"]


def log_observer(verbosity: int, stream: TextIO) -> Any:
    """An observer writing the events ``verbosity`` (-1, 0, 1) asks for to ``stream``."""
    predicate = LogLevelFilterPredicate(
        defaultLogLevel=LogLevel.debug if verbosity > 0 else LogLevel.warn)
    if verbosity == 0:
        predicate.setLogLevelForNamespace("pyro", LogLevel.info)
        # the client's reconnection notes, and Twisted's "Starting factory" lines: no
        predicate.setLogLevelForNamespace("pyro.client", LogLevel.warn)
        predicate.setLogLevelForNamespace("pyro.server.factory", LogLevel.warn)
    return FilteringLogObserver(textFileLogObserver(stream), [predicate])


def start_logging(verbosity: int, stream: TextIO | None = None) -> None:
    """Send the process's log events to ``stream`` (default: stderr) from now on."""
    globalLogBeginner.beginLoggingTo([log_observer(verbosity, stream or sys.stderr)],
                                     redirectStandardIO=False)
