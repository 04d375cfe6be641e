"""The commands' options (pyro.cli.options), SPECs (pyro.cli.specs), the log filter
(pyro.cli.logs) and the program's name: parsed in this process, nothing started."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from twisted.logger import Logger, LogPublisher

from pyro import __version__
from pyro.cli import main, program_name
from pyro.cli.logs import log_observer
from pyro.cli.options import (
    DEFAULT_LISTEN,
    NameServerConfig,
    ServeConfig,
    UsageError,
    parse,
    parse_command,
)
from pyro.cli.specs import ObjectSpec, SpecError, load, parse_spec

from ..support.config import config_changed


def serve(*argv: str, environ: dict[str, str] | None = None) -> ServeConfig:
    config = parse(["serve", *argv], "twisted-pyro", environ or {})
    assert isinstance(config, ServeConfig)
    return config


def ns(*argv: str, environ: dict[str, str] | None = None) -> NameServerConfig:
    config = parse(["ns", *argv], "twisted-pyro", environ or {})
    assert isinstance(config, NameServerConfig)
    return config


def usage_error(*argv: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(UsageError) as raised:
        parse(list(argv), "twisted-pyro", environ or {})
    return "%s: %s" % (raised.value.prog, raised.value)


# -- serve -----------------------------------------------------------------------------------

def test_serve_defaults():
    assert serve("mod:thing") == ServeConfig(
        prog="twisted-pyro serve", specs=(ObjectSpec("mod", "thing"),),
        listen=("tcp:0:interface=127.0.0.1:backlog=4096",), ns=False, ns_host=None,
        ns_port=None, threads=None, hmac_key=None, grace=10.0, verbosity=0)
    assert DEFAULT_LISTEN == "tcp:0:interface=127.0.0.1:backlog=4096"


def test_serve_everything():
    config = serve("mod:thing=example.thing", "pkg.mod:Class.inner", "--listen", "tcp:9090",
                   "--listen", "unix:/run/p.sock", "--listen",
                   "tcp6:9091:interface=\\:\\:1:backlog=10", "--ns",
                   "--ns-host", "ns.example.org", "--ns-port", "9999", "--threads", "8",
                   "-k", "secret", "--grace", "2.5", "--verbose", "--nathost", "h.example.org",
                   "--natport", "4711")
    assert config.specs == (ObjectSpec("mod", "thing", "example.thing"),
                            ObjectSpec("pkg.mod", "Class.inner"))
    # backlog added where the endpoint type takes one and does not say
    assert config.listen == ("tcp:9090:backlog=4096", "unix:/run/p.sock:backlog=4096",
                             "tcp6:9091:interface=\\:\\:1:backlog=10")
    assert (config.ns, config.ns_host, config.ns_port) == (True, "ns.example.org", 9999)
    assert (config.threads, config.hmac_key, config.grace, config.verbosity) == (
        8, b"secret", 2.5, 1)
    assert (config.nathost, config.natport) == ("h.example.org", 4711)
    assert serve("m:a", "-q").verbosity == -1


def test_the_hmac_key_may_come_from_the_environment():
    assert serve("m:a", environ={"PYRO_HMAC_KEY": "envkey"}).hmac_key == b"envkey"
    assert serve("m:a", environ={"PYRO_HMAC_KEY": ""}).hmac_key is None
    assert usage_error("serve", "m:a", "-k", "x", environ={"PYRO_HMAC_KEY": "y"}) == (
        "twisted-pyro serve: don't use -k and PYRO_HMAC_KEY at the same time")


@pytest.mark.parametrize("argv, message", [
    (["serve", "m:a", "--ns-port", "1"], "--ns-host, --ns-port and --ns-interval need --ns"),
    (["serve", "m:a", "--natport", "1"], "--natport needs --nathost"),
    (["serve", "m:a", "-v", "-q"], "argument -q/--quiet: not allowed with argument -v/--verbose"),
    (["serve", "m:a", "--grace", "-1"], "argument --grace: invalid number of seconds value: '-1'"),
    (["serve", "m:a", "--grace", "nan"], "argument --grace: invalid number of seconds value: 'nan'"),
    (["serve", "m:a", "--listen", "ssl:443:privateKey=/nonexistent.pem"],
     "endpoint 'ssl:443:privateKey=/nonexistent.pem:backlog=4096' does not parse: [Errno 2] "
     "No such file or directory: '/nonexistent.pem'"),
    (["serve", "m:a=", "--ns"], "'m:a=' is not MODULE:ATTRIBUTE or MODULE:ATTRIBUTE=NAME"),
    (["serve", "m:1a"], "'m:1a' is not MODULE:ATTRIBUTE or MODULE:ATTRIBUTE=NAME"),
    (["nosuchcommand"], "argument COMMAND: invalid choice: 'nosuchcommand' (choose from "
                        "'demo', 'serve', 'ns')"),
])
def test_serve_mistakes(argv, message):
    assert usage_error(*argv) == "twisted-pyro%s: %s" % (
        " serve" if argv[0] == "serve" else "", message)


# -- ns --------------------------------------------------------------------------------------

def test_ns_defaults_are_pyro4s():
    with config_changed(HOST="localhost", NS_PORT=9090, NS_AUTOCLEAN=0.0):
        assert ns() == NameServerConfig(
            prog="twisted-pyro ns", listen="tcp:9090:interface=localhost:backlog=4096",
            host="localhost", broadcast=True, bchost=None, bcport=None, nathost=None,
            natport=None, storage="memory", autoclean=0.0, hmac_key=None, grace=10.0,
            verbosity=0)
    with config_changed(HOST="0.0.0.0", NS_PORT=1234, NS_AUTOCLEAN=20.0):
        config = ns()
    assert (config.listen, config.autoclean) == ("tcp:1234:interface=0.0.0.0:backlog=4096", 20.0)


def test_ns_options():
    config = ns("-n", "::1", "-p", "0", "-s", "sql:/var/lib/ns.db", "--bchost", "10.0.0.1",
                "--bcport", "0", "-x", "--nathost", "ns.example.org", "--natport", "4711",
                "-k", "key", "--autoclean", "30", "--grace", "1")
    assert config.listen == "tcp6:0:interface=\\:\\:1:backlog=4096"
    assert (config.host, config.broadcast, config.bchost, config.bcport) == ("::1", False,
                                                                            "10.0.0.1", 0)
    assert (config.nathost, config.natport, config.storage) == ("ns.example.org", 4711,
                                                               "sql:/var/lib/ns.db")
    assert (config.hmac_key, config.autoclean, config.grace) == (b"key", 30.0, 1.0)
    unix = ns("-u", "/run/pyro:ns.sock")
    assert (unix.listen, unix.host) == ("unix:/run/pyro\\:ns.sock:backlog=4096", None)
    listen = ns("--listen", "tcp6:0", environ={"PYRO_HMAC_KEY": "k"})
    assert (listen.listen, listen.host, listen.hmac_key) == ("tcp6:0:backlog=4096", None, b"k")


# -- SPECs -----------------------------------------------------------------------------------

def test_specs():
    assert parse_spec("a.b:c.d=name.with:colon") == ObjectSpec("a.b", "c.d", "name.with:colon")
    assert str(parse_spec("a:b=n")) == "a:b=n"
    assert parse_spec("a:b").target == "a:b"
    for bad in ("a", "a:", ":b", "a:b=", "a-b:c", "a:b:c"):
        with pytest.raises(SpecError):
            parse_spec(bad)


def test_loading_specs(tmp_path: Path, monkeypatch):
    (tmp_path / "loadme.py").write_text("class Outer:\n    class Inner:\n        pass\n"
                                        "value = 42\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load(parse_spec("loadme:value=x")).value == 42
    inner = load(parse_spec("loadme:Outer.Inner")).value
    assert inner.__qualname__ == "Outer.Inner"
    with pytest.raises(SpecError) as raised:
        load(parse_spec("loadme:Outer.Missing"))
    assert str(raised.value) == ("module 'loadme' has no attribute 'Outer.Missing' "
                                 "(loadme:Outer.Missing)")
    (tmp_path / "needsdep.py").write_text("import nosuchdependency\n", encoding="utf-8")
    with pytest.raises(SpecError) as raised:
        load(parse_spec("needsdep:x"))
    assert str(raised.value) == ("cannot import module 'needsdep' (needsdep:x): No module "
                                 "named 'nosuchdependency'")


# -- the program's name, --version -----------------------------------------------------------

def test_the_program_names_itself_after_its_script():
    assert program_name("/usr/local/bin/twisted-pyro") == "twisted-pyro"
    assert program_name("/src/pyro/__main__.py") == "python -m pyro"
    assert program_name("-c") == "python -m pyro"


def test_usage_mistakes_exit_2_with_one_line(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/twisted-pyro", "serve"])
    assert main(["serve"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "", "twisted-pyro serve: error: the following arguments are required: SPEC\n")


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"], prog="twisted-pyro")
    assert (exited.value.code, capsys.readouterr().out) == (0, "twisted-pyro %s\n" % __version__)


def test_the_reactor_to_run_on():
    assert (serve("m:a").reactor, ns().reactor) == ("default", "default")
    assert serve("m:a", "--reactor", "asyncio").reactor == "asyncio"
    assert ns("--reactor", "uvloop").reactor == "uvloop"
    assert usage_error("serve", "m:a", "--reactor", "asyncoi") == (
        "twisted-pyro serve: argument --reactor: invalid choice: 'asyncoi' (choose from "
        "'default', 'asyncio', 'uvloop')")
    # twistd chooses its reactor itself (twistd --reactor=asyncio pyro-serve ...), before it
    # reads a plugin's options: the plugins take no --reactor
    with pytest.raises(UsageError) as raised:
        parse_command("serve", ["m:a", "--reactor", "asyncio"], "twistd pyro-serve", {})
    assert str(raised.value) == "unrecognized arguments: --reactor asyncio"


def test_twistd_parses_with_the_same_parser():
    assert parse_command("serve", ["m:a", "--listen", "tcp:9090"], "twistd pyro-serve",
                         {}) == ServeConfig(prog="twistd pyro-serve",
                                            specs=(ObjectSpec("m", "a"),),
                                            listen=("tcp:9090:backlog=4096",))
    with pytest.raises(UsageError) as raised:
        parse_command("ns", ["-s", "nope"], "twistd pyro-ns", {})
    assert str(raised.value) == "invalid storage URL 'nope': use memory, dbm:PATH or sql:PATH"


# -- the log ---------------------------------------------------------------------------------

@pytest.mark.parametrize("verbosity, shown", [
    (0, ["pyro info", "pyro warn", "twisted warn", "client warn"]),
    (1, ["pyro debug", "pyro info", "pyro warn", "twisted debug", "twisted info",
         "twisted warn", "client debug", "client info", "client warn"]),
    (-1, ["pyro warn", "twisted warn", "client warn"]),
])
def test_the_log_shows_what_the_verbosity_asks_for(verbosity, shown):
    stream = io.StringIO()
    publisher = LogPublisher(log_observer(verbosity, stream))
    for namespace, name in (("pyro.service", "pyro"), ("twisted.internet", "twisted"),
                            ("pyro.client.proxy", "client")):
        log = Logger(namespace=namespace, observer=publisher)
        log.debug(name + " debug")
        log.info(name + " info")
        log.warn(name + " warn")
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == shown


def test_specs_are_imported_from_the_current_directory(tmp_path: Path, monkeypatch):
    """As with ``python -m``, also when run by a script such as ``twistd`` (whose sys.path
    starts with its own directory, not the current one)."""
    (tmp_path / "herehere.py").write_text("value = 'found'\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert load(parse_spec("herehere:value")).value == "found"
    assert sys.path[0] == str(tmp_path)


# -- mistakes in one line --------------------------------------------------------------------

def test_listening_mistakes_are_described():
    import errno

    from twisted.internet.error import CannotListenError

    from pyro.cli.errors import describe
    from pyro.service import BroadcastListenError

    def listen_error(interface, port, code, cls=CannotListenError):
        return describe(cls(interface, port, OSError(code, "why")))

    assert listen_error("127.0.0.1", 9090, errno.EADDRINUSE) == (
        "port 9090 on 127.0.0.1 is in use", True)
    assert listen_error("", 80, errno.EACCES) == (
        "no permission to listen on port 80 on all interfaces", True)
    assert listen_error(None, "/run/x.sock", errno.EADDRINUSE) == (
        "UNIX socket /run/x.sock is in use", True)
    assert listen_error("192.0.2.1", 9090, errno.EADDRNOTAVAIL) == (
        "cannot listen on port 9090 on 192.0.2.1: no such address here", True)
    assert listen_error("127.0.0.1", 9091, errno.EADDRINUSE, BroadcastListenError) == (
        "UDP port 9091 on 127.0.0.1 (name server broadcasts) is in use", True)
    assert describe(KeyError("x")) == (
        "unexpected KeyError: 'x' (--verbose shows the traceback)", False)


# -- --reactor in this process ---------------------------------------------------------------

def test_a_reactor_installed_already_is_kept_only_when_it_is_the_one_asked_for():
    """(An in-process caller of pyro.cli.main: this test session has its reactor already,
    epoll or, with TWISTED_PYRO_TEST_REACTOR=asyncio, the asyncio one.)"""
    from twisted.internet import reactor

    from pyro._reactor import asyncio_loop
    from pyro.cli.reactors import ReactorUnavailable, install

    installed = "%s.%s" % (type(reactor).__module__, type(reactor).__name__)
    install("default")  # whatever is installed
    refused = ["uvloop"]
    if asyncio_loop(reactor) is None:
        refused.append("asyncio")
    else:
        install("asyncio")  # kept
    for name in refused:
        with pytest.raises(ReactorUnavailable) as raised:
            install(name)
        assert str(raised.value) == "cannot run on the %s reactor: %s is installed already" % (
            name, installed)
    with pytest.raises(ReactorUnavailable) as raised:
        install("gtk")
    assert str(raised.value) == "no reactor called 'gtk' (choose from default, asyncio, uvloop)"
