"""``python -m pyro serve``, run as a user runs it, called by unmodified Pyro4 clients.

Each test starts the command in a subprocess (tests/support/commands.py) in a directory
holding ``servants.py`` (tests/cli/conftest.py), on 127.0.0.1 and a free port; name servers
are Pyro4's own (tests/support/pyro4_peers.py). Waits are for lines the command prints,
each bounded.
"""

from __future__ import annotations

import re
import signal
import socket
import sys
import threading
from typing import Any

import Pyro4
import pytest
from Pyro4 import errors

from ..aio.programs import DIRT
from ..support.commands import PYRO, STEP_TIMEOUT, command_environment, log_text, run_to_end
from ..support.pyro4_peers import free_port, pyro4_nameserver

URI_LINE = re.compile(r"(?P<target>\S+) = (?P<uri>PYRO:(?P<id>[^@]+)@127\.0\.0\.1:\d+)\Z")


def uri_from(line: str, target: str) -> str:
    match = URI_LINE.match(line)
    assert match is not None and match["target"] == target, line
    return match["uri"]


def stops_cleanly(running: Any) -> list[str]:
    """SIGTERM; the command exits 0 with no traceback; its log, without time stamps."""
    running.signal(signal.SIGTERM)
    assert running.wait() == 0, running.stderr
    log = [log_text(line) for line in running.stderr]
    assert not any("Traceback" in line for line in log), log
    return log


def test_serves_objects_and_classes_to_pyro4_clients(command):
    running = command(PYRO + ["serve", "servants:thing=example.thing", "servants:PerCall"])
    thing = uri_from(running.readline(), "servants:thing")
    percall = uri_from(running.readline(), "servants:PerCall")
    assert thing.startswith("PYRO:example.thing@127.0.0.1:")
    assert percall.split("@")[1] == thing.split("@")[1]  # one port
    assert percall.startswith("PYRO:obj_")  # no name: an id made up as Pyro4 does
    with Pyro4.Proxy(thing) as proxy:
        assert proxy.add(1, 2) == 3
        assert proxy.thread() == "MainThread"  # no --threads: the reactor thread
    with Pyro4.Proxy(percall) as proxy:
        # @Pyro4.behavior(instance_mode="percall"): an instance per call
        assert [proxy.ident(), proxy.ident()] == [1, 2]
    address = thing.split("@")[1]
    assert stops_cleanly(running) == [
        "[pyro.service#info] listening on %s" % address,
        "[pyro.cli#info] serving servants:thing=example.thing as %s" % thing,
        "[pyro.cli#info] serving servants:PerCall as %s" % percall,
        "[pyro.cli#info] received SIGTERM",
        "[pyro.cli#info] shutting down: no new connections; calls in progress may take "
        "up to 10 s",
        "[pyro.cli#info] stopped",
    ]


def test_several_endpoints_and_threads(command):
    port = free_port()
    running = command(PYRO + ["serve", "servants:thing=example.thing", "--threads", "2",
                              "--listen", "tcp:%d:interface=127.0.0.1" % port,
                              "--listen", "tcp:0:interface=127.0.0.1"])
    uri = uri_from(running.readline(), "servants:thing")
    assert uri == "PYRO:example.thing@127.0.0.1:%d" % port  # the first endpoint names URIs
    other = running.read_stderr_until("listening on", STEP_TIMEOUT)
    other = running.read_stderr_until("listening on", STEP_TIMEOUT)
    other_port = int(other.rsplit(":", 1)[1])
    for where in (port, other_port):
        with Pyro4.Proxy("PYRO:example.thing@127.0.0.1:%d" % where) as proxy:
            assert proxy.thread() == "PoolThread-pyro.protocol servants-0"
    stops_cleanly(running)


