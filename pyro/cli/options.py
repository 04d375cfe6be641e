"""The options of ``serve`` and ``ns``, defined once.

The command line (``python -m pyro``, ``twisted-pyro``) and the ``twistd`` plugins
(``twistd pyro-serve``, ``twistd pyro-ns``) parse with these parsers, into the same
:class:`ServeConfig` / :class:`NameServerConfig`; the services are built from those
(:mod:`pyro.cli.startup`). Parsing checks everything that can be checked without running
anything: SPEC syntax, endpoint strings, storage URLs, numbers, the HMAC key's source.
Mistakes raise :class:`UsageError` with a one-line message.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..nameserver.registration import DEFAULT_INTERVAL
from ..server.factory import DEFAULT_BACKLOG
from ..service import DEFAULT_GRACE
from ..storage import StorageError, check_storage_url
from .specs import ObjectSpec, SpecError, parse_spec

__all__ = ["DEFAULT_LISTEN", "NameServerConfig", "ServeConfig", "UsageError",
           "build_parser", "parse", "parse_command"]

#: Where ``serve`` listens unless told: a free port on loopback, with a deep backlog.
DEFAULT_LISTEN = "tcp:0:interface=127.0.0.1:backlog=%d" % DEFAULT_BACKLOG

#: Endpoint types that take a ``backlog`` (given ``DEFAULT_BACKLOG`` unless they set one).
_BACKLOG_TYPES = ("tcp", "tcp6", "ssl", "unix")


class UsageError(Exception):
    """A mistake in the options; ``prog`` names the command (``twisted-pyro serve``)."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


@dataclass(frozen=True)
class ServeConfig:
    """``serve``: what to serve, where, and how to stop."""

    prog: str
    specs: tuple[ObjectSpec, ...]
    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    ns: bool = False
    ns_host: str | None = None
    ns_port: int | None = None
    ns_interval: float = DEFAULT_INTERVAL
    threads: int | None = None
    hmac_key: bytes | None = None
    nathost: str | None = None
    natport: int | None = None
    grace: float = DEFAULT_GRACE
    verbosity: int = 0  # -1 quiet, 0 normal, 1 verbose
    reactor: str = "default"  # python -m pyro --reactor (twistd: its own --reactor)


@dataclass(frozen=True)
class NameServerConfig:
    """``ns``: a name server, with ``python -m Pyro4.naming``'s options."""

    prog: str
    listen: str
    host: str | None = None  # the host URIs name (Pyro4 names the -n host as given)
    broadcast: bool = True
    bchost: str | None = None
    bcport: int | None = None
    nathost: str | None = None
    natport: int | None = None
    storage: str = "memory"
    autoclean: float = 0.0
    hmac_key: bytes | None = None
    grace: float = DEFAULT_GRACE
    verbosity: int = 0
    reactor: str = "default"


@dataclass(frozen=True)
class DemoConfig:
    prog: str
    verbosity: int = 0


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of printing and exiting."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(self.prog, message)


# -- value types -----------------------------------------------------------------------------

def _port(text: str) -> int:
    number = int(text)
    if not 0 <= number <= 65535:
        raise ValueError(text)
    return number


_port.__name__ = "port number"


def _seconds(text: str) -> float:
    number = float(text)
    if not number >= 0:  # (NaN too)
        raise ValueError(text)
    return number


_seconds.__name__ = "number of seconds"


def _some_seconds(text: str) -> float:
    number = _seconds(text)
    if number == 0:
        raise ValueError(text)
    return number


_some_seconds.__name__ = "positive number of seconds"


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise ValueError(text)
    return number


_positive.__name__ = "positive number"


# -- the parsers -----------------------------------------------------------------------------

def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grace", type=_seconds, default=DEFAULT_GRACE, metavar="SECONDS",
                        help="on SIGTERM/SIGINT, how long calls in progress may take to "
                             "finish (default: %(default)g)")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="debug logs; tracebacks with errors")
    loudness.add_argument("-q", "--quiet", action="store_true",
                          help="log warnings and errors only")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC",
                        help="MODULE:ATTRIBUTE or MODULE:ATTRIBUTE=NAME: an object or a class "
                             "to serve, with NAME as its object id (and name server name)")
    parser.add_argument("--listen", action="append", metavar="ENDPOINT",
                        help="a Twisted server endpoint, e.g. tcp:9090:interface=0.0.0.0, "
                             "unix:/run/pyro.sock, systemd:domain=INET:index=0; may be "
                             "repeated (default: %s)" % DEFAULT_LISTEN)
    parser.add_argument("--ns", action="store_true",
                        help="register the named objects in the name server (found as "
                             "Pyro4.locateNS finds it), registered again if a restarted name "
                             "server lost them; removed again on shutdown")
    parser.add_argument("--ns-host", metavar="HOST", help="the name server's host")
    parser.add_argument("--ns-port", type=_port, metavar="PORT", help="the name server's port")
    parser.add_argument("--ns-interval", type=_some_seconds, metavar="SECONDS",
                        help="how often the names are checked in the name server, and "
                             "registered again if it lost them (default: %g)" % DEFAULT_INTERVAL)
    parser.add_argument("--threads", type=_positive, metavar="N",
                        help="run blocking servant methods in a pool of N threads (default: "
                             "in the reactor thread)")
    parser.add_argument("-k", "--key", help="the HMAC key to use (or set PYRO_HMAC_KEY)")
    parser.add_argument("--nathost", metavar="HOST",
                        help="the host URIs name, when clients reach this server by another "
                             "address than it listens on (NAT, or 0.0.0.0)")
    parser.add_argument("--natport", type=_port, metavar="PORT",
                        help="the port URIs name, with --nathost (default: the port listened on)")
    _add_common(parser)


