"""``python -m pyro demo``, run as a newcomer runs it: every section's lines, and exit 0.

The demo is a subprocess (this Python, this checkout first on the path); its timings are
printed, matched as numbers, never compared with thresholds. A Pyro4 name server of Pyro4's
own, where ``Pyro4.locateNS()`` would look, holding the demo's name for a dead object, shows
that the demo neither needs nor is confused by a name server already running.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..support.commands import PYRO, command_environment, run_to_end
from ..support.pyro4_peers import pyro4_nameserver

MS = r"\d+\.\d ms"
S = r"\d+\.\d\d s"
PYRONAME = r"PYRONAME:example\.greeter@127\.0\.0\.1:(?P<ns_port>\d+)"

#: The demo's stdout, line by line (regular expressions matched whole), the server's
#: traceback of section 1 apart: it is checked by :func:`check_traceback`.
EXPECTED = [
    r"name server: PYRO:Pyro\.NameServer@127\.0\.0\.1:(?P<ns_port>\d+) \(its own, on "
    r"loopback; no broadcast\)",
    r"server: PYRO:example\.greeter@127\.0\.0\.1:\d+ from the Twisted reactor, registered as "
    r"example\.greeter",
    r"",
    r"1\. a plain Pyro4\.Proxy in another process \(python[\d.]*, no Twisted\), by " + PYRONAME,
    r"  found it by name and connected \(%s\)" % MS,
    r"  hello -> 'Hello, Pyro4 user, from a Twisted reactor!' \(%s\)" % MS,
    r"  divide\(1, 0\) raised ZeroDivisionError\('division by zero'\) here, with the server's "
    r"traceback:",
    "TRACEBACK",
    r"  countdown\(5\) streams -> \[5, 4, 3, 2, 1\] \(%s\)" % MS,
    r"  20 concurrent calls \(20 threads\) of a coroutine waiting 0\.5 s: all answered after "
    + S,
    r"",
    r"2\. PyroDeferredService \(pyro\.proxy: a Pyro4\.Proxy in worker threads\), by PYRONAME:",
    r"  found it by name and connected \(%s\)" % MS,
    r"  hello -> 'Hello, Twisted user, from a Twisted reactor!' \(%s\)" % MS,
    r"  4 concurrent calls \(one per worker thread\) of the coroutine: all answered after " + S,
    r"",
    r"3\. the native client \(pyro\.client\.DeferredProxy: no threads\), by PYRONAME:",
    r"  found it by name and connected \(%s\)" % MS,
    r"  hello -> 'Hello, Twisted user, from a Twisted reactor!' \(%s\)" % MS,
    r"  divide\(1, 0\) raised ZeroDivisionError\('division by zero'\) here; the server's "
    r"traceback ends at: File \".*[/\\]pyro[/\\]demo\.py\", line \d+, in divide",
    r"  countdown\(5\) streams -> \[5, 4, 3, 2, 1\] \(%s\)" % MS,
    r"  20 concurrent calls \(one proxy, one thread\) of the coroutine: all answered after " + S,
    r"",
    r"done in %s: one reactor thread served the name server and all three clients" % S,
]


def check_traceback(lines: Sequence[str]) -> None:
    """The server's traceback as Pyro4 hands it to its user (Python 3.11 adds ``~~^~~``)."""
    assert lines[0] == "    Traceback (most recent call last):", lines
    assert re.fullmatch(r'      File ".*[/\\]pyro[/\\]demo\.py", line \d+, in divide',
                        lines[1]), lines
    assert lines[2] == "        return a / b", lines
    assert lines[-1] == "    ZeroDivisionError: division by zero", lines
    assert all(re.fullmatch(r" *~*\^~*", line) for line in lines[3:-1]), lines


def check_output(stdout: str) -> dict[str, str]:
    """Match every line; the named groups found (the name server's port, in every line
    that names it: all the same)."""
    lines = stdout.splitlines()
    found: dict[str, str] = {}
    at = 0
    for pattern in EXPECTED:
        if pattern == "TRACEBACK":
            end = at
            while end < len(lines) and lines[end].startswith("    "):
                end += 1
            check_traceback(lines[at:end])
            at = end
            continue
        assert at < len(lines), "missing: %s\n%s" % (pattern, stdout)
        match = re.fullmatch(pattern, lines[at])
        assert match is not None, "line %d: %r does not match %r\n%s" % (
            at, lines[at], pattern, stdout)
        for name, value in match.groupdict().items():
            assert found.setdefault(name, value) == value, (name, found[name], value)
        at += 1
    assert lines[at:] == [], lines[at:]
    return found


def test_the_demo_shows_every_face(tmp_path):
    result = run_to_end(PYRO + ["demo"], command_environment(), tmp_path, timeout=60)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    check_output(result.stdout)


def test_a_name_server_already_running_is_not_used(tmp_path):
    """Pyro4's name server, where ``Pyro4.locateNS()`` looks (``NS_HOST``/``NS_PORT``, and
    broadcast on loopback), with ``example.greeter`` pointing at nothing: the demo uses its
    own, and leaves this one as it was."""
    dead = "PYRO:example.greeter@127.0.0.1:1"
    with pyro4_nameserver() as ns:
        ns.nameserver.register("example.greeter", dead)
        env = command_environment({"PYRO_NS_HOST": "127.0.0.1", "PYRO_NS_PORT": str(ns.port)})
        result = run_to_end(PYRO + ["demo"], env, tmp_path, timeout=60)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        found = check_output(result.stdout)
        assert int(found["ns_port"]) != ns.port
        assert str(ns.nameserver.lookup("example.greeter")) == dead
        assert set(ns.nameserver.list()) == {"Pyro.NameServer", "example.greeter"}


def test_a_failure_is_one_line_and_exit_status_1(tmp_path):
    """The clients' serializer set to pickle, which our server (as Pyro4's) does not accept."""
    env = command_environment({"PYRO_SERIALIZER": "pickle"})
    result = run_to_end(PYRO + ["demo"], env, tmp_path, timeout=60)
    assert result.returncode == 1
    assert re.fullmatch(
        r"python -m pyro demo: error: registering example\.greeter failed: NamingError: Failed "
        r"to locate the nameserver \(CommunicationError: connection to 127\.0\.0\.1:\d+ "
        r"rejected: message used serializer that is not accepted: 4\)\n", result.stderr), \
        result.stderr
    assert result.stdout.splitlines()[0].startswith("name server: PYRO:Pyro.NameServer@")

    verbose = run_to_end(PYRO + ["demo", "--verbose"], env, tmp_path, timeout=60)
    assert verbose.returncode == 1
    assert "Traceback (most recent call last):" in verbose.stderr
    assert verbose.stderr.splitlines()[-1].startswith(
        "python -m pyro demo: error: registering example.greeter failed: ")