def test_sigterm_lets_the_call_in_progress_finish_and_unregisters(command):
    with pyro4_nameserver() as ns:
        running = command(PYRO + ["serve", "servants:thing=example.thing", "--ns",
                                  "--ns-host", "127.0.0.1", "--ns-port", str(ns.port)])
        uri = uri_from(running.readline(), "servants:thing")
        assert log_text(running.read_stderr_until("registered example.thing")) == (
            "[pyro.nameserver#info] registered example.thing as %s in the name server "
            "PYRO:Pyro.NameServer@127.0.0.1:%d" % (uri, ns.port))
        assert str(ns.nameserver.lookup("example.thing")) == uri

        results: list[Any] = []

        def call() -> None:
            with Pyro4.Proxy(uri) as proxy:
                results.append(proxy.hold(2.0))

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        assert running.readline() == "holding"
        running.signal(signal.SIGTERM)
        running.read_stderr_until("draining: waiting for 1 connection(s) with calls in "
                                  "progress (up to 10 s)")
        with pytest.raises(errors.CommunicationError):  # no new connections
            with Pyro4.Proxy(uri) as late:
                late._pyroBind()
        caller.join(STEP_TIMEOUT)
        assert results == ["held"]
        assert running.wait() == 0
        with pytest.raises(errors.NamingError):
            ns.nameserver.lookup("example.thing")
        log = [log_text(line) for line in running.stderr]
        assert "[pyro.nameserver#info] removed example.thing from the name server" in log
        assert not any("Traceback" in line for line in log), log


def test_the_grace_period_bounds_the_wait(command):
    running = command(PYRO + ["serve", "servants:thing", "--grace", "0.5"])
    uri = uri_from(running.readline(), "servants:thing")
    failures: list[BaseException] = []

    def call() -> None:
        try:
            with Pyro4.Proxy(uri) as proxy:
                proxy.hold(60)
        except BaseException as exc:
            failures.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    assert running.readline() == "holding"
    log = stops_cleanly(running)
    caller.join(STEP_TIMEOUT)
    assert [type(exc) for exc in failures] == [errors.ConnectionClosedError]
    assert ("[pyro.protocol#warn] draining: time is up; closing 1 connection(s) with calls "
            "in progress") in log


def test_sigint_twice_stops_waiting(command):
    """Ctrl-C once shuts down gracefully; twice, the process does not wait any longer."""
    def sigint_as_in_a_terminal() -> None:  # (a test runner may run us with SIGINT ignored)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    running = command(PYRO + ["serve", "servants:thing"], preexec_fn=sigint_as_in_a_terminal)
    uri = uri_from(running.readline(), "servants:thing")
    failures: list[BaseException] = []

    def call() -> None:
        try:
            with Pyro4.Proxy(uri) as proxy:
                proxy.hold(60)
        except BaseException as exc:
            failures.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    assert running.readline() == "holding"
    running.signal(signal.SIGINT)
    running.read_stderr_until("draining: waiting for 1 connection(s)")
    running.signal(signal.SIGINT)
    assert running.wait() == 1
    caller.join(STEP_TIMEOUT)
    assert [type(exc) for exc in failures] == [errors.ConnectionClosedError]
    log = [log_text(line) for line in running.stderr]
    assert log[-3:] == [
        "[pyro.cli#info] shutting down: no new connections; calls in progress may take up "
        "to 10 s",
        "[pyro.protocol#info] draining: waiting for 1 connection(s) with calls in progress "
        "(up to 10 s)",
        "[pyro.cli#warn] SIGINT again: exiting without waiting any longer"]
    assert "[pyro.cli#info] received SIGINT" in log


def test_a_blocking_servant_does_not_hold_up_the_exit(command):
    """--threads: after --grace, a servant still blocking in a pool thread is left behind;
    the process exits all the same (waiting for it would take a minute)."""
    running = command(PYRO + ["serve", "servants:thing", "--threads", "1", "--grace", "0.2"])
    uri = uri_from(running.readline(), "servants:thing")

    def call() -> None:
        try:
            with Pyro4.Proxy(uri) as proxy:
                proxy.block(60)
        except errors.ConnectionClosedError:
            pass

    threading.Thread(target=call, daemon=True).start()
    assert running.readline() == "blocking"
    log = stops_cleanly(running)
    assert ("[pyro.protocol#warn] draining: time is up; closing 1 connection(s) with calls "
            "in progress") in log


