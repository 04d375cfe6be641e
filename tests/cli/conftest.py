"""Fixtures for the command tests: a module of servants to serve, and commands to run."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support.commands import Running, command_environment

SERVANTS = '''
import asyncio
import threading
import time

import Pyro4
from twisted.internet import reactor, task


@Pyro4.expose
class Thing:
    def add(self, a, b):
        return a + b

    def hold(self, seconds):
        print("holding", flush=True)  # tells the test that a call is in progress
        return task.deferLater(reactor, seconds, lambda: "held")

    def thread(self):
        return threading.current_thread().name

    async def nap(self, seconds):
        await asyncio.sleep(seconds)  # asyncio's own: the asyncio reactor (--reactor) only
        return type(asyncio.get_running_loop()).__module__

    def block(self, seconds):
        print("blocking", flush=True)
        time.sleep(seconds)  # a blocking servant: with --threads, in a pool thread
        return "unblocked"


thing = Thing()


@Pyro4.behavior(instance_mode="percall")
@Pyro4.expose
class PerCall:
    made = 0

    def __init__(self):
        PerCall.made += 1
        self.number = PerCall.made

    def ident(self):
        return self.number
'''


@pytest.fixture
def servants(tmp_path: Path) -> Path:
    """A directory holding ``servants.py`` (and ``broken.py``, which fails on import)."""
    (tmp_path / "servants.py").write_text(textwrap.dedent(SERVANTS), encoding="utf-8")
    (tmp_path / "broken.py").write_text("ratio = 1 / 0\n", encoding="utf-8")
    return tmp_path


@pytest.fixture
def command(servants: Path) -> Iterator[Any]:
    """``command(argv, **env)`` starts a command in the servants' directory; whatever still
    runs at the end of the test is killed."""
    started: list[Running] = []

    def start(argv: list[str], env: dict[str, str] | None = None, **popen: Any) -> Running:
        running = Running(argv, command_environment(env), servants, **popen)
        started.append(running)
        return running

    yield start
    for running in started:
        running.kill()
