"""``--reactor``: which Twisted reactor ``python -m pyro serve|ns`` runs on.

A reactor is chosen by installing it before anything imports ``twisted.internet.reactor``
(after that the global reactor is whatever was imported), so the command installs the one
asked for right after parsing, before the SPEC modules are imported (a servant module may
import the reactor). ``twistd`` does the same with its own ``--reactor`` (``twistd
--reactor=asyncio pyro-serve ...``), which is why the ``twistd`` plugins take no such option.

- ``default``: Twisted's choice for the platform (epoll on Linux), as ``twistd`` without
  ``--reactor``;
- ``asyncio``: Twisted's asyncio reactor on a new asyncio event loop (twistd's
  ``--reactor=asyncio``): ``async def`` servants run as asyncio tasks and may await asyncio
  libraries;
- ``uvloop``: the asyncio reactor on a uvloop event loop, when uvloop is installed.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from twisted.logger import Logger

from .._reactor import asyncio_loop

__all__ = ["DEFAULT", "REACTORS", "ReactorUnavailable", "announce", "install"]

log = Logger(namespace="pyro.cli")

DEFAULT = "default"

#: The names ``--reactor`` takes, and what each is.
REACTORS = {
    DEFAULT: "Twisted's choice for this platform (epoll on Linux)",
    "asyncio": "Twisted's asyncio reactor (async def servants may await asyncio libraries)",
    "uvloop": "the asyncio reactor on uvloop's event loop (needs uvloop)",
}


class ReactorUnavailable(Exception):
    """The reactor asked for cannot be had here; the message says why."""


def install(name: str) -> None:
    """Install the reactor called ``name`` (one of :data:`REACTORS`) as the global reactor.

    Raises :class:`ReactorUnavailable` when it cannot be had: uvloop is not
    installed, or another reactor is installed already (an in-process caller of
    :func:`pyro.cli.main` imported one). A reactor of the kind asked for that is installed
    already is kept.
    """
    if name == DEFAULT:
        return
    if name not in REACTORS:
        raise ReactorUnavailable("no reactor called %r (choose from %s)" % (
            name, ", ".join(REACTORS)))
    if "twisted.internet.reactor" in sys.modules:
        _check_installed(name)
        return
    from twisted.internet import asyncioreactor

    loop = _new_loop(name)
    asyncio.set_event_loop(loop)  # code that asks asyncio for "the" loop gets the reactor's
    asyncioreactor.install(loop)


def _new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            raise ReactorUnavailable("--reactor uvloop needs uvloop, which is not installed "
                               "(pip install uvloop)") from exc
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _check_installed(name: str) -> None:
    from twisted.internet import reactor

    installed: Any = reactor
    loop = asyncio_loop(installed)
    if loop is None or (name == "uvloop") != (type(loop).__module__.startswith("uvloop")):
        raise ReactorUnavailable("cannot run on the %s reactor: %s.%s is installed already" % (
            name, type(installed).__module__, type(installed).__name__))


def announce(name: str) -> None:
    """Log the reactor ``--reactor`` chose, and its event loop (nothing for the default)."""
    if name == DEFAULT:
        return
    from twisted.internet import reactor

    installed: Any = reactor
    loop = asyncio_loop(installed)
    log.info("running on the {name} reactor: {reactor} on {loop}", name=name,
             reactor=type(installed).__name__, loop="%s.%s" % (
                 type(loop).__module__, type(loop).__name__))