def test_registers_where_pyro4_locate_ns_looks(command):
    """No --ns-host: the name server is found as Pyro4.locateNS finds it (here NS_HOST)."""
    with pyro4_nameserver() as ns:
        env = {"PYRO_NS_HOST": "127.0.0.1", "PYRO_NS_PORT": str(ns.port)}
        running = command(PYRO + ["serve", "servants:thing=example.thing", "--ns"], env)
        uri = uri_from(running.readline(), "servants:thing")
        running.read_stderr_until("registered example.thing as %s in the name server "
                                  "PYRO:Pyro.NameServer@127.0.0.1:%d" % (uri, ns.port))
        with Pyro4.Proxy("PYRONAME:example.thing@127.0.0.1:%d" % ns.port) as proxy:
            assert proxy.add(2, 3) == 5
        assert str(ns.nameserver.lookup("example.thing")) == uri
        stops_cleanly(running)
        with pytest.raises(errors.NamingError):
            ns.nameserver.lookup("example.thing")


def start_name_server(command: Any, port: int) -> Any:
    """``python -m pyro ns`` on 127.0.0.1:``port``, once it serves."""
    running = command(PYRO + ["ns", "-n", "127.0.0.1", "-p", str(port)])
    running.read_stdout_until("URI = PYRO:Pyro.NameServer@127.0.0.1:%d" % port)
    return running


def pyroname_call(pyroname: str) -> tuple[int, str]:
    """A fresh Pyro4 lookup and call (this test runs no reactor: blocking is fine here)."""
    with Pyro4.Proxy(pyroname) as proxy:
        return proxy.add(20, 22), str(Pyro4.resolve(pyroname))


#: What the keeper says when the name server has gone: refused, or (if it went during a
#: check) the connection closed under it; the next try comes after a backoff with jitter.
NAME_SERVER_GONE = re.compile(
    r"\[pyro\.nameserver#warn\] keeping example\.thing registered: NamingError: Failed to "
    r"locate the nameserver \(CommunicationError: cannot connect to 127\.0\.0\.1:(?P<port>\d+): "
    r"Connection was refused by other side: 111: Connection refused\.\); next try in "
    r"\d+\.\d s\Z"
    r"|\[pyro\.nameserver#warn\] keeping example\.thing registered: ConnectionClosedError: "
    r".*; next try in \d+\.\d s\Z")


def test_names_come_back_after_a_name_server_restart(command):
    """The issue's case: the name server restarts, empty, on its port; within the check
    interval the name is registered again, and a fresh PYRONAME: lookup works again."""
    port = free_port()
    pyroname = "PYRONAME:example.thing@127.0.0.1:%d" % port
    first = start_name_server(command, port)
    running = command(PYRO + ["serve", "servants:thing=example.thing", "--ns", "--ns-host",
                              "127.0.0.1", "--ns-port", str(port), "--ns-interval", "0.5"])
    uri = uri_from(running.readline(), "servants:thing")
    running.read_stderr_until("registered example.thing as")
    assert pyroname_call(pyroname) == (42, uri)

    first.kill()  # gone without a word, as a crash
    gone = log_text(running.read_stderr_until("keeping example.thing registered:"))
    assert NAME_SERVER_GONE.match(gone), gone
    with pytest.raises(errors.NamingError):
        pyroname_call(pyroname)

    second = start_name_server(command, port)  # back, with nothing in it
    running.read_stderr_until("registered example.thing again")
    assert pyroname_call(pyroname) == (42, uri)

    log = stops_cleanly(running)
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        assert set(ns.list()) == {"Pyro.NameServer"}  # removed at SIGTERM
    second.signal(signal.SIGTERM)
    assert second.wait() == 0
    address = uri.split("@")[1]
    ns_uri = "PYRO:Pyro.NameServer@127.0.0.1:%d" % port
    warnings = [line for line in log if "#warn]" in line]
    assert warnings and all(NAME_SERVER_GONE.match(line) for line in warnings), warnings
    assert [line for line in log if "#warn]" not in line] == [
        "[pyro.service#info] listening on %s" % address,
        "[pyro.cli#info] serving servants:thing=example.thing as %s" % uri,
        "[pyro.nameserver#info] registered example.thing as %s in the name server %s"
        % (uri, ns_uri),
        "[pyro.nameserver#info] keeping example.thing registered: the name server answers "
        "again",
        "[pyro.nameserver#info] registered example.thing again: the name server did not "
        "have it",
        "[pyro.cli#info] received SIGTERM",
        "[pyro.cli#info] shutting down: no new connections; calls in progress may take "
        "up to 10 s",
        "[pyro.nameserver#info] removed example.thing from the name server",
        "[pyro.cli#info] stopped",
    ]


