"""Run an asyncio program in a fresh Python, as its user would run it, and check it ended clean.

A process can install one reactor, once: the test session has its own already, so every
``pyro.aio`` program runs in a subprocess of its own (``python -X dev``: asyncio's debug mode,
ResourceWarnings shown). It must exit 0, and its stderr must show none of the signs of
something left behind or lost: an unclosed socket or loop, a pending task destroyed, an
exception never retrieved, an unhandled error in a Deferred, a coroutine never awaited.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Lines of stderr that mean the program left something behind or lost an error.
DIRT = ("ResourceWarning", "unclosed", "Task was destroyed", "never retrieved",
        "Unhandled error", "Traceback", "was never awaited", "Exception ignored")

#: Prepended to a program to run it on uvloop's loop (``asyncio.run`` then makes one).
UVLOOP = "import asyncio, uvloop\nasyncio.set_event_loop_policy(uvloop.EventLoopPolicy())\n"



def run_program(source: str, *, prelude: str = "", timeout: float = 120,
                check_clean: bool = True) -> tuple[str, str]:
    """Run ``source`` (dedented) in ``python -X dev``; its (stdout, stderr). It must exit 0
    and, with ``check_clean``, leave no dirt (see :data:`DIRT`) on stderr."""
    done = _run(prelude + textwrap.dedent(source), timeout)
    report = "exit %s\n--- stdout\n%s--- stderr\n%s" % (done.returncode, done.stdout, done.stderr)
    assert done.returncode == 0, report
    if check_clean:
        dirt = [line for line in done.stderr.splitlines() if any(d in line for d in DIRT)]
        assert not dirt, report
    return done.stdout, done.stderr


def run_failing(source: str, *, timeout: float = 120) -> tuple[int, str, str]:
    """Run ``source`` expecting it to fail: (exit status, stdout, stderr)."""
    done = _run(textwrap.dedent(source), timeout)
    return done.returncode, done.stdout, done.stderr


def _run(program: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("TWISTED_PYRO_TEST_REACTOR", None)  # the program chooses (pyro.aio installs its own)
    return subprocess.run([sys.executable, "-X", "dev", "-c", program], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
