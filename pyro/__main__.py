"""Command line: ``python -m pyro demo``, ``python -m pyro ns``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyro", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="serve a Pyro4 object from Twisted; call it with Pyro4")
    ns = commands.add_parser(
        "ns", help="run a Pyro4 name server on the reactor (as python -m Pyro4.naming)")
    ns.add_argument("-n", "--host", help="hostname to bind server on (default: config.HOST)")
    ns.add_argument("-p", "--port", type=int, help="port to bind server on (0=random)")
    ns.add_argument("-x", "--nobc", action="store_true", help="don't start a broadcast server")
    ns.add_argument("--bchost", help="hostname to bind broadcast server on (default: all)")
    ns.add_argument("--bcport", type=int, help="port to bind broadcast server on (0=random)")
    ns.add_argument("-k", "--key", help="the HMAC key to use")
    args = parser.parse_args(argv)

    if args.command == "ns":
        from twisted.internet import defer, task

        from .nameserver import serve_name_server

        async def serve(reactor: object) -> None:
            key = args.key.encode("utf-8") if args.key else None
            await serve_name_server(reactor, args.host, args.port, not args.nobc,
                                    args.bchost, args.bcport, key)
            await defer.Deferred()  # until interrupted (SIGINT/SIGTERM stop the reactor)

        task.react(lambda reactor: defer.ensureDeferred(serve(reactor)))

    if args.command == "demo":
        from twisted.internet import task

        from . import demo

        def exit_with(code: int) -> None:
            raise SystemExit(code)  # task.react turns this into the process's exit code

        task.react(lambda reactor: demo.run(reactor).addCallback(exit_with))
    return 0


if __name__ == "__main__":
    sys.exit(main())
