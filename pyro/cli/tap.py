"""``twistd pyro-serve`` and ``twistd pyro-ns``: the commands as ``twistd`` plugins.

``twisted/plugins/pyro_plugins.py`` names :data:`serve` and :data:`ns` (each with the
``Options`` and ``makeService`` that ``twisted.application.service.ServiceMaker`` looks
for). They parse with the commands' own parsers (:mod:`pyro.cli.options`) and build the
same services (:mod:`pyro.cli.startup`); ``twistd`` then runs them, with its own logging,
daemonizing, pid file, ``--uid``/``--gid``: ports are bound before privileges are dropped.
``-v``/``-q`` are accepted and left to twistd's log. A service that cannot start (a name
server that cannot be reached, say) logs why and stops the reactor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.logger import Logger
from twisted.python import usage

from .errors import describe
from .options import UsageError, command_parser, parse_command
from .specs import SpecError
from .startup import load_objects, name_server_lines, name_server_service, serve_service

__all__ = ["ns", "serve"]

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


def _stop_when_failed(service: Any, name: str) -> None:
    """Under twistd nobody waits for ``ready``: a failure is logged, and stops the reactor."""
    from twisted.internet import defer, reactor

    def failed(failure: Any) -> None:
        if failure.check(defer.CancelledError):
            return
        log.critical("{name} cannot start: {error}", name=name,
                     error=describe(failure.value)[0])
        reactor.callWhenRunning(reactor.stop)

    service.ready.addErrback(failed)


class _Tap:
    """What ``ServiceMaker`` finds at a module path: ``Options`` and ``makeService``."""

    def __init__(self, options: type[_CommandOptions]) -> None:
        self.Options = options

    def makeService(self, options: _CommandOptions) -> Any:
        service: Any
        if options.command == "serve":
            service = serve_service(options.config, options.objects)
        else:
            service = name_server_service(options.config)
            service.ready.addCallback(_log_name_server, service)
        _stop_when_failed(service, options.prog)
        return service


def _log_name_server(uri: Any, service: Any) -> Any:
    for line in name_server_lines(service):
        log.info("{line}", line=line)
    return uri


serve = _Tap(ServeOptions)
ns = _Tap(NameServerOptions)
