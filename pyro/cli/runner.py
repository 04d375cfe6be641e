"""Running a command's service in this process: start, report, serve until told to stop.

As ``twistd`` runs a service, without the daemonizing: ``privilegedStartService`` and
``startService`` once the reactor runs, ``stopService`` before the reactor shuts down (on
SIGTERM or SIGINT), and the reactor waits for it. A second SIGTERM or SIGINT meanwhile
ends the process at once (exit status 1): nothing more is waited for. A mistake (a port in
use, a name server that cannot be reached, ...) is one line on stderr and exit status 1;
``--verbose`` adds the traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._reactor import default_reactor
from .errors import describe

__all__ = ["report", "run_service"]

log = Logger(namespace="pyro.cli")


def report(prog: str, error: BaseException | Failure, verbose: bool,
           stream: TextIO | None = None) -> None:
    """``prog: error: what went wrong`` on stderr (after the traceback, with ``verbose``)."""
    stream = stream or sys.stderr
    exc = error.value if isinstance(error, Failure) else error
    message, expected = describe(exc)
    if verbose:
        if isinstance(error, Failure):
            stream.write(error.getTraceback())
        else:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=stream)
    print("%s: error: %s" % (prog, message), file=stream, flush=True)


def run_service(service: Any, prog: str, verbose: bool,
                on_ready: Callable[[Any], None], reactor: Any = None) -> int:
    """Run ``service`` until the reactor is stopped; the exit status.

    ``on_ready`` gets what ``service.ready`` fires with (and prints it).
    """
    reactor = default_reactor(reactor)
    status = [0]
    served = [False]

    def failed(error: BaseException | Failure) -> None:
        report(prog, error, verbose)
        status[0] = 1
        if reactor.running:
            reactor.stop()

    def stop() -> defer.Deferred[None]:
        d = defer.maybeDeferred(service.stopService)

        def stopped(result: Any) -> None:
            if isinstance(result, Failure):
                report(prog, result, verbose)  # (the reactor is stopping already)
                status[0] = 1
            elif served[0]:
                log.info("stopped")

        return d.addBoth(stopped)

    def begin() -> None:
        _handle_signals(reactor)
        reactor.addSystemEventTrigger("before", "shutdown", stop)
        try:
            service.privilegedStartService()
            service.startService()
        except Exception as exc:
            failed(exc)
            return

        def not_ready(failure: Failure) -> None:
            if not failure.check(defer.CancelledError):  # (stopped while starting)
                failed(failure)

        def ready(result: Any) -> None:
            served[0] = True
            on_ready(result)

        service.ready.addCallbacks(ready, not_ready)
        service.ready.addErrback(failed)  # on_ready itself failed

    reactor.callWhenRunning(begin)
    reactor.run()
    return status[0]


def _handle_signals(reactor: Any) -> None:
    """SIGTERM/SIGINT: stop the reactor (gracefully); either again: exit now.

    Replaces the handlers Twisted installed (which log a ``ReactorNotRunning`` traceback
    for a second signal). A signal this process was told to ignore stays ignored.
    """
    stopping: list[int] = []

    def received(number: int) -> None:
        name = signal.Signals(number).name
        if not stopping:
            stopping.append(number)
            log.info("received {signal}", signal=name)
            reactor.stop()
        else:
            log.warn("{signal} again: exiting without waiting any longer", signal=name)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)

    def handler(number: int, frame: Any) -> None:
        reactor.callFromThread(received, number)

    for number in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(number) not in (signal.SIG_IGN, None):
            signal.signal(number, handler)