def test_the_check_interval_is_an_option(servants):
    from ..support.commands import command_environment

    result = run_to_end(PYRO + ["serve", "--help"], command_environment(), servants)
    assert result.returncode == 0
    assert ("--ns-interval SECONDS how often the names are checked in the name server, and "
            "registered again if it lost them (default: 10)") in " ".join(result.stdout.split())


def test_with_an_hmac_key(command):
    running = command(PYRO + ["serve", "servants:thing"], {"PYRO_HMAC_KEY": "s3cret"})
    uri = uri_from(running.readline(), "servants:thing")
    with Pyro4.Proxy(uri) as proxy:
        proxy._pyroHmacKey = b"s3cret"
        assert proxy.add(1, 1) == 2
    with Pyro4.Proxy(uri) as proxy, pytest.raises(errors.CommunicationError):
        proxy.add(1, 1)  # no key: refused
    stops_cleanly(running)


# -- mistakes: one line on stderr, a non-zero exit, no traceback --------------------------


def error_of(result: Any) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.splitlines()[-1]


USAGE_ERRORS = [
    (["nosuch:thing"],
     "cannot import module 'nosuch' (nosuch:thing): no such module"),
    (["servants:nothing"],
     "module 'servants' has no attribute 'nothing' (servants:nothing)"),
    (["broken:ratio"],
     "importing module 'broken' (broken:ratio) raised ZeroDivisionError: division by zero"),
    (["servants"], "'servants' is not MODULE:ATTRIBUTE or MODULE:ATTRIBUTE=NAME"),
    (["servants:thing", "--listen", "tcp:abc"],
     "endpoint 'tcp:abc:backlog=4096' does not parse: invalid literal for int() with "
     "base 10: 'abc'"),
    (["servants:thing", "--listen", "nonsense:1"],
     "endpoint 'nonsense:1' does not parse: Unknown endpoint type: 'nonsense'"),
    (["servants:thing", "--listen", "systemd:domain=INET:index=0"],
     "endpoint 'systemd:domain=INET:index=0': no such socket was passed to this process "
     "(LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES)"),
    (["servants:thing=a", "servants:PerCall=a"],
     "two objects named 'a': servants:thing=a and servants:PerCall=a"),
    (["servants:thing", "--ns"],
     "--ns registers named objects only: name one as MODULE:ATTRIBUTE=NAME"),
    (["servants:thing", "--threads", "0"],
     "argument --threads: invalid positive number value: '0'"),
    ([], "the following arguments are required: SPEC"),
]


@pytest.mark.parametrize("arguments, message", USAGE_ERRORS,
                         ids=[message.split(" ")[0] + "-%d" % index
                              for index, (_, message) in enumerate(USAGE_ERRORS)])
def test_mistakes_are_named_in_one_line(servants, arguments, message):
    from ..support.commands import command_environment

    result = run_to_end(PYRO + ["serve"] + arguments, command_environment(), servants)
    expected_status = 1 if message.startswith(("cannot import", "module", "importing")) else 2
    assert (result.returncode, result.stdout) == (expected_status, "")
    assert result.stderr == "python -m pyro serve: error: %s\n" % message


def test_the_key_and_the_environment_exclude_each_other(servants):
    from ..support.commands import command_environment

    result = run_to_end(PYRO + ["serve", "servants:thing", "-k", "a"],
                        command_environment({"PYRO_HMAC_KEY": "b"}), servants)
    assert (result.returncode, result.stderr) == (
        2, "python -m pyro serve: error: don't use -k and PYRO_HMAC_KEY at the same time\n")


def test_a_port_in_use(servants):
    from ..support.commands import command_environment

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_to_end(PYRO + ["serve", "servants:thing", "--listen",
                                    "tcp:%d:interface=127.0.0.1" % port],
                            command_environment(), servants)
    assert (result.returncode, result.stdout) == (1, "")
    assert error_of(result) == (
        "python -m pyro serve: error: port %d on 127.0.0.1 is in use" % port)


