"""The examples of the guides in docs/ (``migrating.rst``, ``deployment.rst``), run as written.

As tests/interop/test_readme.py does for the README: every code block is taken from the
``.rst`` file when the test runs, and only what must change on a shared machine is
substituted (fixed ports become free ones, ``/run`` and ``/var/log`` paths a temporary
directory, ``0.0.0.0`` and a name server host elsewhere become loopback). A python block
names the file it is by its first line (``# warehouse.py: ...``); the tests write it there
and run it, each in its own process, against real peers: Pyro4 4.82's name server and
proxies, our commands, ``twistd``. :func:`test_every_block_is_run` fails when a block
appears that no test runs.

Pyro4's examples (``serveSimple``, a blocking proxy) are run too: the guide's "before" must
be as true as its "after".
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import Pyro4
import pytest

from pyro.cli.options import build_parser

from ..support.commands import (
    PYRO,
    TWISTD,
    Running,
    command_environment,
    log_text,
    run_to_end,
    socket_activated,
)
from ..support.pyro4_peers import Pyro4NameServerPeer, free_port, pyro4_nameserver
from .test_readme import STEP_TIMEOUT, Example, example_environment, substitute

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
GUIDES = ("migrating.rst", "deployment.rst")

#: ``twisted-pyro`` as the installed console script runs it (the name is in its messages).
TWISTED_PYRO = [sys.executable, "-c",
                "import sys; sys.argv[0] = 'twisted-pyro'; from pyro.cli import main; "
                "sys.exit(main())"]


# ------------------------------------------------------------------------------------------
# Reading the guides


def rst_blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line, language, code)`` of every ``.. code-block::`` and every ``::`` literal block
    of ``text`` (language ``"literal"``), dedented."""
    lines = text.splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = re.match(r"^(\s*)\.\. code-block:: *(\w+)\s*$", line)
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if not (directive or literal):
            index += 1
            continue
        indent = len(line) - len(line.lstrip())
        language = directive.group(2) if directive else "literal"
        end = index + 1
        body = []
        while end < len(lines) and (not lines[end].strip()
                                    or len(lines[end]) - len(lines[end].lstrip()) > indent):
            body.append(lines[end])
            end += 1
        code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        assert code.strip(), f"an empty block at line {index + 1}"
        blocks.append((index + 1, language, code))
        index = end
    return blocks


def all_blocks() -> list[tuple[str, int, str, str]]:
    return [(guide, line, language, code) for guide in GUIDES
            for line, language, code in rst_blocks((DOCS / guide).read_text(encoding="utf-8"))]


def python_file(name: str) -> str:
    """The one python block whose first line is ``# name: ...``."""
    found = [code for _, _, language, code in all_blocks()
             if language == "python" and code.startswith(f"# {name}:")]
    if len(found) != 1:
        pytest.fail(f"docs/ has {len(found)} python blocks named {name!r}, not 1")
    return found[0]


def block(language: str, marker: str) -> str:
    """The one ``language`` block of the guides containing ``marker``."""
    found = [code for _, _, lang, code in all_blocks() if lang == language and marker in code]
    if len(found) != 1:
        pytest.fail(f"docs/ has {len(found)} {language} blocks containing {marker!r}, not 1")
    return found[0]


PYTHON_FILES = {"warehouse.py", "server_pyro4.py", "server_twisted.py", "client_pyro4.py",
                "client_native.py", "client_threaded.py", "warehouse.tac", "nameserver.tac",
                "logging_example.py"}
