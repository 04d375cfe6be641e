"""The command line: ``python -m pyro demo|serve|ns`` (also installed as ``twisted-pyro``).

One module per job: :mod:`.options` (the options of every command, shared with the
``twistd`` plugins of :mod:`.tap`), :mod:`.specs` (``module:attribute=name``),
:mod:`.startup` (configuration → service, the one startup path), :mod:`.registration`
(names in the name server), :mod:`.runner` (running a service until SIGTERM/SIGINT),
:mod:`.reactors` (``--reactor``), :mod:`.logs` (the log on stderr) and :mod:`.errors`
(mistakes in one line).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "program_name"]


def program_name(argv0: str | None = None) -> str:
    """What usage lines call the program: the script's name (``twisted-pyro``), or
    ``python -m pyro`` when run as a module."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    if not name or name in ("-c", "-m") or name == "__main__.py":
        return "python -m pyro"
    return name


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run a command; its exit status."""
    from .options import DemoConfig, ServeConfig, UsageError, parse

    prog = prog or program_name()
    try:
        config = parse(argv, prog)
    except UsageError as exc:
        print("%s: error: %s" % (exc.prog, exc), file=sys.stderr)
        return 2
    if isinstance(config, DemoConfig):
        return _demo(config.prog, config.verbosity > 0)

    from . import reactors
    from .errors import StartupError
    from .logs import start_logging
    from .runner import report, run_service
    from .specs import SpecError
    from .startup import load_objects, name_server_lines, name_server_service, serve_service

    verbose = config.verbosity > 0
    try:
        reactors.install(config.reactor)  # first: SPEC modules may import the reactor
    except reactors.ReactorUnavailable as exc:
        report(config.prog, exc, verbose)
        return 1
    start_logging(config.verbosity)
    reactors.announce(config.reactor)
    if isinstance(config, ServeConfig):
        try:
            objects = load_objects(config)
        except (SpecError, StartupError) as exc:
            report(config.prog, exc, verbose)
            return 1

        def print_uris(served: Any) -> None:
            for loaded, uri in served:
                print("%s = %s" % (loaded.spec.target, uri), flush=True)

        return run_service(serve_service(config, objects), config.prog, verbose, print_uris)

    service = name_server_service(config)

    def print_name_server(_: Any) -> None:
        print("\n".join(name_server_lines(service)), flush=True)

    return run_service(service, config.prog, verbose, print_name_server)


def _demo(prog: str, verbose: bool) -> int:
    """Run :mod:`pyro.demo`; a failure is one line on stderr (and exit status 1)."""
    from twisted.internet import task

    from .. import demo
    from .errors import StartupError
    from .runner import report

    def failed(failure: Any) -> None:
        error = failure.value
        if isinstance(error, demo.DemoError):  # a message that says it all
            failure = StartupError(str(error))
            failure.__cause__ = error  # (the traceback --verbose shows)
        report(prog, failure, verbose)
        raise SystemExit(1)  # task.react turns this into the process's exit status

    task.react(lambda reactor: demo.run(reactor).addErrback(failed))
    return 0