def add_ns_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--host", help="hostname to bind server on (default: config.HOST)")
    parser.add_argument("-p", "--port", type=_port, help="port to bind server on (0=random)")
    parser.add_argument("-u", "--unixsocket", help="Unix domain socket name to bind server on")
    parser.add_argument("--listen", metavar="ENDPOINT",
                        help="a Twisted server endpoint instead of -n/-p/-u (e.g. "
                             "systemd:domain=INET:index=0)")
    parser.add_argument("-s", "--storage", default="memory",
                        help="storage system to use (memory, dbm:file, sql:file)")
    parser.add_argument("--bchost", help="hostname to bind broadcast server on (default: all)")
    parser.add_argument("--bcport", type=_port,
                        help="port to bind broadcast server on (0=random)")
    parser.add_argument("--nathost", help="external hostname in case of NAT")
    parser.add_argument("--natport", type=_port, help="external port in case of NAT")
    parser.add_argument("-x", "--nobc", action="store_true",
                        help="don't start a broadcast server")
    parser.add_argument("-k", "--key", help="the HMAC key to use (or set PYRO_HMAC_KEY)")
    parser.add_argument("--autoclean", type=_seconds, metavar="SECONDS",
                        help="seconds between removals of unreachable registrations "
                             "(default: config.NS_AUTOCLEAN; 0=never)")
    _add_common(parser)