SERVE_COMMAND = "python -m pyro serve warehouse:Warehouse=example.warehouse --ns"
NS_COMMAND = "python -m pyro ns -n 127.0.0.1 -p 9090 -s sql:names.sqlite"
TWISTD_SERVE = "twistd -n pyro-serve warehouse:Warehouse=example.warehouse"
TWISTD_NS = "twistd --pidfile /run/pyro-ns.pid"
SYNOPSIS = "twisted-pyro serve SPEC..."
MISTAKES = "twisted-pyro serve: error: port 9090 on 127.0.0.1 is in use"
DRAIN = 'reactor.addSystemEventTrigger("before", "shutdown", factory.drain, 10)'
PLUGIN_CACHE = "list(getPlugins(IPlugin))"
UNIT_SERVE = "# /etc/systemd/system/pyro-warehouse.service"
UNIT_SOCKET = "# /etc/systemd/system/pyro-ns.socket"
UNIT_NS = "# /etc/systemd/system/pyro-ns.service"
BLOCK_MARKERS = {"sh": [SERVE_COMMAND, NS_COMMAND, TWISTD_SERVE, TWISTD_NS],
                 "text": [SYNOPSIS], "literal": [MISTAKES, DRAIN, PLUGIN_CACHE],
                 "ini": [UNIT_SERVE, UNIT_SOCKET, UNIT_NS]}


def test_every_block_is_run():
    """Every block of the guides is one a test below runs (or, for the two fragments, checks
    against a block that runs): a new example must come with a test."""
    unrun = []
    for guide, line, language, code in all_blocks():
        if language == "python":
            name = re.match(r"# (\S+):", code)
            if name is None or name.group(1) not in PYTHON_FILES:
                unrun.append(f"{guide}:{line}")
        elif not any(marker in code for marker in BLOCK_MARKERS.get(language, [])):
            unrun.append(f"{guide}:{line} ({language})")
    assert unrun == [], f"blocks in docs/ that no test runs: {unrun}"
    for name in PYTHON_FILES:
        python_file(name)  # each exactly once
    for language, markers in BLOCK_MARKERS.items():
        for marker in markers:
            block(language, marker)


# ------------------------------------------------------------------------------------------
# Running them


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Any]]:
    """Everything a test starts (Examples and Running commands), killed at the end."""
    running: list[Any] = []
    yield running
    for item in running:
        item.kill()


def write(directory: Path, name: str, code: str | None = None) -> Path:
    path = directory / name
    path.write_text(python_file(name) if code is None else code, encoding="utf-8")
    return path


def run_file(started: list[Any], directory: Path, name: str, env: dict[str, str],
             code: str | None = None) -> Example:
    """The block ``name`` run as a script, in a directory of its own under ``directory``
    (with a copy of ``directory``'s ``warehouse.py``, which it may import)."""
    own = directory / name.replace(".", "_")
    own.mkdir()
    if (directory / "warehouse.py").exists():
        write(own, "warehouse.py")
    example = Example(python_file(name) if code is None else code, own, env)
    started.append(example)
    return example


def start(started: list[Any], argv: list[str], env: dict[str, str], cwd: Path,
          **popen: Any) -> Running:
    running = Running(argv, env, cwd, **popen)
    started.append(running)
    return running


def command(shell_line: str) -> list[str]:
    """A documented command line as argv for this Python (``python -m pyro`` and ``twistd``
    run from this interpreter, with this checkout's plugins)."""
    words = shell_line.split()
    if words[:3] == ["python", "-m", "pyro"]:
        return PYRO + words[3:]
    if words[0] == "twistd":
        return TWISTD + words[1:]
    if words[0].endswith("/twisted-pyro"):
        return TWISTED_PYRO + words[1:]
    raise AssertionError(f"not a command the docs should show: {shell_line}")


def warehouse_env(ns: Pyro4NameServerPeer) -> dict[str, str]:
    """The environment of a program or command that finds ``ns`` as ``Pyro4.locateNS()``
    does (``PYRO_NS_HOST``/``PYRO_NS_PORT``; broadcasts confined to loopback)."""
    return example_environment(ns.port)


def wait_for_name(ns: Pyro4NameServerPeer, name: str, present: bool = True) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while (name in ns.nameserver.list()) != present:
        assert time.monotonic() < deadline, f"{name} {'never came' if present else 'stayed'}"
        time.sleep(0.05)


CONTENTS = ["chair", "bike", "flashlight"]


