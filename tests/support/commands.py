"""Our commands as a user runs them: ``python -m pyro ...`` (or ``twistd ...``) in a subprocess.

Both output streams are read line by line by threads, so a test waits for a line (with a
bound) instead of sleeping; everything started is killed at the end of the test if it is
still running (the ``command`` fixture in tests/cli/conftest.py).
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyro

#: Seconds a command may take to print a line, or to exit.
STEP_TIMEOUT = 20

SOURCE = str(Path(pyro.__file__).resolve().parent.parent)

#: ``python -m pyro``
PYRO = [sys.executable, "-m", "pyro"]
#: ``twistd``, from this Python (its plugins found on PYTHONPATH, i.e. in this checkout)
TWISTD = [sys.executable, "-c",
          "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"]


def command_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``PYRO_*`` settings, this checkout first on the
    path, name server lookups confined to loopback."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYRO_")}
    env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_PID", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["PYRO_BROADCAST_ADDRS"] = "127.0.0.1"
    env["PYRO_NS_BCPORT"] = str(free_udp_port())
    env.update(extra or {})
    return env


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Lines:
    def __init__(self, stream: Any) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)
        stream.close()

    def next(self, timeout: float, what: str) -> str:
        try:
            line = self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("nothing on %s for %s s" % (what, timeout)) from None
        if line is None:
            self.queue.put(None)
            raise AssertionError("%s ended" % what)
        self.seen.append(line)
        return line

    def rest(self, timeout: float) -> list[str]:
        self.thread.join(timeout)
        while True:
            try:
                line = self.queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self.queue.put(None)
                break
            self.seen.append(line)
        return self.seen


class Running:
    """A running command: read its lines, signal it, wait for it."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None,
                 **popen: Any) -> None:
        self.argv = list(argv)
        self.process = subprocess.Popen(self.argv, env=dict(env), cwd=cwd,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, **popen)
        self._stdout = _Lines(self.process.stdout)
        self._stderr = _Lines(self.process.stderr)

    def readline(self, timeout: float = STEP_TIMEOUT) -> str:
        """The next line on stdout."""
        try:
            return self._stdout.next(timeout, "stdout")
        except AssertionError as exc:
            raise AssertionError("%s; stderr so far:\n%s" % (exc, "\n".join(
                self._stderr.rest(0.5)))) from None

    def read_stderr_until(self, fragment: str, timeout: float = STEP_TIMEOUT) -> str:
        """Read stderr until a line containing ``fragment``; that line."""
        while True:
            line = self._stderr.next(timeout, "stderr")
            if fragment in line:
                return line

    def read_stdout_until(self, fragment: str, timeout: float = STEP_TIMEOUT) -> str:
        """Read stdout (twistd's log, with -n) until a line containing ``fragment``."""
        while True:
            line = self.readline(timeout)
            if fragment in line:
                return line

    def signal(self, number: int = signal.SIGTERM) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float = STEP_TIMEOUT) -> int:
        """The exit status (after the output is read to its end)."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s still running after %s s; stderr:\n%s" % (
                self.argv, timeout, "\n".join(self._stderr.rest(0.5)))) from None
        self._stdout.rest(STEP_TIMEOUT)
        self._stderr.rest(STEP_TIMEOUT)
        return status

    @property
    def stdout(self) -> list[str]:
        return self._stdout.seen

    @property
    def stderr(self) -> list[str]:
        return self._stderr.seen

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STEP_TIMEOUT)


def log_text(line: str) -> str:
    """A log line without its time stamp: ``[namespace#level] text``."""
    return line.split(" ", 1)[1] if line[:4].isdigit() else line


#: Run by :func:`socket_activated`: what systemd does for a socket-activated service. The
#: listening socket passed in becomes descriptor 3 (``SD_LISTEN_FDS_START``), ``LISTEN_FDS``,
#: ``LISTEN_FDNAMES`` and ``LISTEN_PID`` (this process: exec keeps the pid) are set, and the
#: command replaces this process.
SOCKET_ACTIVATION = r"""
import os, sys
fd, name = int(sys.argv[1]), sys.argv[2]
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_FDS="1", LISTEN_FDNAMES=name, LISTEN_PID=str(os.getpid()))
os.execv(sys.executable, [sys.executable] + sys.argv[3:])
"""


def socket_activated(sock: socket.socket, name: str, argv: Sequence[str]) -> list[str]:
    """``argv`` (starting with this Python) run as systemd runs a socket-activated service
    with ``sock`` as its one socket, named ``name``; Popen it with ``pass_fds=(sock.fileno(),)``."""
    assert argv[0] == sys.executable
    return [sys.executable, "-c", SOCKET_ACTIVATION, str(sock.fileno()), name, *argv[1:]]


def run_to_end(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None,
               timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a command that is expected to exit by itself."""
    return subprocess.run(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)