def test_a_name_server_that_cannot_be_reached(servants):
    from ..support.commands import command_environment

    port = free_port()
    argv = PYRO + ["serve", "servants:thing=example.thing", "--ns", "--ns-host", "127.0.0.1",
                   "--ns-port", str(port)]
    result = run_to_end(argv, command_environment(), servants)
    assert (result.returncode, result.stdout) == (1, "")
    expected = ("python -m pyro serve: error: cannot register 'example.thing': no name "
                "server at 127.0.0.1:%d (cannot connect to 127.0.0.1:%d: Connection was "
                "refused by other side: 111: Connection refused.)" % (port, port))
    assert [line for line in result.stderr.splitlines() if "error" in line] == [expected]
    assert "Traceback" not in result.stderr

    verbose = run_to_end(argv + ["--verbose"], command_environment(), servants)
    assert verbose.returncode == 1
    assert "Traceback (most recent call last):" in verbose.stderr
    assert expected in verbose.stderr.splitlines()


# -- --reactor -------------------------------------------------------------------------------

#: The module of the running asyncio loop's class, per --reactor.
LOOP_MODULES = {"asyncio": "asyncio.unix_events", "uvloop": "uvloop"}


@pytest.mark.parametrize("reactor", ["asyncio", "uvloop"])
def test_serves_on_the_asyncio_reactor(command, reactor):
    """``async def`` servants await asyncio's own ``sleep`` (no reactor but the asyncio one
    can run them), called by Pyro4 and Pyro5 clients; ``-X dev`` shows nothing left behind."""
    if reactor == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop has no wheel for this platform")
    import Pyro5.api

    running = command([sys.executable, "-X", "dev", "-m", "pyro", "serve",
                       "servants:thing=example.thing", "--reactor", reactor, "--threads", "2"])
    uri = uri_from(running.readline(), "servants:thing")
    with Pyro4.Proxy(uri) as proxy:
        assert proxy.add(1, 2) == 3
        assert proxy.nap(0.01) == LOOP_MODULES[reactor]
        assert proxy.block(0) == "unblocked"  # the thread pool's result, back in the loop
    with Pyro5.api.Proxy(uri) as proxy5:
        assert proxy5.add(2, 3) == 5
        assert proxy5.nap(0.01) == LOOP_MODULES[reactor]
    stops_cleanly(running)
    dirt = [line for line in running.stderr if any(sign in line for sign in DIRT)]
    assert not dirt, running.stderr


def test_the_default_reactor_cannot_await_asyncio(command):
    """What --reactor asyncio is for (and that the test above can fail)."""
    running = command(PYRO + ["serve", "servants:thing"])
    uri = uri_from(running.readline(), "servants:thing")
    with Pyro4.Proxy(uri) as proxy:
        with pytest.raises(RuntimeError) as raised:
            proxy.nap(0.01)
    assert str(raised.value) == "no running event loop"  # asyncio.sleep, outside asyncio
    stops_cleanly(running)


def test_reactor_mistakes_are_one_line(servants):
    env = command_environment()
    typo = run_to_end(PYRO + ["serve", "servants:thing", "--reactor", "asyncoi"], env, servants)
    assert (typo.returncode, typo.stdout, typo.stderr) == (2, "", (
        "python -m pyro serve: error: argument --reactor: invalid choice: 'asyncoi' (choose "
        "from 'default', 'asyncio', 'uvloop')\n"))
    # a Python without uvloop (None in sys.modules: the import fails as for a missing module)
    for command in ("serve", "ns"):
        missing = run_to_end([sys.executable, "-c", (
            "import sys; sys.modules['uvloop'] = None; from pyro.cli import main; "
            "sys.exit(main(sys.argv[1:], prog='python -m pyro'))"), command,
            *(["servants:thing"] if command == "serve" else ["-p", "0", "-x"]),
            "--reactor", "uvloop"], env, servants)
        assert (missing.returncode, missing.stdout, missing.stderr) == (1, "", (
            "python -m pyro %s: error: --reactor uvloop needs uvloop, which is not installed "
            "(pip install uvloop)\n" % command))
