"""``python -m pyro ns``, run as ``python -m Pyro4.naming`` is run, used by Pyro4 clients.

(tests/test_nameserver.py runs it with a broadcast responder on loopback.)
"""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path
from typing import Any

import Pyro4
import pytest
from Pyro4 import errors

from ..aio.programs import DIRT
from ..support.commands import PYRO, command_environment, log_text, run_to_end

RUNNING = re.compile(r"NS running on 127\.0\.0\.1:(\d+) \(127\.0\.0\.1\)\Z")


def ns_port(line: str) -> int:
    match = RUNNING.match(line)
    assert match is not None, line
    return int(match[1])


def stops_cleanly(running: Any) -> list[str]:
    running.signal(signal.SIGTERM)
    assert running.wait() == 0, running.stderr
    log = [log_text(line) for line in running.stderr]
    assert not any("Traceback" in line for line in log), log
    return log


def test_on_loopback_no_broadcast_responder(command):
    running = command(PYRO + ["ns", "-n", "127.0.0.1", "-p", "0"])
    port = ns_port(running.readline())
    assert running.readline() == "Not starting broadcast server for localhost."
    assert running.readline() == "URI = PYRO:Pyro.NameServer@127.0.0.1:%d" % port
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        ns.register("example.thing", "PYRO:thing@127.0.0.1:1")
        assert ns.lookup("example.thing").object == "thing"
    assert stops_cleanly(running) == [
        "[pyro.service#info] listening on 127.0.0.1:%d" % port,
        "[pyro.service#info] Not starting broadcast server for localhost.",
        "[pyro.service#info] name server PYRO:Pyro.NameServer@127.0.0.1:%d serving" % port,
        "[pyro.cli#info] received SIGTERM",
        "[pyro.service#info] name server PYRO:Pyro.NameServer@127.0.0.1:%d shutting down"
        % port,
        "[pyro.cli#info] stopped",
    ]


def test_names_the_host_it_was_given(command):
    """As Pyro4: ``-n localhost`` makes URIs that say localhost."""
    running = command(PYRO + ["ns", "-n", "localhost", "-p", "0", "-x"])
    line = running.readline()
    match = re.fullmatch(r"NS running on localhost:(\d+) \((127\.0\.0\.1|::1)\)", line)
    assert match is not None, line
    assert running.readline() == "Not starting broadcast server."
    assert running.readline() == "URI = PYRO:Pyro.NameServer@localhost:%s" % match[1]
    stops_cleanly(running)


def test_sql_storage_persists_across_restarts(command, tmp_path: Path):
    store = "sql:%s" % (tmp_path / "names.sqlite")
    first = command(PYRO + ["ns", "-n", "127.0.0.1", "-p", "0", "-s", store])
    port = ns_port(first.readline())
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        ns.register("example.kept", "PYRO:kept@127.0.0.1:1", metadata={"colour:blue"})
    stops_cleanly(first)
    second = command(PYRO + ["ns", "-n", "127.0.0.1", "-p", "0", "-s", store])
    assert second.readline() == "Persistent store contains 2 existing registrations."
    port = ns_port(second.readline())
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        uri, metadata = ns.lookup("example.kept", return_metadata=True)
        assert (str(uri), set(metadata)) == ("PYRO:kept@127.0.0.1:1", {"colour:blue"})
        assert str(ns.lookup("Pyro.NameServer")).endswith(":%d" % port)  # the new one
    stops_cleanly(second)


def test_dbm_storage(command, tmp_path: Path):
    running = command(PYRO + ["ns", "-n", "127.0.0.1", "-p", "0", "-s",
                              "dbm:%s" % (tmp_path / "names.dbm")])
    port = ns_port(running.readline())
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        ns.register("example.dbm", "PYRO:dbm@127.0.0.1:1")
        assert str(ns.lookup("example.dbm")) == "PYRO:dbm@127.0.0.1:1"
    log = stops_cleanly(running)
    assert log[0] == "[pyro.nameserver#warn] Warning: the DbmStorage doesn't support metadata."


def test_unix_socket(command, tmp_path: Path):
    path = tmp_path / "ns.sock"
    running = command(PYRO + ["ns", "-u", str(path), "-x"])
    assert running.readline() == "NS running on ./u:%s (Unix domain socket)" % path
    assert running.readline() == "Not starting broadcast server."
    assert running.readline() == "URI = PYRO:Pyro.NameServer@./u:%s" % path
    with Pyro4.Proxy("PYRO:Pyro.NameServer@./u:%s" % path) as ns:
        assert "Pyro.NameServer" in ns.list()
    stops_cleanly(running)


