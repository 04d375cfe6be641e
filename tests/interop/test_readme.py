"""The Python examples in README.md, run as written, each in its own Python process.

Every example is taken from README.md when the test runs (the fenced block that contains a
distinctive line), so a README change that makes an example false breaks a test, and a block
that disappears fails loudly. Only what must change on a shared machine is substituted:

- the fixed port ``9090`` of the server example becomes a free port;
- the name server the client examples find through ``PYRONAME:`` is a real Pyro4 name server
  on a free port, announced the way Pyro4 reads it, from ``PYRO_NS_HOST``/``PYRO_NS_PORT`` in
  the environment (``Pyro4.configuration`` reads ``PYRO_<setting>`` at import). Broadcast
  lookups, which Pyro4's ``locateNS`` makes when no name server answers, are confined to
  loopback (``PYRO_BROADCAST_ADDRS``, ``PYRO_NS_BCPORT``): no packet leaves the machine.

The peers are real: a plain ``Pyro4.Proxy`` calls the server example, and a Pyro4 daemon
(tests/support/pyro4_peers.py) serves the objects the client examples call. Each test asserts on what the
example prints (its comments say what that is) and on what its peer saw.

The original project's README example is shown complete (imports, class, reactor around its
own six lines): it runs here as a program, and tests/server/test_server.py
(``OriginalReadmeTest``) runs its six lines inside a test; here we also check that the README
shows those lines unchanged and that they are the lines that test runs.

Plain pytest tests (subprocesses, no reactor in this process). Every wait is bounded, and an
alarm bounds each test as a whole.
"""

from __future__ import annotations

import ast
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import Pyro4
import Pyro4.naming_storage
import Pyro4.socketutil
import pytest

import pyro

from ..support.pyro4_peers import (
    Pyro4NameServerPeer,
    Pyro4Peer,
    free_port,
    pyro4_daemon,
    pyro4_nameserver,
    start_pyro4_nameserver,
)

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"

#: Seconds any one test may take in all (an alarm fails it after that).
TEST_TIMEOUT = 60
#: Seconds an example may take to print a line, or to finish.
STEP_TIMEOUT = 20


# ------------------------------------------------------------------------------------------
# Reading the README