def check_clients(started: list[Any], directory: Path, env: dict[str, str],
                  contents: list[str]) -> list[str]:
    """Run the guide's three clients, one after another, against the one Warehouse served;
    each prints the contents and stores an umbrella. The contents they end with."""
    for client in ("client_pyro4.py", "client_native.py", "client_threaded.py"):
        output = run_file(started, directory, client, env).finish()
        assert output == f"{contents!r}\nAlice stored the umbrella.\n", (client, output)
        contents = contents + ["umbrella"]
    return contents


# ------------------------------------------------------------------------------------------
# migrating.rst


@pytest.fixture
def nameserver() -> Iterator[Pyro4NameServerPeer]:
    with pyro4_nameserver() as ns:
        yield ns


def test_pyro4_server_and_the_three_clients(tmp_path, started, nameserver):
    """The "before" server (Pyro4's serveSimple with ns=True) serves the three clients, the
    Pyro4 one and both of ours, which see one Warehouse (a single instance)."""
    write(tmp_path, "warehouse.py")
    env = warehouse_env(nameserver)
    server = run_file(started, tmp_path, "server_pyro4.py", env)
    while server.readline() != "Pyro daemon running.":
        pass
    assert "example.warehouse" in nameserver.nameserver.list()
    assert check_clients(started, tmp_path, env, CONTENTS) == CONTENTS + ["umbrella"] * 3
    with Pyro4.Proxy(nameserver.nameserver.lookup("example.warehouse")) as warehouse:
        assert warehouse.take("Bob", "bike") == "Bob took the bike."


def test_serve_command_serves_the_unchanged_module(tmp_path, started, nameserver):
    write(tmp_path, "warehouse.py")
    env = warehouse_env(nameserver)
    serve = start(started, command(block("sh", SERVE_COMMAND).strip()), env, tmp_path)
    line = serve.readline()
    # "It prints warehouse:Warehouse = PYRO:example.warehouse@127.0.0.1:PORT"
    assert re.fullmatch(r"warehouse:Warehouse = PYRO:example\.warehouse@127\.0\.0\.1:\d+",
                        line), line
    assert str(nameserver.nameserver.lookup("example.warehouse")) == line.split(" = ")[1]
    check_clients(started, tmp_path, env, CONTENTS)
    serve.signal(signal.SIGTERM)
    assert serve.wait() == 0
    assert "example.warehouse" not in nameserver.nameserver.list()  # "takes them out again"


def test_twisted_server_program(tmp_path, started, nameserver):
    write(tmp_path, "warehouse.py")
    env = warehouse_env(nameserver)
    server = run_file(started, tmp_path, "server_twisted.py", env)
    line = server.readline()
    assert re.fullmatch(r"serving PYRO:example\.warehouse@127\.0\.0\.1:\d+", line), line
    assert str(nameserver.nameserver.lookup("example.warehouse")) == line.split(" ", 1)[1]
    check_clients(started, tmp_path, env, CONTENTS)
    # "registers it again whenever the name server comes back without it" (within the
    # default interval, 10 s)
    nameserver.nameserver.remove("example.warehouse")
    wait_for_name(nameserver, "example.warehouse")
    assert server.stop() == 0  # SIGTERM: drained, and the name removed
    assert "example.warehouse" not in nameserver.nameserver.list()
    assert "Traceback" not in server.stderr, server.stderr
    # the graceful-shutdown line deployment.rst shows is this program's
    assert DRAIN in python_file("server_twisted.py")
    assert block("literal", DRAIN).strip() == DRAIN


def test_ns_command(tmp_path, started):
    port = free_port()
    line = substitute(block("sh", NS_COMMAND).strip(), "-p 9090", f"-p {port}")
    ns = start(started, command(line), command_environment(), tmp_path)
    uri = f"PYRO:Pyro.NameServer@127.0.0.1:{port}"
    assert ns.read_stdout_until("URI = ") == f"URI = {uri}"
    with Pyro4.locateNS("127.0.0.1", port) as proxy:
        proxy.register("example.kept", "PYRO:thing@127.0.0.1:1111")
    ns.signal(signal.SIGTERM)
    assert ns.wait() == 0
    with sqlite3.connect(tmp_path / "names.sqlite") as db:  # Pyro4's SqlStorage file
        names = [row[0] for row in db.execute("SELECT name FROM pyro_names")]
    assert sorted(names) == ["Pyro.NameServer", "example.kept"]


