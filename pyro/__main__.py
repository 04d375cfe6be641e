"""Command line: ``python -m pyro demo``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyro", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="serve a Pyro4 object from Twisted; call it with Pyro4")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from twisted.internet import task

        from . import demo

        def exit_with(code: int) -> None:
            raise SystemExit(code)  # task.react turns this into the process's exit code

        task.react(lambda reactor: demo.run(reactor).addCallback(exit_with))
    return 0


if __name__ == "__main__":
    sys.exit(main())
