"""The twistd plugins and systemd socket activation, run as a deployment runs them.

``twistd`` is Twisted's own, from this Python; it finds ``twisted/plugins/pyro_plugins.py``
in this checkout through PYTHONPATH (as it finds it in site-packages once installed).
Socket activation is done as systemd does it (tests/support/commands.py): a listening socket
made here is descriptor 3 of the command, with ``LISTEN_FDS``/``LISTEN_PID``/``LISTEN_FDNAMES``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
from typing import Any

import Pyro4

from ..support.commands import (
    PYRO,
    TWISTD,
    command_environment,
    log_text,
    run_to_end,
    socket_activated,
)


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_twistd_lists_the_plugins(tmp_path):
    result = run_to_end(TWISTD + ["--help"], command_environment(), tmp_path)
    assert result.returncode == 0, result.stderr
    names = re.findall(r"^    (pyro-\w+) ", result.stdout, re.MULTILINE)
    assert names == ["pyro-ns", "pyro-serve"], result.stdout


def test_twistd_serves(command):
    running = command(TWISTD + ["-n", "--pidfile=", "pyro-serve",
                                "servants:thing=example.thing", "--threads", "2",
                                "--listen", "tcp:0:interface=127.0.0.1"])
    line = running.read_stdout_until("serving servants:thing=example.thing as")
    uri = line.rsplit(" ", 1)[1]
    assert re.fullmatch(r"PYRO:example\.thing@127\.0\.0\.1:\d+", uri), line
    with Pyro4.Proxy(uri) as proxy:
        assert proxy.add(20, 22) == 42
        assert proxy.thread() == "PoolThread-pyro.protocol servants-0"
    running.signal(signal.SIGTERM)
    assert running.wait() == -signal.SIGTERM  # twistd ends by the signal that stopped it
    assert not any("Traceback" in line for line in running.stdout + running.stderr)
    assert any("[pyro.cli#info] shutting down: no new connections" in line
               for line in running.stdout)


def test_twistd_usage_mistakes(tmp_path):
    result = run_to_end(TWISTD + ["-n", "pyro-serve", "nosuch:thing"], command_environment(),
                        tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == (
        "twistd -n: cannot import module 'nosuch' (nosuch:thing): no such module")


def test_twistd_stops_when_the_name_server_cannot_be_reached(command):
    """Found out once the reactor runs: logged, the reactor stopped, and twistd exits with 0,
    as it does for any stop that is not a signal (pyro.cli.tap says why)."""
    running = command(TWISTD + ["-n", "--pidfile=", "pyro-serve", "servants:thing=x", "--ns",
                                "--ns-host", "127.0.0.1", "--ns-port", "1"])
    running.read_stdout_until("[pyro.cli#critical] twistd pyro-serve cannot start: cannot "
                              "register 'x': no name server at 127.0.0.1:1")
    assert running.wait() == 0  # (twistd has no way to say otherwise)


# -- failures while twistd starts the service: exit status 1, one line ----------------------

def taken_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def fails_in_one_line(result: Any, prog: str, message: str) -> None:
    """``twistd -n``: exit status 1, the message on stderr, logged, and no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr == "%s: error: %s\n" % (prog, message)
    assert log_text(result.stdout.splitlines()[-1]) == (
        "[pyro.cli#critical] %s cannot start: %s" % (prog, message))
    assert "Traceback" not in result.stdout


def test_twistd_name_server_on_a_port_in_use(servants):
    with taken_port() as taken:
        port = taken.getsockname()[1]
        result = run_to_end(TWISTD + ["-n", "--pidfile=", "pyro-ns", "-n", "127.0.0.1", "-p",
                                      str(port)], command_environment(), servants)
    fails_in_one_line(result, "twistd pyro-ns", "port %d on 127.0.0.1 is in use" % port)


def test_twistd_serve_on_a_port_in_use(servants):
    with taken_port() as taken:
        port = taken.getsockname()[1]
        result = run_to_end(TWISTD + ["-n", "--pidfile=", "pyro-serve", "servants:thing",
                                      "--listen", "tcp:%d:interface=127.0.0.1" % port],
                            command_environment(), servants)
    fails_in_one_line(result, "twistd pyro-serve", "port %d on 127.0.0.1 is in use" % port)


def test_twistd_broadcast_port_in_use(servants):
    """Found in startService (the UDP port is bound once the name server listens)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_to_end(TWISTD + ["-n", "--pidfile=", "pyro-ns", "-n", "127.0.0.1", "-p",
                                      "0", "--bchost", "127.0.0.1", "--bcport", str(port)],
                            command_environment(), servants)
    fails_in_one_line(result, "twistd pyro-ns", "UDP port %d on 127.0.0.1 (name server "
                                                "broadcasts) is in use" % port)


def test_twistd_serve_one_object_twice(servants):
    """Found as the objects are registered: in startService, before the reactor runs."""
    result = run_to_end(TWISTD + ["-n", "--pidfile=", "pyro-serve", "servants:thing=a",
                                  "servants:thing=b"], command_environment(), servants)
    fails_in_one_line(result, "twistd pyro-serve", "cannot serve servants:thing=b: object or "
                                                   "class already has a Pyro id")


def test_twistd_daemon_on_a_port_in_use(servants):
    """Daemonized, twistd's parent reports what its child raised (its status pipe carries
    the exception's line), exits with 1, and no pid file is left."""
    pidfile, logfile = servants / "twistd.pid", servants / "twistd.log"
    with taken_port() as taken:
        port = taken.getsockname()[1]
        result = run_to_end(TWISTD + ["--pidfile", str(pidfile), "--logfile", str(logfile),
                                      "pyro-ns", "-n", "127.0.0.1", "-p", str(port)],
                            command_environment(), servants)
    if result.returncode == 0 and pidfile.exists():  # (it should not have started: stop it)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert result.returncode == 1
    assert result.stderr == (
        "An error has occurred: b'pyro.cli.errors.StartupError: port %d on 127.0.0.1 is in "
        "use'\nPlease look at log file for more information.\n" % port)
    assert not pidfile.exists()
    log = [log_text(line) for line in logfile.read_text().splitlines()]
    assert ("[pyro.cli#critical] twistd pyro-ns cannot start: port %d on 127.0.0.1 is in use"
            % port) in log
    assert not any("Traceback" in line for line in log), log


def test_serve_socket_activated(command):
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        argv = socket_activated(sock, "pyro", PYRO + [
            "serve", "servants:thing=example.thing", "--listen", "systemd:domain=INET:name=pyro"])
        running = command(argv, pass_fds=(sock.fileno(),))
    # the socket is the command's alone now: it accepts on it
    assert running.readline() == "servants:thing = PYRO:example.thing@127.0.0.1:%d" % port
    with Pyro4.Proxy("PYRO:example.thing@127.0.0.1:%d" % port) as proxy:
        assert proxy.add(1, 2) == 3
    running.signal(signal.SIGTERM)
    assert running.wait() == 0


def test_twistd_name_server_socket_activated(command):
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        argv = socket_activated(sock, "ns", TWISTD + [
            "-n", "--pidfile=", "pyro-ns", "--listen", "systemd:domain=INET:index=0"])
        running = command(argv, pass_fds=(sock.fileno(),))
    assert running.read_stdout_until("NS running on").endswith(
        "[pyro.cli#info] NS running on 127.0.0.1:%d (127.0.0.1)" % port)
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        assert "Pyro.NameServer" in ns.list()
    running.signal(signal.SIGTERM)
    assert running.wait() == -signal.SIGTERM
