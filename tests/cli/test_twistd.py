"""The twistd plugins and systemd socket activation, run as a deployment runs them.

``twistd`` is Twisted's own, from this Python; it finds ``twisted/plugins/pyro_plugins.py``
in this checkout through PYTHONPATH (as it finds it in site-packages once installed).
Socket activation is done as systemd does it (tests/support/commands.py): a listening socket
made here is descriptor 3 of the command, with ``LISTEN_FDS``/``LISTEN_PID``/``LISTEN_FDNAMES``.
"""

from __future__ import annotations

import re
import signal
import socket

import Pyro4

from ..support.commands import PYRO, TWISTD, command_environment, run_to_end, socket_activated


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
    running = command(TWISTD + ["-n", "--pidfile=", "pyro-serve", "servants:thing=x", "--ns",
                                "--ns-host", "127.0.0.1", "--ns-port", "1"])
    running.read_stdout_until("[pyro.cli#critical] twistd pyro-serve cannot start: cannot "
                              "register 'x': no name server at 127.0.0.1:1")
    assert running.wait() == 0  # (twistd has no way to say otherwise)


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