def fenced_blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line number, language, code)`` of every fenced block of ``text``, dedented (a block
    inside a list item is indented with the item)."""
    blocks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^(\s*)```(\w*)\s*$", lines[index])
        if opening is None:
            index += 1
            continue
        indent, language = opening.groups()
        start = index + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"README.md line {start}: a fenced block is never closed")
        code = textwrap.dedent("\n".join(lines[start:end])) + "\n"
        blocks.append((start, language, code))
        index = end + 1
    return blocks


def python_block(marker: str) -> str:
    """The one ```python block of README.md containing the line fragment ``marker``."""
    found = [code for _, language, code in fenced_blocks(README.read_text(encoding="utf-8"))
             if language == "python" and marker in code]
    if len(found) != 1:
        pytest.fail(f"README.md has {len(found)} python blocks containing {marker!r}, not 1: "
                    "the example this test runs is gone or ambiguous")
    return found[0]


def substitute(code: str, old: str, new: str) -> str:
    """``code`` with ``old`` replaced by ``new``; fails if ``old`` is not there."""
    assert old in code, f"the README example no longer contains {old!r}:\n{code}"
    return code.replace(old, new)


def test_readme_python_blocks_are_all_covered():
    """Every python block in the README is one the tests below (or test_server.py) run: a new
    example must come with a test."""
    covered = [SERVER_MARKER, REGISTER_MARKER, ORIGINAL_MARKER, SERVICE_MARKER,
               STREAM_BATCH_MARKER, NATIVE_MARKER, NAMESERVER_MARKER, KEEP_MARKER,
               TAC_MARKER, PYRO5_MARKER, AIO_MARKER]
    blocks = [(line, code) for line, language, code
              in fenced_blocks(README.read_text(encoding="utf-8")) if language == "python"]
    uncovered = [line for line, code in blocks if not any(m in code for m in covered)]
    assert uncovered == [], f"README.md python blocks without a test, at lines {uncovered}"
    for marker in covered:
        python_block(marker)  # each exactly once


# ------------------------------------------------------------------------------------------
# Running an example


@pytest.fixture(autouse=True)
def bounded_time() -> Iterator[None]:
    """Fail a test that runs longer than TEST_TIMEOUT seconds (no plugin needed)."""
    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"test took more than {TEST_TIMEOUT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def example_environment(ns_port: int | None = None,
                        bc_port: int | None = None) -> dict[str, str]:
    """The environment of an example: this process's, with this checkout's ``pyro`` first on
    the path and Pyro4's name server settings pointing at ``ns_port`` on loopback (broadcast
    lookups go to 127.0.0.1:``bc_port``, a free UDP port unless given)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYRO_")}
    source = str(Path(pyro.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"  # a server's first line arrives while it serves
    if ns_port is not None:
        env["PYRO_NS_HOST"] = "127.0.0.1"
        env["PYRO_NS_PORT"] = str(ns_port)
        env["PYRO_BROADCAST_ADDRS"] = "127.0.0.1"
        env["PYRO_NS_BCPORT"] = str(bc_port or free_udp_port())
    return env


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Example:
    """An example running as ``python readme_example.py`` in ``directory``; stdout is read
    line by line by a thread, stderr goes to a file."""

    def __init__(self, code: str, directory: Path, env: dict[str, str]) -> None:
        script = directory / "readme_example.py"
        script.write_text(code, encoding="utf-8")
        self._stderr_path = directory / "stderr.txt"
        with open(self._stderr_path, "w", encoding="utf-8") as stderr:
            self.process = subprocess.Popen([sys.executable, str(script)], cwd=directory,
                                            env=env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=stderr, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    @property
    def stderr(self) -> str:
        return self._stderr_path.read_text(encoding="utf-8")

    def readline(self, timeout: float = STEP_TIMEOUT) -> str:
        """The next line the example prints (without its newline)."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the example printed nothing for {timeout} s; stderr:\n"
                                 f"{self.stderr}") from None
        if line is None:
            self._lines.put(None)
            raise AssertionError(f"the example exited ({self.process.wait(STEP_TIMEOUT)}) "
                                 f"before printing the line expected; stderr:\n{self.stderr}")
        return line.rstrip("\n")

    def finish(self, timeout: float = STEP_TIMEOUT) -> str:
        """Wait for the example to exit by itself; all it printed (from here on). It must
        exit with status 0 and write nothing to stderr."""
        try:
            returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the example did not finish within {timeout} s; stderr:\n"
                                 f"{self.stderr}") from None
        self._reader.join(STEP_TIMEOUT)
        output = "".join(iter(self._lines.get_nowait, None))
        assert (returncode, self.stderr) == (0, ""), f"stdout:\n{output}"
        return output

    def stop(self) -> int:
        """Stop a running example (SIGTERM, as a service manager would); its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(STEP_TIMEOUT)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STEP_TIMEOUT)
        self._reader.join(STEP_TIMEOUT)
        if self.process.stdout is not None and not self._reader.is_alive():
            self.process.stdout.close()


@pytest.fixture
def run_example(tmp_path: Path) -> Iterator[Any]:
    """``run_example(code, env)`` starts an example; whatever is still running at the end of
    the test is killed."""
    started: list[Example] = []

    def run(code: str, env: dict[str, str]) -> Example:
        example = Example(code, tmp_path, env)
        started.append(example)
        return example

    yield run
    for example in started:
        example.kill()


# ------------------------------------------------------------------------------------------
# "Serving Pyro4 objects from Twisted": the Thermostat server, called by a plain Pyro4.Proxy

SERVER_MARKER = "class Thermostat:"


def test_server_example_serves_plain_pyro4_clients(run_example):
    port = free_port()
    code = substitute(python_block(SERVER_MARKER), '"tcp:9090:', f'"tcp:{port}:')
    server = run_example(code, example_environment())
    uri = f"PYRO:example.thermostat@127.0.0.1:{port}"
    # The comment on the print: "# PYRO:example.thermostat@127.0.0.1:9090"
    assert server.readline() == f"serving {uri}"

    # The sentence after the example, evaluated as written (but for the port).
    readme = README.read_text(encoding="utf-8")
    usage = re.search(r"Any Pyro4 client calls it as usual: `([^`]+)`", readme)
    assert usage is not None, "README.md no longer shows how a Pyro4 client calls the server"
    client_call = substitute(usage.group(1), "@127.0.0.1:9090", f"@127.0.0.1:{port}")
    assert eval(client_call, {"Pyro4": Pyro4}) == 20.0

    with Pyro4.Proxy(uri) as proxy:
        assert proxy.set_target(22.5) is None                       # a plain method
        assert proxy.wait_and_read(0.01) == 22.5                    # a coroutine
        assert list(proxy.readings()) == [19.5, 19.8, 20.0]         # an item stream

    # "coroutines: the reactor serves others meanwhile": ten clients wait in wait_and_read(2)
    # at once; while they wait, another client changes the target, and all ten read the new
    # value. A server that ran the coroutines one after another (or blocked in them) would
    # answer set_target only after the first wait, and most readers would see the old value.
    # An ordering check, not a timing one: nothing here bounds how long anything takes.
    clients = 10
    entered = threading.Barrier(clients + 1)
    results: list[Any] = []

    def client() -> None:
        with Pyro4.Proxy(uri) as proxy:
            proxy._pyroBind()
            entered.wait(STEP_TIMEOUT)
            results.append(proxy.wait_and_read(2.0))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    entered.wait(STEP_TIMEOUT)
    with Pyro4.Proxy(uri) as proxy:
        proxy.set_target(30.0)  # answered while the ten are still waiting
        still_waiting = sum(thread.is_alive() for thread in threads)
    for thread in threads:
        thread.join(STEP_TIMEOUT)
    assert still_waiting == clients
    assert results == [30.0] * clients

    # "serve forever": still serving until stopped; SIGTERM stops the reactor cleanly.
    assert server.process.poll() is None
    assert server.stop() == 0
    assert "Traceback" not in server.stderr, server.stderr


# ------------------------------------------------------------------------------------------
# The original twisted-pyro README example, shown complete: run here, and its own six lines
# also run by tests/server/test_server.py

ORIGINAL_MARKER = "factory = pyro.protocol.Pyro4ClientFactory()"

#: The original project's example, as its README had it (quoted in the design notes).
ORIGINAL_LINES = [
    "factory = pyro.protocol.Pyro4ClientFactory()",
    "tcp_port = pyro.protocol.reactor.listenTCP(5555, factory)",
    'host = getInterfaceAddress("8.8.8.8")',
    "port = tcp_port.getHost().port",
    "factory.setAddress(host, port)",
    "fooUri = factory.register(Foo())",
]


def _code_lines(code: str) -> list[str]:
    """The non-empty lines of ``code`` without comments or surrounding spaces."""
    return [stripped for line in code.splitlines()
            if (stripped := line.split("#", 1)[0].strip())]


def test_original_example_keeps_its_own_lines():
    """The README shows the original six lines unchanged, one after the other, with only
    what a program needs around them (imports and the class before, the reactor after)."""
    lines = python_block(ORIGINAL_MARKER).splitlines()
    start = lines.index(ORIGINAL_LINES[0])
    assert lines[start:start + len(ORIGINAL_LINES)] == ORIGINAL_LINES


def test_original_readme_snippet_is_what_test_server_runs():
    """tests/server/test_server.py runs the original snippet with only its port changed (5555 -> 0,
    a free port): every one of its lines the README shows must be a line of that test."""
    source_path = ROOT / "tests" / "server" / "test_server.py"
    source = source_path.read_text(encoding="utf-8")
    tests = [node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.FunctionDef)
             and node.name == "test_original_readme_example_runs_as_written"]
    assert len(tests) == 1, "tests/server/test_server.py no longer runs the original README example"
    test_lines = set(_code_lines(ast.get_source_segment(source, tests[0]) or ""))
    readme_lines = [line for line in _code_lines(python_block(ORIGINAL_MARKER))
                    if line in ORIGINAL_LINES]
    assert readme_lines == ORIGINAL_LINES
    missing = [line for line in readme_lines
               if line.replace("listenTCP(5555,", "listenTCP(0,") not in test_lines]
    assert missing == [], f"README lines tests/server/test_server.py does not run: {missing}"


def test_original_example_runs_complete(run_example):
    """The complete example, as a program: it prints the URI (naming the address of the
    interface with the default route) and serves ``Foo`` on every interface; a plain
    ``Pyro4.Proxy`` calls it over loopback. Port 5555 becomes a free one."""
    try:
        host = Pyro4.socketutil.getInterfaceAddress("8.8.8.8")  # a UDP connect(): no packet
    except OSError as exc:
        pytest.skip(f"this machine has no default route, which the example needs: {exc}")
    port = free_port("0.0.0.0")
    code = substitute(python_block(ORIGINAL_MARKER), "listenTCP(5555,", f"listenTCP({port},")
    server = run_example(code, example_environment())
    uri = Pyro4.URI(server.readline())
    # The comment on the print: "PYRO:obj_...@<the address other machines reach>:5555"
    assert (uri.object.startswith("obj_"), uri.host, uri.port) == (True, host, port)
    with Pyro4.Proxy(f"PYRO:{uri.object}@127.0.0.1:{port}") as foo:
        assert foo.ping() == "pong"
    assert server.stop() == 0  # SIGTERM: the reactor stops
    assert "Traceback" not in server.stderr, server.stderr


# ------------------------------------------------------------------------------------------
# Peers for the client examples: a Pyro4 name server and a Pyro4 daemon


@Pyro4.expose
class Greeting:
    """What the PyroDeferredService example and its stream/batch snippet call."""

    def __init__(self) -> None:
        self._counter = 0

    def get_fortune(self, name: str) -> str:
        self._counter += 1
        return f"{name}, you will find what you seek."

    @property
    def counter(self) -> int:
        return self._counter

    def add(self, a: int, b: int) -> int:
        return a + b

    def numbers(self, n: int) -> Iterator[int]:
        yield from range(n)

    def open_streams(self) -> int:
        """How many item streams the daemon serving this object holds open."""
        return len(self._pyroDaemon.streaming_responses)


@Pyro4.expose
class Thing:
    """What the native DeferredProxy example calls."""

    def __init__(self) -> None:
        self._value = 42
        self.logged: list[str] = []
        self.log_arrived = threading.Event()

    def add(self, a: int, b: int) -> int:
        return a + b

    @property
    def value(self) -> int:
        return self._value

    @value.setter
    def value(self, new: int) -> None:
        self._value = new

    @Pyro4.oneway
    def log(self, message: str) -> None:
        self.logged.append(message)
        self.log_arrived.set()

    def numbers(self, n: int) -> Iterator[int]:
        yield from range(n)


@pytest.fixture
def nameserver() -> Iterator[Pyro4NameServerPeer]:
    with pyro4_nameserver() as ns:
        yield ns


@pytest.fixture
def daemon() -> Iterator[Pyro4Peer]:
    with pyro4_daemon("thread") as peer:
        yield peer


FORTUNE = "Alice, you will find what you seek."


# ------------------------------------------------------------------------------------------
# "To publish an object under a name": registered with a real Pyro4 name server

REGISTER_MARKER = 'await ns.register("example.clock", uri)'


def test_register_with_the_name_server_example(run_example, nameserver):
    server = run_example(python_block(REGISTER_MARKER), example_environment(nameserver.port))
    line = server.readline()
    assert re.fullmatch(r"registered PYRO:example\.clock@127\.0\.0\.1:\d+", line), line
    uri = line.split(" ", 1)[1]
    assert str(nameserver.nameserver.lookup("example.clock")) == uri
    # The comment's client, through this test's name server
    with Pyro4.Proxy(f"PYRONAME:example.clock@127.0.0.1:{nameserver.port}") as clock:
        assert clock.now() == "tea time"
    assert server.process.poll() is None  # still serving
    assert server.stop() == 0
    assert "Traceback" not in server.stderr, server.stderr


# ------------------------------------------------------------------------------------------
# "A name server in the reactor": sql storage and autoclean, used by Pyro4 clients

NAMESERVER_MARKER = 'SqlStorage("names.sqlite"), autoclean=60)'


def test_name_server_example_keeps_its_names_for_the_next_run(run_example, tmp_path):
    port = free_port()
    code = substitute(python_block(NAMESERVER_MARKER), '"tcp:9090:', f'"tcp:{port}:')
    uri = f"PYRO:Pyro.NameServer@127.0.0.1:{port}"
    server = run_example(code, example_environment())
    assert server.readline() == f"name server {uri}"  # the comment on the print
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        ns.register("example.saved", "PYRO:thing@127.0.0.1:1111", metadata={"tag"})
    assert server.stop() == 0  # SIGTERM: the shutdown trigger closes the factory
    assert "Traceback" not in server.stderr, server.stderr
    stored = Pyro4.naming_storage.SqlStorage(str(tmp_path / "names.sqlite"))
    assert stored["example.saved"] == ("PYRO:thing@127.0.0.1:1111", {"tag"})

    again = run_example(code, example_environment())  # "keeps the names ... for the next run"
    assert again.readline() == f"name server {uri}"
    with Pyro4.locateNS("127.0.0.1", port) as ns:
        assert ns.lookup("example.saved", return_metadata=True) == (
            Pyro4.URI("PYRO:thing@127.0.0.1:1111"), ["tag"])
        assert ns.lookup("Pyro.NameServer") == Pyro4.URI(uri)
    assert again.stop() == 0
    assert "Traceback" not in again.stderr, again.stderr


# ------------------------------------------------------------------------------------------
# "Names that survive a name server restart": keep_registered, with a real Pyro4 name server

KEEP_MARKER = 'kept = keep_registered("example.kettle", uri)'


def test_keep_registered_example_survives_a_restart(run_example, nameserver):
    port = nameserver.port
    server = run_example(python_block(KEEP_MARKER), example_environment(port))
    line = server.readline()
    assert re.fullmatch(r"registered PYRO:example\.kettle@127\.0\.0\.1:\d+", line), line
    uri = line.split(" ", 1)[1]
    assert str(nameserver.nameserver.lookup("example.kettle")) == uri
    with Pyro4.Proxy(f"PYRONAME:example.kettle@127.0.0.1:{port}") as kettle:
        assert kettle.boil() == "boiling"

    # the comment: "registered again if the name server restarts without it" (within the
    # default interval, 10 s, plus a retry)
    nameserver.stop()
    restarted = start_pyro4_nameserver(port=port)
    try:
        deadline = time.monotonic() + 3 * STEP_TIMEOUT / 4
        while "example.kettle" not in restarted.nameserver.list():
            assert time.monotonic() < deadline, f"not registered again; stderr:\n{server.stderr}"
            time.sleep(0.1)
        with Pyro4.Proxy(f"PYRONAME:example.kettle@127.0.0.1:{port}") as kettle:
            assert kettle.boil() == "boiling"
        # "removed when we stop"
        assert server.stop() == 0
        assert "example.kettle" not in restarted.nameserver.list()
        assert "Traceback" not in server.stderr, server.stderr
    finally:
        restarted.stop()


# ------------------------------------------------------------------------------------------
# "Calling Pyro4 objects from Twisted": PyroDeferredService + PyroPatientProxy

SERVICE_MARKER = 'PyroPatientProxy("PYRONAME:example.greeting")'


def test_deferred_service_example(run_example, nameserver, daemon):
    greeting = Greeting()
    nameserver.register_name("example.greeting", daemon.register(greeting))
    example = run_example(python_block(SERVICE_MARKER), example_environment(nameserver.port))
    # a remote call, then the exposed attribute (that call counted once)
    assert example.finish() == f"{FORTUNE}\n1\n"
    assert greeting.counter == 1


def test_deferred_service_example_with_a_plain_proxy(run_example, nameserver, daemon):
    """The example's comment: "a plain Pyro4.Proxy("PYRONAME:example.greeting") works too"."""
    code = python_block(SERVICE_MARKER)
    assert 'a plain Pyro4.Proxy("PYRONAME:example.greeting") works too' in code
    code = substitute(code, 'PyroPatientProxy("PYRONAME:example.greeting")',
                      'Pyro4.Proxy("PYRONAME:example.greeting")')
    nameserver.register_name("example.greeting", daemon.register(Greeting()))
    example = run_example(code, example_environment(nameserver.port))
    assert example.finish() == f"{FORTUNE}\n1\n"


def test_deferred_service_example_waits_for_the_name_server(run_example, daemon):
    """The example's comment: the PyroPatientProxy "waits ... for the name server and the
    object". The example starts with no name server; we listen where its broadcast lookups
    go (loopback) and start the name server only once it has tried and failed, and tries
    again: Pyro4's ``locateNS`` sends ``GET_NSURI`` three times per lookup (to the one
    address in ``BROADCAST_ADDRS``), so the fourth query belongs to a second lookup."""
    ns_port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as broadcasts:
        broadcasts.bind(("127.0.0.1", 0))
        broadcasts.settimeout(STEP_TIMEOUT)
        env = example_environment(ns_port, bc_port=broadcasts.getsockname()[1])
        example = run_example(python_block(SERVICE_MARKER), env)
        for _ in range(4):
            assert broadcasts.recvfrom(100)[0] == b"GET_NSURI"
    assert example.process.poll() is None, f"the example gave up:\n{example.stderr}"
    ns = start_pyro4_nameserver(port=ns_port)
    try:
        ns.register_name("example.greeting", daemon.register(Greeting()))
        # found at the end of this lookup (NS_HOST:NS_PORT after the broadcast)
        assert example.finish() == f"{FORTUNE}\n1\n"
    finally:
        ns.stop()


# The stream/batch bullet is a fragment (``yield`` inside the example's main, with a
# ``service``): it runs inside the smallest harness that gives it one, a plain Pyro4.Proxy
# wrapped as in the example above. The harness prints ``item``, and how many streams the
# server still holds before the service is closed (which would close them too), so that the
# test sees what the snippet did.
STREAM_BATCH_MARKER = "stream = yield service.numbers(100)"

STREAM_BATCH_HARNESS = """\
import Pyro4
from twisted.internet import defer, task
from pyro.proxy import PyroDeferredService

@defer.inlineCallbacks
def main(reactor):
    service = PyroDeferredService(Pyro4.Proxy("PYRONAME:example.greeting"))
    try:
{snippet}
        print("item:", item)
        print("open streams:", (yield service.open_streams()))
    finally:
        yield service.close()

task.react(main)
"""


def test_stream_and_batch_snippet(run_example, nameserver, daemon):
    snippet = textwrap.indent(python_block(STREAM_BATCH_MARKER), " " * 8)
    code = STREAM_BATCH_HARNESS.format(snippet=snippet)
    greeting = Greeting()
    nameserver.register_name("example.greeting", daemon.register(greeting))
    example = run_example(code, example_environment(nameserver.port))
    # the batch's comment: "[3, '...']"; the first item; stream.close() dropped the stream
    assert example.finish() == f"{[3, FORTUNE]!r}\nitem: 0\nopen streams: 0\n"
    assert greeting.counter == 1
    # nothing lingers on the server (ITER_STREAM_LINGER would keep an unclosed stream there
    # for 30 s after the client disconnected)
    assert Pyro4.config.ITER_STREAM_LINGER > 0
    assert daemon.daemon.streaming_responses == {}


# ------------------------------------------------------------------------------------------
# "The native client": DeferredProxy

NATIVE_MARKER = 'DeferredProxy("PYRONAME:example.thing"'


def test_native_client_example(run_example, nameserver, daemon):
    thing = Thing()
    nameserver.register_name("example.thing", daemon.register(thing))
    example = run_example(python_block(NATIVE_MARKER), example_environment(nameserver.port))
    # add(1, 2); the attribute before setattr; the batch "[2, 4]"; the stream numbers(5)
    assert example.finish() == "3\n42\n[2, 4]\n0\n1\n2\n3\n4\n"
    assert thing.value == 5
    assert thing.log_arrived.wait(STEP_TIMEOUT)
    assert thing.logged == ["fire and forget"]


# ------------------------------------------------------------------------------------------
# "Pyro5: both generations on one port": one factory, one URI, Pyro4 and Pyro5 clients

PYRO5_MARKER = 'pyro.client.DeferredProxy(uri, pyro_version=5)'


def test_pyro5_example_serves_both_generations(run_example):
    """The example serves one object and calls it with an unmodified ``Pyro4.Proxy``, an
    unmodified ``Pyro5.api.Proxy`` and the native client speaking Pyro5, by the same URI."""
    example = run_example(python_block(PYRO5_MARKER), example_environment())
    assert example.finish() == ("hello, Pyro4.Proxy\nhello, Pyro5.api.Proxy\n"
                                "hello, DeferredProxy\n")


# ------------------------------------------------------------------------------------------
# "asyncio programs": a plain asyncio.run(main()) program, server and clients in one

AIO_MARKER = "async with pyro.aio.Proxy(uri) as greeter:"


def test_asyncio_example(run_example):
    """Its own process, as every example here: it installs Twisted's asyncio reactor."""
    example = run_example(python_block(AIO_MARKER), example_environment())
    # gather of two greetings; a call as a task; a Pyro4.Proxy's call; the countdown stream;
    # the cancelled call
    assert example.finish() == ("['hello, asyncio', 'hello, Pyro']\nhello, a task\n"
                                "hello, Pyro4\n"
                                "[3, 2, 1]\ncancelled after 0.01 s\n")


# ------------------------------------------------------------------------------------------
# "twistd, .tac files and services": the .tac file, run by twistd as the README says

TAC_MARKER = 'application = service.Application("boiler")'


def test_tac_file_runs_under_twistd(tmp_path):
    from ..support.commands import TWISTD, Running, command_environment

    port, ns_port = free_port(), free_port()
    code = substitute(python_block(TAC_MARKER), "9090", str(port))
    code = substitute(code, "tcp:9091:", f"tcp:{ns_port}:")
    (tmp_path / "boiler.tac").write_text(code, encoding="utf-8")
    # "twistd -ny boiler.tac" (and no pid file, so that tests may run side by side)
    running = Running(TWISTD + ["-ny", "boiler.tac", "--pidfile="],
                      command_environment(), tmp_path)
    try:
        running.read_stdout_until(f"name server PYRO:Pyro.NameServer@127.0.0.1:{ns_port} "
                                  "serving")
        with Pyro4.Proxy(f"PYRO:example.boiler@127.0.0.1:{port}") as boiler:
            assert boiler.temperature() == 65.5
        with Pyro4.locateNS("127.0.0.1", ns_port) as ns:
            assert "Pyro.NameServer" in ns.list()
        running.signal(signal.SIGTERM)
        assert running.wait() == -signal.SIGTERM  # twistd ends by the signal that stopped it
        assert not any("Traceback" in line for line in running.stdout + running.stderr)
    finally:
        running.kill()