def test_nat_addresses(command):
    running = command(PYRO + ["ns", "-n", "127.0.0.1", "-p", "0", "-x",
                              "--nathost", "ns.example.org", "--natport", "4711"])
    port = ns_port(running.readline())
    assert running.readline() == "Not starting broadcast server."
    assert running.readline() == "internal URI = PYRO:Pyro.NameServer@127.0.0.1:%d" % port
    assert running.readline() == "external URI = PYRO:Pyro.NameServer@ns.example.org:4711"
    stops_cleanly(running)


def test_hmac_key_from_the_environment(command):
    running = command(PYRO + ["ns", "-n", "127.0.0.1", "-p", "0", "-x"],
                      {"PYRO_HMAC_KEY": "s3cret"})
    port = ns_port(running.readline())
    with Pyro4.locateNS("127.0.0.1", port, hmac_key=b"s3cret") as ns:
        assert "Pyro.NameServer" in ns.list()
    with pytest.raises(errors.NamingError):
        Pyro4.locateNS("127.0.0.1", port)  # without the key: refused
    log = stops_cleanly(running)
    assert any(re.fullmatch(r"\[pyro.dispatch#info\] handshake refused for \('127\.0\.0\.1', \d+\): "
                            r"hmac key config not symmetric", line) for line in log), log


NS_ERRORS = [
    (["-s", "nonsense"], 2, "invalid storage URL 'nonsense': use memory, dbm:PATH or sql:PATH"),
    (["-s", "sql:"], 2, "invalid storage URL 'sql:': use memory, dbm:PATH or sql:PATH"),
    (["-s", "sql:/nonexistent/dir/names.sqlite"], 1,
     "cannot open storage 'sql:/nonexistent/dir/names.sqlite': unable to open database file"),
    (["--natport", "1"], 2, "--natport needs --nathost"),
    (["-u", "/tmp/x.sock", "--nathost", "h"], 2,
     "cannot use nathost together with unixsocket"),
    (["--listen", "tcp:0", "-p", "1"], 2,
     "--listen replaces -n/--host, -p/--port and -u/--unixsocket: give one or the other"),
    (["--autoclean", "-1"], 2, "argument --autoclean: invalid number of seconds value: '-1'"),
    (["-p", "70000"], 2, "argument -p/--port: invalid port number value: '70000'"),
]


@pytest.mark.parametrize("arguments, status, message", NS_ERRORS)
def test_mistakes_are_named_in_one_line(tmp_path, arguments, status, message):
    argv = PYRO + ["ns", "-n", "127.0.0.1", "-x"] + arguments
    if "-p" not in arguments and "--listen" not in arguments and "-u" not in arguments:
        argv += ["-p", "0"]
    if "-u" in arguments:
        argv.remove("-n")
        argv.remove("127.0.0.1")
    result = run_to_end(argv, command_environment(), tmp_path)
    assert (result.returncode, result.stdout) == (status, "")
    assert result.stderr == "python -m pyro ns: error: %s\n" % message


def test_a_broadcast_port_in_use(tmp_path):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_to_end(PYRO + ["ns", "-n", "127.0.0.1", "-p", "0", "--bchost",
                                    "127.0.0.1", "--bcport", str(port)],
                            command_environment(), tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    errors_shown = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors_shown == ["python -m pyro ns: error: UDP port %d on 127.0.0.1 (name server "
                            "broadcasts) is in use" % port]
    assert "Traceback" not in result.stderr


#: The event loop's class per --reactor, as the log names it.
LOOPS = {"asyncio": "asyncio.unix_events._UnixSelectorEventLoop", "uvloop": "uvloop.Loop"}


@pytest.mark.parametrize("reactor", ["asyncio", "uvloop"])
def test_on_the_asyncio_reactor_for_pyro4_and_pyro5_clients(command, reactor):
    if reactor == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop has no wheel for this platform")
    import Pyro5.api

    running = command([sys.executable, "-X", "dev", "-m", "pyro", "ns", "-n", "127.0.0.1",
                       "-p", "0", "-x", "--reactor", reactor])
    port = ns_port(running.readline())
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        ns.register("example.thing", "PYRO:thing@127.0.0.1:1")
    with Pyro5.api.locate_ns("127.0.0.1", port) as ns5:
        assert ns5.lookup("example.thing").object == "thing"
        ns5.register("example.five", "PYRO:five@127.0.0.1:2")
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        assert sorted(ns.list()) == ["Pyro.NameServer", "example.five", "example.thing"]
    log = stops_cleanly(running)
    assert log[0] == "[pyro.cli#info] running on the %s reactor: AsyncioSelectorReactor on %s" % (
        reactor, LOOPS[reactor])
    assert log[-1] == "[pyro.cli#info] stopped"
    dirt = [line for line in running.stderr if any(sign in line for sign in DIRT)]
    assert not dirt, running.stderr
