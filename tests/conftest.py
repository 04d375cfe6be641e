"""The reactor the test session runs on: ``TWISTED_PYRO_TEST_REACTOR=asyncio`` (or
``--reactor=asyncio``) runs the whole suite on Twisted's asyncio reactor instead of the
platform default. (Not a ``PYRO_`` name: Pyro5 refuses to import when the environment holds a
``PYRO_*`` variable it does not know.)

A reactor can be installed once per process, before anything imports
``twisted.internet.reactor``: pytest imports this file before any test module, so this is the
place. The choice is checked, not assumed: a session asked for the asyncio reactor that finds
another one installed already stops at once with the reason.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

REACTORS = ("default", "asyncio")


def _chosen(argv: list[str]) -> str:
    """``--reactor=NAME`` / ``--reactor NAME`` on the command line, else the environment."""
    for index, arg in enumerate(argv):
        if arg.startswith("--reactor="):
            return arg.split("=", 1)[1]
        if arg == "--reactor" and index + 1 < len(argv):
            return argv[index + 1]
    return os.environ.get("TWISTED_PYRO_TEST_REACTOR", "default") or "default"


def _install(name: str) -> None:
    if name not in REACTORS:
        raise pytest.UsageError("unknown reactor %r (choose from %s)" % (name, ", ".join(REACTORS)))
    if name == "asyncio":
        if "twisted.internet.reactor" in sys.modules:
            from twisted.internet import reactor

            raise pytest.UsageError("the asyncio reactor was asked for, but %s is installed "
                                    "already" % type(reactor).__name__)
        import asyncio

        from twisted.internet import asyncioreactor

        asyncioreactor.install(asyncio.new_event_loop())


# Installed when pytest loads this file: before any test module imports the reactor, and
# before pytest parses the options (so the option is read from sys.argv as well).
_REACTOR = _chosen(sys.argv)
_install(_REACTOR)


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--reactor", default=_REACTOR, choices=REACTORS,
                     help="the Twisted reactor the tests run on (also: TWISTED_PYRO_TEST_REACTOR)")


def pytest_report_header(config: Any) -> str:
    from twisted.internet import reactor

    return "reactor: %s.%s" % (type(reactor).__module__, type(reactor).__name__)