# ------------------------------------------------------------------------------------------
# deployment.rst


def test_synopsis_names_every_option():
    """The two usage lines name exactly the options of each command's parser."""
    synopsis = block("text", SYNOPSIS)
    parser = build_parser("twisted-pyro")
    subparsers = next(action for action in parser._actions
                      if action.__class__.__name__ == "_SubParsersAction")
    for name, text in zip(("serve", "ns"), synopsis.split("twisted-pyro ")[1:], strict=True):
        assert text.startswith(name + " ")
        shown = set(re.findall(r"(?<![\w-])(-{1,2}[a-z][\w-]*)", text))
        options = {option for action in subparsers.choices[name]._actions
                   for option in action.option_strings} - {"-h", "--help"}
        # each option by one of its names: --verbose is shown as -v, --host as -n...
        missing = [action.option_strings for action in subparsers.choices[name]._actions
                   if action.option_strings and action.option_strings[0] != "-h"
                   and not shown & set(action.option_strings)]
        assert missing == [], (name, missing)
        assert shown <= options, (name, shown - options)


def test_mistakes_are_printed_as_shown(tmp_path):
    write(tmp_path, "warehouse.py")
    expected = block("literal", MISTAKES).splitlines()
    env = command_environment()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_to_end(TWISTED_PYRO + ["serve", "warehouse:Warehouse", "--listen",
                                            f"tcp:{port}:interface=127.0.0.1"], env, tmp_path)
    assert (result.returncode, result.stderr) == (
        1, substitute(expected[0], "port 9090", f"port {port}") + "\n")
    result = run_to_end(TWISTED_PYRO + ["serve", "warehouse:Warehuose"], env, tmp_path)
    assert (result.returncode, result.stderr) == (1, expected[1] + "\n")
    result = run_to_end(TWISTED_PYRO + ["ns", "-s", "sqlite:x"], env, tmp_path)
    assert (result.returncode, result.stderr) == (2, expected[2] + "\n")


def test_twistd_pyro_serve(tmp_path, started):
    write(tmp_path, "warehouse.py")
    port = free_port()
    line = substitute(block("sh", TWISTD_SERVE).strip(), "tcp:9090:", f"tcp:{port}:")
    argv = command(line)
    argv.insert(len(TWISTD), "--pidfile=")  # no pid file, so that tests may run side by side
    twistd = start(started, argv, command_environment(), tmp_path)
    uri = f"PYRO:example.warehouse@127.0.0.1:{port}"
    twistd.read_stdout_until(f"serving warehouse:Warehouse=example.warehouse as {uri}")
    with Pyro4.Proxy(uri) as warehouse:
        assert warehouse.list_contents() == CONTENTS
    twistd.signal(signal.SIGTERM)
    assert twistd.wait() == -signal.SIGTERM  # twistd ends by the signal that stopped it