def add_reactor_argument(parser: argparse.ArgumentParser) -> None:
    """``--reactor``: for ``python -m pyro`` only (twistd chooses with its own ``--reactor``,
    before a plugin's options are read)."""
    from .reactors import DEFAULT, REACTORS

    parser.add_argument("--reactor", choices=tuple(REACTORS), default=DEFAULT,
                        help="the Twisted reactor to run on: %s" % (
                            "; ".join("%s: %s" % item for item in REACTORS.items())))


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The whole command line: ``demo``, ``serve``, ``ns``."""
    parser = _Parser(prog=prog, description="Pyro4 servers and name servers on Twisted.")
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="a name server and a server in a Twisted reactor, called by a Pyro4 "
                     "client in another process, PyroDeferredService and the native client",
        description="The quick-start demo: every face of twisted-pyro in one run, on "
                    "loopback and ports the system picks.")
    demo.add_argument("-v", "--verbose", action="store_true",
                      help="a failure's traceback, not only its one-line error")
    serve = commands.add_parser(
        "serve", help="serve Pyro4 objects (as Pyro4's serveSimple)",
        description="Serve Pyro4 objects to Pyro4 clients from a Twisted reactor.")
    add_serve_arguments(serve)
    ns = commands.add_parser(
        "ns", help="run a Pyro4 name server (as python -m Pyro4.naming)",
        description="A Pyro4 name server on a Twisted reactor.")
    add_ns_arguments(ns)
    for command in (serve, ns):
        add_reactor_argument(command)
    return parser


def command_parser(command: str, prog: str) -> argparse.ArgumentParser:
    """The parser of one command alone (for ``twistd pyro-serve``, ``twistd pyro-ns``)."""
    parser = _Parser(prog=prog)
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    {"serve": add_serve_arguments, "ns": add_ns_arguments}[command](parser)
    return parser


# -- from arguments to configurations --------------------------------------------------------

def parse(argv: Sequence[str] | None, prog: str,
          environ: Mapping[str, str] | None = None) -> ServeConfig | NameServerConfig | DemoConfig:
    """Parse a whole command line (``argv`` without the program name)."""
    args = build_parser(prog).parse_args(argv)
    return _config(args.command, args, "%s %s" % (prog, args.command), environ)


def parse_command(command: str, argv: Sequence[str] | None, prog: str,
                  environ: Mapping[str, str] | None = None) -> ServeConfig | NameServerConfig:
    """Parse the options of one command, named ``prog`` in messages."""
    args = command_parser(command, prog).parse_args(argv)
    config = _config(command, args, prog, environ)
    assert not isinstance(config, DemoConfig)
    return config


def _config(command: str, args: argparse.Namespace, prog: str,
            environ: Mapping[str, str] | None) -> ServeConfig | NameServerConfig | DemoConfig:
    environ = os.environ if environ is None else environ
    if command == "demo":
        return DemoConfig(prog, verbosity=1 if args.verbose else 0)
    if command == "serve":
        return _serve_config(args, prog, environ)
    return _ns_config(args, prog, environ)


def _verbosity(args: argparse.Namespace) -> int:
    return 1 if args.verbose else -1 if args.quiet else 0


def _reactor(args: argparse.Namespace) -> str:
    return getattr(args, "reactor", "default")  # (none from twistd's plugins)


def _hmac_key(args: argparse.Namespace, prog: str, environ: Mapping[str, str]) -> bytes | None:
    """``-k`` or ``PYRO_HMAC_KEY``, as ``python -m Pyro4.naming`` takes it (not both)."""
    key = args.key
    if "PYRO_HMAC_KEY" in environ:
        if key:
            raise UsageError(prog, "don't use -k and PYRO_HMAC_KEY at the same time")
        key = environ["PYRO_HMAC_KEY"]
    return key.encode("utf-8") if key else None


def check_endpoint(prog: str, text: str) -> str:
    """An endpoint description that parses, with ``backlog`` added where it applies."""
    from twisted.internet import endpoints

    kind = text.split(":", 1)[0].lower()
    if kind in _BACKLOG_TYPES and "backlog=" not in text:
        text = "%s:backlog=%d" % (text, DEFAULT_BACKLOG)
    try:
        endpoints.serverFromString(_NoReactor(), text)
    except (IndexError, KeyError) as exc:
        if kind == "systemd":
            raise UsageError(prog, "endpoint %r: no such socket was passed to this process "
                             "(LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES)" % (text,)) from exc
        raise UsageError(prog, "endpoint %r does not parse: %s" % (text, exc)) from exc
    except Exception as exc:  # ValueError, TypeError, OSError (ssl: files): all say why
        raise UsageError(prog, "endpoint %r does not parse: %s" % (text, exc)) from exc
    return text


class _NoReactor:
    """What endpoint parsing gets instead of a reactor: parsing must not touch one."""


def _serve_config(args: argparse.Namespace, prog: str,
                  environ: Mapping[str, str]) -> ServeConfig:
    try:
        specs = tuple(parse_spec(text) for text in args.specs)
    except SpecError as exc:
        raise UsageError(prog, str(exc)) from None
    seen: dict[str, ObjectSpec] = {}
    for spec in specs:
        if spec.name is not None:
            if spec.name in seen:
                raise UsageError(prog, "two objects named %r: %s and %s" % (
                    spec.name, seen[spec.name], spec))
            seen[spec.name] = spec
    if args.ns and not seen:
        raise UsageError(prog, "--ns registers named objects only: name one as "
                               "MODULE:ATTRIBUTE=NAME")
    if (args.ns_host or args.ns_port is not None or args.ns_interval is not None) \
            and not args.ns:
        raise UsageError(prog, "--ns-host, --ns-port and --ns-interval need --ns")
    if args.natport is not None and not args.nathost:
        raise UsageError(prog, "--natport needs --nathost")
    listen = tuple(check_endpoint(prog, text) for text in args.listen or [DEFAULT_LISTEN])
    return ServeConfig(prog=prog, specs=specs, listen=listen, ns=args.ns,
                       ns_host=args.ns_host, ns_port=args.ns_port,
                       ns_interval=(DEFAULT_INTERVAL if args.ns_interval is None
                                    else args.ns_interval), threads=args.threads,
                       hmac_key=_hmac_key(args, prog, environ), nathost=args.nathost,
                       natport=args.natport, grace=args.grace, verbosity=_verbosity(args),
                       reactor=_reactor(args))


def _ns_config(args: argparse.Namespace, prog: str,
               environ: Mapping[str, str]) -> NameServerConfig:
    from Pyro4.configuration import config
    from twisted.internet.endpoints import quoteStringArgument

    if args.listen and (args.host is not None or args.port is not None or args.unixsocket):
        raise UsageError(prog, "--listen replaces -n/--host, -p/--port and -u/--unixsocket: "
                               "give one or the other")
    if args.unixsocket and (args.host is not None or args.port is not None):
        raise UsageError(prog, "-u/--unixsocket replaces -n/--host and -p/--port")
    if args.nathost and args.unixsocket:
        raise UsageError(prog, "cannot use nathost together with unixsocket")  # Pyro4's words
    if args.natport is not None and not args.nathost:
        raise UsageError(prog, "--natport needs --nathost")
    try:
        check_storage_url(args.storage)
    except StorageError as exc:
        raise UsageError(prog, str(exc)) from None
    host: str | None = None
    if args.listen:
        listen = args.listen
    elif args.unixsocket:
        listen = "unix:" + quoteStringArgument(args.unixsocket)
    else:
        host = config.HOST if args.host is None else args.host
        port = config.NS_PORT if args.port is None else args.port
        kind = "tcp6" if ":" in host else "tcp"
        listen = "%s:%d:interface=%s" % (kind, port, quoteStringArgument(host))
    return NameServerConfig(
        prog=prog, listen=check_endpoint(prog, listen), host=host or None,
        broadcast=not args.nobc, bchost=args.bchost, bcport=args.bcport,
        nathost=args.nathost, natport=args.natport, storage=args.storage,
        autoclean=config.NS_AUTOCLEAN if args.autoclean is None else args.autoclean,
        hmac_key=_hmac_key(args, prog, environ), grace=args.grace,
        verbosity=_verbosity(args), reactor=_reactor(args))
