"""``twistd pyro-serve`` and ``twistd pyro-ns``: the commands as ``twistd`` plugins.

``twisted/plugins/pyro_plugins.py`` names :data:`serve` and :data:`ns` (each with the
``Options`` and ``makeService`` that ``twisted.application.service.ServiceMaker`` looks
for). They parse with the commands' own parsers (:mod:`pyro.cli.options`) and build the
same services (:mod:`pyro.cli.startup`); ``twistd`` then runs them, with its own logging,
daemonizing, pid file, ``--uid``/``--gid``: ports are bound before privileges are dropped.
``-v``/``-q`` are accepted and left to twistd's log.

A service that cannot start is said in one line (:class:`TwistdService`), and how twistd
ends depends on *when* it fails:

- while twistd starts it (a port in use, a storage that cannot be opened, the broadcast
  port in use, an object served twice: everything decided before the reactor runs), the
  failure is raised to twistd as a :class:`~pyro.cli.errors.StartupError`, and twistd exits
  with status 1: with ``-n``, ``twistd pyro-ns: error: ...`` on stderr (not twistd's
  traceback); daemonized, twistd's own ``An error has occurred: b'...StartupError: ...'``
  (its status pipe carries 100 bytes of the exception's line);
- once the reactor runs (``--ns`` and a name server that does not answer), the failure is
  logged (critical) and the reactor stopped: twistd then exits with status 0, because it has
  no way to say otherwise (a daemon's parent has exited with 0 already, when the service
  started; ``-n`` exits with 0 unless a signal stopped the reactor).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from .errors import StartupError, describe
from .options import UsageError, command_parser, parse_command
from .specs import SpecError
from .startup import load_objects, name_server_lines, name_server_service, serve_service

__all__ = ["TwistdService", "ns", "serve"]

log = Logger(namespace="pyro.cli")


class _CommandOptions(usage.Options):
    """A ``twistd`` subcommand's options, parsed by the command's argparse parser."""

    command = ""
    config: Any = None
    objects: Any = None

    @property
    def prog(self) -> str:
        return "twistd pyro-%s" % self.command

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        try:
            self.config = parse_command(self.command, options, self.prog)
            if self.command == "serve":
                self.objects = load_objects(self.config)
        except (UsageError, SpecError) as exc:
            raise usage.UsageError(str(exc)) from None

    def getUsage(self, width: int | None = None) -> str:
        return command_parser(self.command, self.prog).format_help()


class ServeOptions(_CommandOptions):
    command = "serve"


class NameServerOptions(_CommandOptions):
    command = "ns"


class TwistdService(MultiService):
    """What ``twistd`` runs: a command's service, its startup failures said in one line.

    A failure while twistd starts the service (``privilegedStartService``, ``startService``,
    or ``ready`` failing before ``startService`` returns) is logged and raised to twistd as a
    :class:`~pyro.cli.errors.StartupError` (exit status 1); its traceback, which Python would
    print as twistd gives up, is replaced by ``prog: error: message`` on the real stderr.
    A failure of ``ready`` later is logged, and stops the reactor.
    """

    def __init__(self, service: Any, prog: str) -> None:
        MultiService.__init__(self)
        self.service = service
        self.prog = prog
        self._starting = False
        self._early: Failure | None = None
        service.setServiceParent(self)
        service.ready.addErrback(self._not_ready)

    def privilegedStartService(self) -> None:
        try:
            MultiService.privilegedStartService(self)
        except Exception as exc:
            self._give_up(Failure(exc))

    def startService(self) -> None:
        self._starting = True
        try:
            MultiService.startService(self)
        except Exception as exc:
            self._give_up(Failure(exc))
        finally:
            self._starting = False
        if self._early is not None:
            self._give_up(self._early)

    def _not_ready(self, failure: Failure) -> None:
        if failure.check(defer.CancelledError):
            return
        if self._starting:  # raised by startService, to twistd
            self._early = failure
            return
        from twisted.internet import reactor

        log.critical("{prog} cannot start: {error}", prog=self.prog,
                     error=describe(failure.value)[0])
        reactor.callWhenRunning(reactor.stop)

    def _give_up(self, failure: Failure) -> None:
        message = describe(failure.value)[0]
        log.critical("{prog} cannot start: {error}", prog=self.prog, error=message)
        error = StartupError(message)
        previous = sys.excepthook

        def one_line(kind: Any, value: Any, traceback: Any) -> None:
            if value is error:
                print("%s: error: %s" % (self.prog, message), file=sys.__stderr__, flush=True)
            else:
                previous(kind, value, traceback)

        sys.excepthook = one_line  # (twistd lets the exception end the process)
        raise error from None


class _Tap:
    """What ``ServiceMaker`` finds at a module path: ``Options`` and ``makeService``."""

    def __init__(self, options: type[_CommandOptions]) -> None:
        self.Options = options

    def makeService(self, options: _CommandOptions) -> TwistdService:
        service: Any
        if options.command == "serve":
            service = serve_service(options.config, options.objects)
        else:
            service = name_server_service(options.config)
            service.ready.addCallback(_log_name_server, service)
        return TwistdService(service, options.prog)


def _log_name_server(uri: Any, service: Any) -> Any:
    for line in name_server_lines(service):
        log.info("{line}", line=line)
    return uri


serve = _Tap(ServeOptions)
ns = _Tap(NameServerOptions)