def test_twistd_pyro_ns_daemonized(tmp_path):
    """The daemonizing example: a pid file and a log file (here in a temporary directory)."""
    port = free_port()
    line = block("sh", TWISTD_NS).strip()
    line = substitute(line, "/run/pyro-ns.pid", str(tmp_path / "pyro-ns.pid"))
    line = substitute(line, "/var/log/pyro-ns.log", str(tmp_path / "pyro-ns.log"))
    line = substitute(line, "-n 0.0.0.0", f"-n 127.0.0.1 -p {port}")  # loopback only here
    result = run_to_end(command(line), command_environment(), tmp_path)
    assert result.returncode == 0, result.stderr  # twistd forked the daemon and returned
    pidfile = tmp_path / "pyro-ns.pid"
    deadline = time.monotonic() + STEP_TIMEOUT
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline, "no pid file"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        while True:
            try:
                with Pyro4.locateNS("127.0.0.1", port) as ns:
                    assert "Pyro.NameServer" in ns.list()
                break
            except Pyro4.errors.CommunicationError:
                assert time.monotonic() < deadline, "the daemon does not serve"
                time.sleep(0.1)
    finally:
        os.kill(pid, signal.SIGTERM)
    while pidfile.exists():  # twistd removes its pid file when it has stopped
        assert time.monotonic() < deadline + STEP_TIMEOUT, "the daemon did not stop"
        time.sleep(0.05)
    log = (tmp_path / "pyro-ns.log").read_text(encoding="utf-8")
    assert f"URI = PYRO:Pyro.NameServer@127.0.0.1:{port}" in log
    assert "Traceback" not in log, log


def test_tac_files_under_twistd(tmp_path, started):
    """nameserver.tac, then warehouse.tac kept registered in it; stopping the server takes
    the name out; the name server keeps its names in names.sqlite."""
    write(tmp_path, "warehouse.py")
    ns_port, port = free_port(), free_port()
    write(tmp_path, "nameserver.tac",
          substitute(python_file("nameserver.tac"), "tcp:9090:", f"tcp:{ns_port}:"))
    code = substitute(python_file("warehouse.tac"), "9100", str(port))
    write(tmp_path, "warehouse.tac", substitute(code, "ns_port=9090", f"ns_port={ns_port}"))
    # twistd as installed: a script, whose directory (not the current one) is on sys.path;
    # the guide's "PYTHONPATH=. twistd -ny warehouse.tac" puts the servant module there
    (tmp_path / "bin").mkdir()
    twistd = [sys.executable, str(tmp_path / "bin" / "twistd")]
    (tmp_path / "bin" / "twistd").write_text(
        "import sys\nfrom twisted.scripts.twistd import run\nsys.argv[0] = 'twistd'\nrun()\n")
    assert "PYTHONPATH=. twistd -ny warehouse.tac" in (DOCS / "deployment.rst").read_text()
    env = command_environment()
    ns = start(started, twistd + ["-ny", "nameserver.tac", "--pidfile="], env, tmp_path)
    ns.read_stdout_until(f"name server PYRO:Pyro.NameServer@127.0.0.1:{ns_port} serving")
    env["PYTHONPATH"] = os.pathsep.join([".", env["PYTHONPATH"]])
    server = start(started, twistd + ["-ny", "warehouse.tac", "--pidfile="], env, tmp_path)
    server.read_stdout_until("listening on")
    uri = f"PYRO:example.warehouse@127.0.0.1:{port}"
    deadline = time.monotonic() + STEP_TIMEOUT
    with Pyro4.locateNS("127.0.0.1", ns_port) as names:
        while "example.warehouse" not in names.list():
            assert time.monotonic() < deadline, "never registered"
            time.sleep(0.05)
        assert str(names.lookup("example.warehouse")) == uri
        with Pyro4.Proxy(f"PYRONAME:example.warehouse@127.0.0.1:{ns_port}") as warehouse:
            assert warehouse.store("Carol", "kite") == "Carol stored the kite."
        server.signal(signal.SIGTERM)
        assert server.wait() == -signal.SIGTERM
        assert "example.warehouse" not in names.list()  # KeepRegistered.stopService
        names.register("example.other", "PYRO:thing@127.0.0.1:1111")
    ns.signal(signal.SIGTERM)
    assert ns.wait() == -signal.SIGTERM
    with sqlite3.connect(tmp_path / "names.sqlite") as db:
        assert "example.other" in [row[0] for row in db.execute("SELECT name FROM pyro_names")]
    for running in (ns, server):
        assert not any("Traceback" in line for line in running.stdout + running.stderr)


def test_logging_example(tmp_path):
    code = python_file("logging_example.py")
    script = write(tmp_path, "logging_example.py", code)
    result = run_to_end([sys.executable, str(script)], command_environment(), tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [log_text(line) for line in result.stderr.splitlines()]
    # "logs "listening on 127.0.0.1:PORT""; nothing of Twisted's below warn
    assert any(re.fullmatch(r"\[pyro\.service#info\] listening on 127\.0\.0\.1:\d+", line)
               for line in lines), lines
    assert all(line.startswith("[pyro") for line in lines), lines


def unit_command(unit: str) -> str:
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return line.split("=", 1)[1]


def test_systemd_serve_unit(tmp_path, started, nameserver):
    """The service unit's command, in its working directory, with its environment but the
    name server on loopback, listening on loopback: its objects are named (in the URI, by
    --nathost) as clients reach them."""
    write(tmp_path, "warehouse.py")
    unit = block("ini", UNIT_SERVE)
    assert "Environment=PYRO_NS_HOST=ns.example.org" in unit
    port = free_port()
    line = substitute(unit_command(unit), "tcp:9100:interface=0.0.0.0",
                      f"tcp:{port}:interface=127.0.0.1")
    serve = start(started, command(line), warehouse_env(nameserver), tmp_path)
    uri = f"PYRO:example.warehouse@app.example.org:{port}"
    assert serve.readline() == f"warehouse:Warehouse = {uri}"
    assert str(nameserver.nameserver.lookup("example.warehouse")) == uri
    with Pyro4.Proxy(f"PYRO:example.warehouse@127.0.0.1:{port}") as warehouse:
        assert warehouse.list_contents() == CONTENTS
    serve.signal(signal.SIGTERM)  # systemd's stop
    assert serve.wait() == 0


def test_systemd_socket_activated_name_server(tmp_path, started):
    socket_unit = block("ini", UNIT_SOCKET)
    name = re.search(r"^FileDescriptorName=(\S+)$", socket_unit, re.M).group(1)
    assert re.search(r"^ListenStream=0\.0\.0\.0:9090$", socket_unit, re.M)
    line = unit_command(block("ini", UNIT_NS))
    assert f"name={name}" in line
    with socket.socket() as listening:  # what systemd opens (here on loopback, a free port)
        listening.bind(("127.0.0.1", 0))
        listening.listen(50)
        port = listening.getsockname()[1]
        ns = start(started, socket_activated(listening, name, command(line)),
                   command_environment(), tmp_path, pass_fds=(listening.fileno(),))
    assert ns.read_stdout_until("URI = ") == f"URI = PYRO:Pyro.NameServer@127.0.0.1:{port}"
    with Pyro4.locateNS("127.0.0.1", port) as names:
        assert "Pyro.NameServer" in names.list()
    ns.signal(signal.SIGTERM)
    assert ns.wait() == 0


def test_plugin_cache_refresh_command(tmp_path):
    line = block("literal", PLUGIN_CACHE).strip()
    assert line.startswith('python3 -c "') and line.endswith('"')
    result = subprocess.run([sys.executable, "-c", line[len('python3 -c "'):-1]],
                            env=command_environment(), cwd=tmp_path, capture_output=True,
                            text=True, timeout=STEP_TIMEOUT, check=False)
    assert (result.returncode, result.stderr) == (0, "")


#: Modules the API reference leaves out on purpose: the command entry point, the demo
#: program, the package itself (its pages are per face) and the import shim of
#: ``pyro.dispatch.in_reactor``.
UNDOCUMENTED = {"pyro", "pyro.__main__", "pyro.demo", "pyro.dispatch"}


def test_api_reference_names_every_module():
    """A new module gets a page entry (Sphinx would not complain about one it never sees)."""
    package = ROOT / "pyro"
    modules = {".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for path in package.rglob("*.py")}
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$",
                                "".join(page.read_text(encoding="utf-8")
                                        for page in (ROOT / "docs" / "api").glob("*.rst")),
                                re.MULTILINE))
    assert sorted(modules - documented - UNDOCUMENTED) == []
    assert sorted(documented - modules) == []
