#!/usr/bin/env python
"""Side-by-side benchmark: our Twisted Pyro4 server against Pyro4's own daemons.

Usage::

    python benchmarks/bench_server.py [--quick] [--duration S] [--only a,b,c]
                                      [--rounds N] [--json PATH] [--profile PATH]
                                      [--reactors epoll,asyncio,uvloop]

Three servers, each in its own process (``multiprocessing`` with the *spawn* start method),
bound to 127.0.0.1 port 0, reporting their URI back to the parent:

* ``ours``      -- ``pyro.protocol.Pyro4ProtocolFactory`` on Twisted's epoll reactor,
                   listening with ``backlog=pyro.protocol.DEFAULT_BACKLOG``;
* ``multiplex`` -- ``Pyro4.Daemon`` with ``SERVERTYPE="multiplex"`` (one thread, selectors);
* ``thread``    -- ``Pyro4.Daemon`` with ``SERVERTYPE="thread"`` (one worker thread per
                   connection, ``THREADPOOL_SIZE`` raised so the bursts below fit);
* with ``--reactors``: ``ours-asyncio`` and ``ours-uvloop``, the same factory on Twisted's
                   asyncio reactor (over asyncio's own loop, or uvloop's), measured in (a) and
                   (b) beside the others; (b) then also bursts the coroutine servants, which
                   run as asyncio tasks there: ``aslow`` (awaits a Deferred) everywhere and
                   ``asleep`` (awaits ``asyncio.sleep``) on the asyncio reactors. A second
                   table compares the reactors.

Every section starts fresh server processes, and the same workload is applied to every server.

(a) small-call throughput: ``add(1, 2)`` from 1, 4 and 16 client *processes*, each running a
    plain blocking ``Pyro4.Proxy`` in a loop for ``--duration`` seconds; calls/s are summed.
    Each (server, clients) cell is measured ``--rounds`` times (server order rotated per round)
    and the median is reported.
(b) a burst of 1,000 concurrent calls to a servant that waits 0.5 s (a ``task.deferLater``
    Deferred in ours, ``time.sleep(0.5)`` in Pyro4's). One client process opens all the
    connections with non-blocking sockets and speaks the wire protocol through ``pyro.wire``
    (CONNECT with META_ON_CONNECT as a real proxy sends it, then INVOKE once CONNECTOK came).
    Pyro4's multiplex daemon serves one call at a time, so it gets a capped burst.
(c) 10,000 idle connections (each handshaken with a real CONNECT) held open while fresh
    ``Pyro4.Proxy`` clients are timed (first call = connect + handshake + call, then a second
    call); server memory per idle connection from VmRSS before/after. The thread daemon
    needs one OS thread per connection, so it is measured at its pool size instead.

(5) Pyro5 clients (section ``5``): ours against Pyro5's own daemons (``Pyro5.config.SERVERTYPE``
    "multiplex" and "thread", serving the same servant): small calls from 1 client process (a
    plain ``Pyro5.api.Proxy``), capacity (raw connections), the 1,000-slow-call burst and
    10,000 idle connections, the raw clients speaking Pyro5 through ``pyro.wire.pyro5``.

Nothing here talks to anything but 127.0.0.1; every loop is bounded in count and time; all
child processes are stopped at the end, also on errors (and they exit by themselves when the
parent disappears).
"""

from __future__ import annotations

import argparse
import collections
import errno
import json
import multiprocessing
import os
import platform
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import Pyro4  # noqa: E402
import Pyro4.util  # noqa: E402

from pyro import wire  # noqa: E402 -- sans-IO; imports no Twisted
from pyro.wire import framing5  # noqa: E402
from pyro.wire.pyro5 import PYRO5  # noqa: E402

OBJECT_ID = "bench"
SERVERS = ("ours", "multiplex", "thread")
LABELS = {"ours": "ours (Twisted epoll)", "multiplex": "Pyro4 multiplex", "thread": "Pyro4 thread",
          "ours-asyncio": "ours (asyncio reactor)", "ours-uvloop": "ours (asyncio on uvloop)"}
#: The reactors ours can run on (``--reactors``): epoll is "ours", the others "ours-NAME".
REACTORS = ("epoll", "asyncio", "uvloop")
#: section 5: Pyro5 clients, against ours and Pyro5's own daemons
SERVERS5 = ("ours", "multiplex5", "thread5")
LABELS.update({"multiplex5": "Pyro5 multiplex", "thread5": "Pyro5 thread"})
PYRO4_BACKLOG_SOURCE = "Pyro4.socketutil.createSocket: sock.listen(100)"

MAX_SERVER_LIFETIME = 900.0  # a server process exits by itself after this many seconds
MAX_WORKER_IDLE = 600.0  # a client process exits when it hears nothing for this long
REPLY_TIMEOUT = 120.0  # the parent gives up on any child reply after this long


# --------------------------------------------------------------------------------------------
# helpers shared by all processes


def raise_nofile() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit (10,000 sockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB, from /proc/<pid>/status."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def git_state() -> str:
    """The commit measured, and whether the work tree had uncommitted changes (read-only)."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "pyro"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "?"
    changed = [line for line in dirty if line.strip()]
    return "%s%s" % (head or "?", " + uncommitted changes in %d file(s) under pyro/" %
                     len(changed) if changed else "")


def listen_backlog(port: int) -> int | None:
    """The listen backlog the kernel reports for 127.0.0.1:port (``ss``: Send-Q of LISTEN)."""
    try:
        out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "LISTEN":
            return int(fields[2])
    return None


def listen_overflows() -> int | None:
    """The kernel's TcpExt ListenOverflows counter (machine-wide; SYNs dropped on full queues)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            if "ListenOverflows" in table:
                return int(table["ListenOverflows"])
    return None


def uri_port(uri: str) -> int:
    return int(uri.rsplit(":", 1)[1])


# --------------------------------------------------------------------------------------------
# servants (the same two methods for every server)


@Pyro4.expose
class PyroBench:
    """Servant for Pyro4's daemons: ``slow`` blocks its thread, as Pyro4 servants do."""

    def add(self, a: int, b: int) -> int:
        return a + b

    def echo(self, value: Any) -> Any:
        return value

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    aslow = asleep = slow  # (ours has ``async def``s of those names; Pyro4's cannot await)


@Pyro4.expose
class TwistedBench:
    """Servant for ours: ``slow`` returns a Deferred that fires later (no thread)."""

    def add(self, a: int, b: int) -> int:
        return a + b

    def echo(self, value: Any) -> Any:
        return value

    def slow(self, seconds: float) -> Any:
        from twisted.internet import reactor, task

        return task.deferLater(reactor, seconds, lambda: seconds)

    async def aslow(self, seconds: float) -> float:
        """``slow`` as a coroutine: it awaits the reactor's clock."""
        from twisted.internet import reactor, task

        await task.deferLater(reactor, seconds, lambda: None)
        return seconds

    async def asleep(self, seconds: float) -> float:
        """``slow`` as an asyncio coroutine (only on the asyncio reactor: an asyncio task)."""
        import asyncio

        await asyncio.sleep(seconds)
        return seconds


# --------------------------------------------------------------------------------------------
# server processes


def install_reactor(name: str) -> Any:
    """Install Twisted's ``name`` reactor (one of :data:`REACTORS`) in this process."""
    if name == "epoll":
        from twisted.internet import epollreactor

        epollreactor.install()
    else:
        import asyncio

        from twisted.internet import asyncioreactor

        if name == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        asyncioreactor.install(loop)
    from twisted.internet import reactor

    return reactor


def server_reactor(kind: str) -> str | None:
    """The reactor of one of our server kinds (``ours``, ``ours-asyncio``...); None: Pyro4's."""
    if kind == "ours":
        return "epoll"
    if kind.startswith("ours-"):
        return kind[len("ours-"):]
    return None


def server_main(kind: str, conn: Any, thread_pool_size: int, profile_path: str | None) -> None:
    raise_nofile()
    reactor_name = server_reactor(kind)
    if reactor_name is not None:
        _serve_ours(conn, profile_path, reactor_name)
    elif kind.endswith("5"):
        _serve_pyro5(kind[:-1], conn, thread_pool_size)
    else:
        _serve_pyro4(kind, conn, thread_pool_size)


def _watch_parent(conn: Any, on_stop: Any) -> None:
    """Stop on the parent's word, when the parent goes away, or after MAX_SERVER_LIFETIME."""
    def watch() -> None:
        try:
            if conn.poll(MAX_SERVER_LIFETIME):
                conn.recv()
        except (EOFError, OSError):
            pass
        try:
            on_stop()
        finally:
            time.sleep(10.0)  # a graceful stop gets this long, then the process is ended
            os._exit(0)

    threading.Thread(target=watch, name="bench-watchdog", daemon=True).start()


def _serve_ours(conn: Any, profile_path: str | None, reactor_name: str = "epoll") -> None:
    reactor: Any = install_reactor(reactor_name)

    import pyro.protocol

    factory = pyro.protocol.Pyro4ProtocolFactory()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1",
                             backlog=pyro.protocol.DEFAULT_BACKLOG)
    factory.setAddress("127.0.0.1", port.getHost().port)
    uri = factory.register(TwistedBench(), OBJECT_ID)
    conn.send(("uri", str(uri), os.getpid(),
               "%s.%s" % (type(reactor).__module__, type(reactor).__name__)))
    _watch_parent(conn, lambda: reactor.callFromThread(reactor.stop))
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        reactor.run(installSignalHandlers=False)
        profiler.disable()
        profiler.dump_stats(profile_path)
    else:
        reactor.run(installSignalHandlers=False)
    os._exit(0)


def _serve_pyro4(kind: str, conn: Any, thread_pool_size: int) -> None:
    Pyro4.config.SERVERTYPE = kind
    Pyro4.config.THREADPOOL_SIZE = thread_pool_size
    daemon = Pyro4.Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(PyroBench(), OBJECT_ID)
    conn.send(("uri", str(uri), os.getpid(), type(daemon.transportServer).__name__))
    _watch_parent(conn, lambda: os._exit(0))
    daemon.requestLoop()
    os._exit(0)


def _serve_pyro5(kind: str, conn: Any, thread_pool_size: int) -> None:
    import Pyro5.api

    Pyro5.config.SERVERTYPE = kind
    Pyro5.config.THREADPOOL_SIZE = thread_pool_size
    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(PyroBench(), OBJECT_ID)  # (Pyro4's @expose marks it for Pyro5 too)
    conn.send(("uri", str(uri), os.getpid(), type(daemon.transportServer).__name__))
    _watch_parent(conn, lambda: os._exit(0))
    daemon.requestLoop()
    os._exit(0)


def _proxy(uri: str, gen: int = 4) -> Any:
    """A plain blocking proxy of generation ``gen`` (4: ``Pyro4.Proxy``, 5: Pyro5's)."""
    if gen == 5:
        import Pyro5.api

        proxy = Pyro5.api.Proxy(uri)
    else:
        proxy = Pyro4.Proxy(uri)
    proxy._pyroTimeout = 30
    return proxy


class ServerProc:
    """A server subprocess: its URI, pid and a way to stop it."""

    def __init__(self, ctx: Any, kind: str, thread_pool_size: int,
                 profile_path: str | None = None):
        self.kind = kind
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=server_main, name="bench-server-" + kind,
                                args=(kind, child_conn, thread_pool_size, profile_path),
                                daemon=True)
        self.proc.start()
        child_conn.close()
        self.uri = ""
        self.pid = 0
        self.impl = ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not self.conn.poll(timeout):
            raise RuntimeError("server %s did not report its URI in %.0f s" % (self.kind, timeout))
        _, self.uri, self.pid, self.impl = self.conn.recv()

    def stop(self, grace: float = 15.0) -> None:
        try:
            self.conn.send("stop")
        except (OSError, ValueError):
            pass
        self.proc.join(grace)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(3.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(3.0)
        self.conn.close()


def start_servers(ctx: Any, kinds: Any, thread_pool_size: int, registry: list[ServerProc],
                  profile_path: str | None = None) -> dict[str, ServerProc]:
    servers = {}
    for kind in kinds:
        server = ServerProc(ctx, kind, thread_pool_size, profile_path if kind == "ours" else None)
        registry.append(server)
        servers[kind] = server
    for server in servers.values():
        server.wait_ready()
    for server in servers.values():  # everyone answers a real proxy before measuring
        with _proxy(server.uri, 5 if server.kind.endswith("5") else 4) as proxy:
            assert proxy.add(1, 2) == 3
    return servers


def stop_servers(servers: dict[str, ServerProc], registry: list[ServerProc]) -> None:
    for server in servers.values():
        server.stop()
        if server in registry:
            registry.remove(server)


# --------------------------------------------------------------------------------------------
# client processes (one pool, reused by all sections)


def worker_main(conn: Any) -> None:
    raise_nofile()
    while True:
        try:
            if not conn.poll(MAX_WORKER_IDLE):
                return
            command = conn.recv()
        except (EOFError, OSError):
            return
        name = command[0]
        try:
            if name == "quit":
                return
            if name == "throughput":
                _worker_throughput(conn, *command[1:])
            elif name == "burst":
                conn.send(("result", raw_clients(*command[1:])))
            elif name == "hold":
                _worker_hold(conn, *command[1:])
            elif name == "capacity":
                conn.send(("result", raw_capacity(*command[1:])))
            else:
                conn.send(("error", "unknown command %r" % (name,)))
        except Exception:
            try:
                conn.send(("error", traceback.format_exc()))
            except OSError:
                return


def _worker_throughput(conn: Any, uri: str, duration: float, warmup: int,
                       gen: int = 4) -> None:
    proxy = _proxy(uri, gen)
    try:
        proxy._pyroBind()
        for _ in range(warmup):
            assert proxy.add(1, 2) == 3
        conn.send(("ready",))
        if not conn.poll(REPLY_TIMEOUT) or conn.recv() != "go":
            raise RuntimeError("no go")
        calls, errors = 0, 0
        add = proxy.add
        start = time.perf_counter()
        deadline = start + duration
        now = start
        while now < deadline and calls < 100_000_000:
            if add(1, 2) != 3:
                errors += 1
            calls += 1
            now = time.perf_counter()
        conn.send(("result", calls, now - start, errors))
    finally:
        proxy._pyroRelease()


def _worker_hold(conn: Any, host: str, port: int, count: int, max_pending: int,
                 timeout: float, gen: int = 4) -> None:
    held: list[socket.socket] = []
    stats = raw_clients(host, port, count, None, (), max_pending, timeout, held, gen)
    try:
        conn.send(("held", stats))
        if conn.poll(REPLY_TIMEOUT * 5):
            conn.recv()
    finally:
        for sock in held:
            sock.close()
    conn.send(("released", len(held)))


class Workers:
    def __init__(self, ctx: Any, count: int):
        self.items = []
        for i in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), name="bench-client-%d" % i,
                               daemon=True)
            proc.start()
            child.close()
            self.items.append((proc, parent))

    def conn(self, i: int) -> Any:
        return self.items[i][1]

    def ask(self, i: int, command: tuple[Any, ...], timeout: float = REPLY_TIMEOUT) -> Any:
        self.conn(i).send(command)
        return self.reply(i, timeout)

    def reply(self, i: int, timeout: float = REPLY_TIMEOUT) -> Any:
        conn = self.conn(i)
        if not conn.poll(timeout):
            raise RuntimeError("client process %d did not answer in %.0f s" % (i, timeout))
        answer = conn.recv()
        if answer[0] == "error":
            raise RuntimeError("client process %d failed:\n%s" % (i, answer[1]))
        return answer

    def close(self) -> None:
        for _proc, conn in self.items:
            try:
                conn.send(("quit",))
            except (OSError, ValueError):
                pass
        for proc, conn in self.items:
            proc.join(5.0)
            if proc.is_alive():
                proc.kill()
                proc.join(3.0)
            conn.close()


# --------------------------------------------------------------------------------------------
# a non-blocking raw-socket Pyro4 client (handshake and calls via pyro.wire)


class _Raw:
    __slots__ = ("sock", "state", "reader", "out")

    def __init__(self, sock: socket.socket, gen: int = 4):
        self.sock = sock
        self.state = "connecting"
        self.reader = wire.MessageReader() if gen == 4 else PYRO5.reader()
        self.out = b""


class _Pyro5Frames:
    """What the raw clients send and read when they speak Pyro5 (``pyro.wire.pyro5``, the
    bytes of a ``Pyro5.api.Proxy``): the CONNECT (always with the object: metadata comes
    back), one INVOKE, and replies decoded by Pyro5's serpent serializer."""

    def __init__(self) -> None:
        import Pyro5.serializers

        self.serializer = Pyro5.serializers.serializers["serpent"]
        self.connect = PYRO5.connect(self.serializer, "hello", OBJECT_ID, {}, None)

    def invoke(self, method: str, args: tuple[Any, ...]) -> bytes:
        return PYRO5.invoke(PYRO5.request(self.serializer, OBJECT_ID, method, args, {}), 1,
                            None)

    def deserializeData(self, data: bytes, compressed: int = 0) -> Any:
        """(the name of the Pyro4 serializer method the raw clients call)"""
        return self.serializer.loads(data)


def raw_clients(host: str, port: int, count: int, method: str | None, args: tuple[Any, ...],
                max_pending: int, timeout: float,
                held: list[socket.socket] | None = None, gen: int = 4) -> dict[str, Any]:
    """Open ``count`` connections, handshake each; then call ``method(*args)`` once on each,
    or (``method=None``) keep them open in ``held``. ``gen``: speak Pyro4 or Pyro5.

    At most ``max_pending`` connections are unfinished at any moment (not yet answered, or
    not yet handshaken when holding). Returns counts, failures by reason and timings; the
    clock starts at the first connect.
    """
    serializer: Any = Pyro4.util.get_serializer("serpent")
    payload, _ = serializer.serializeData({"handshake": "hello", "object": OBJECT_ID}, False)
    connect_msg = wire.encode(wire.MSG_CONNECT, payload, serializer.serializer_id,
                              wire.FLAGS_META_ON_CONNECT, 0)
    invoke_msg = b""
    if method is not None:
        payload, _ = serializer.serializeCall(OBJECT_ID, method, args, {}, False)
        invoke_msg = wire.encode(wire.MSG_INVOKE, payload, serializer.serializer_id, 0, 1)
    if gen == 5:
        serializer = pyro5 = _Pyro5Frames()
        connect_msg = pyro5.connect
        invoke_msg = pyro5.invoke(method, args) if method is not None else b""
    expected = args[0] if args else None

    selector = selectors.DefaultSelector()
    failures: collections.Counter[str] = collections.Counter()
    done_times: list[float] = []
    handshaken_times: list[float] = []
    to_open, pending, ok = count, 0, 0
    cpu_start = time.process_time()
    start = time.perf_counter()
    deadline = start + timeout

    def finish(c: _Raw, reason: str | None) -> None:
        nonlocal pending, ok
        pending -= 1
        try:
            selector.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        if reason is None:
            ok += 1
            done_times.append(time.perf_counter() - start)
            if held is not None and method is None:
                held.append(c.sock)
                return
        else:
            failures[reason] += 1
        c.sock.close()

    def send_out(c: _Raw) -> None:
        sent = c.sock.send(c.out)
        c.out = c.out[sent:]
        selector.modify(c.sock, selectors.EVENT_WRITE if c.out else selectors.EVENT_READ, c)

    iterations = 0
    while (to_open or pending) and iterations < 10_000_000:
        iterations += 1
        now = time.perf_counter()
        if now >= deadline:
            break
        while to_open and pending < max_pending:
            to_open -= 1
            pending += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            c = _Raw(sock, gen)
            err = sock.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                pending -= 1
                failures["connect: " + errno.errorcode.get(err, str(err))] += 1
                sock.close()
                continue
            selector.register(sock, selectors.EVENT_WRITE, c)
        for key, mask in selector.select(min(0.2, max(0.0, deadline - now))):
            c = key.data
            try:
                if c.state == "connecting":
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        finish(c, "connect: " + errno.errorcode.get(err, str(err)))
                        continue
                    c.state, c.out = "handshake", connect_msg
                    send_out(c)
                    continue
                if mask & selectors.EVENT_WRITE and c.out:
                    send_out(c)
                    continue
                data = c.sock.recv(65536)
                if not data:
                    finish(c, "closed by server (%s)" % c.state)
                    continue
                for msg in c.reader.feed(data):
                    if c.state == "handshake":
                        if msg.type == wire.MSG_CONNECTOK:
                            handshaken_times.append(time.perf_counter() - start)
                            if method is None:
                                finish(c, None)
                            else:
                                c.state, c.out = "call", invoke_msg
                                send_out(c)
                        else:
                            reason = serializer.deserializeData(msg.data, msg.flags & 2)
                            finish(c, "CONNECTFAIL: %s" % (reason,))
                        break
                    if c.state == "call" and msg.type == wire.MSG_RESULT:
                        value = serializer.deserializeData(msg.data, msg.flags & 2)
                        if msg.flags & wire.FLAGS_EXCEPTION:
                            finish(c, "exception: %s: %s" % (type(value).__name__, value))
                        elif value != expected:
                            finish(c, "wrong result %r" % (value,))
                        else:
                            finish(c, None)
                        break
            except (ConnectionError, OSError) as exc:
                finish(c, "%s (%s)" % (type(exc).__name__, c.state))
            except wire.WireError as exc:
                finish(c, "wire error: %s" % exc)
    for key in list(selector.get_map().values()):
        finish(key.data, "timeout (%s)" % key.data.state)
    selector.close()
    failures["never started"] += to_open
    if not failures["never started"]:
        del failures["never started"]
    return {
        "requested": count,
        "ok": ok,
        "failures": dict(failures),
        "wall": max(done_times) if done_times else None,
        "handshaken_all": max(handshaken_times) if len(handshaken_times) == count else None,
        "median_done": statistics.median(done_times) if done_times else None,
        "timed_out": time.perf_counter() >= deadline,
        "client_cpu": time.process_time() - cpu_start,
    }


def raw_capacity(host: str, port: int, connections: int, duration: float,
                 gen: int = 4) -> dict[str, Any]:
    """Server capacity with a client that costs little: ``connections`` handshaken sockets,
    each with one ``add(1, 2)`` in flight, answered replies counted by their (fixed) length.
    """
    held: list[socket.socket] = []
    stats = raw_clients(host, port, connections, None, (), connections, 30.0, held, gen)
    if stats["ok"] != connections:
        for sock in held:
            sock.close()
        raise RuntimeError("capacity: handshakes failed: %r" % (stats,))
    serializer: Any = Pyro4.util.get_serializer("serpent")
    payload, _ = serializer.serializeCall(OBJECT_ID, "add", (1, 2), {}, False)
    request = wire.encode(wire.MSG_INVOKE, payload, serializer.serializer_id, 0, 1)
    header_size = wire.HEADER_SIZE
    if gen == 5:
        serializer = pyro5 = _Pyro5Frames()
        request, header_size = pyro5.invoke("add", (1, 2)), framing5.HEADER_SIZE
    selector = selectors.DefaultSelector()
    try:
        first = held[0]  # learn the reply's length from one call
        first.setblocking(True)
        first.settimeout(10.0)
        first.sendall(request)
        reader, reply = _Raw(first, gen).reader, None
        for _ in range(1000):
            replies = list(reader.feed(first.recv(65536)))
            if replies:
                reply = replies[0]
                break
        if reply is None or reply.type != wire.MSG_RESULT or reply.flags & wire.FLAGS_EXCEPTION:
            raise RuntimeError("capacity: unexpected reply %r" % (reply,))
        if serializer.deserializeData(reply.data) != 3:
            raise RuntimeError("capacity: wrong result")
        length = header_size + reply.annotations_size + reply.data_size
        first.setblocking(False)
        pending = {}
        for sock in held:
            selector.register(sock, selectors.EVENT_READ)
            pending[sock] = 0
        calls = 0
        start = time.perf_counter()
        deadline = start + duration
        for sock in held:
            sock.send(request)
        now = start
        while now < deadline and calls < 100_000_000:
            for key, _ in selector.select(0.2):
                ready: Any = key.fileobj
                got = pending[ready] + len(ready.recv(65536))
                while got >= length:
                    got -= length
                    calls += 1
                    ready.send(request)
                pending[ready] = got
            now = time.perf_counter()
        return {"calls": calls, "elapsed": now - start}
    finally:
        selector.close()
        for sock in held:
            sock.close()


# --------------------------------------------------------------------------------------------
# the three measurements


def measure_a(ctx: Any, workers: Workers, opts: argparse.Namespace, registry: list[ServerProc],
              results: dict[str, Any]) -> None:
    print("\n== (a) small-call throughput: add(1, 2), %s s per run, %d round(s), median ==" %
          (opts.duration, opts.rounds), flush=True)
    kinds = opts.servers
    servers = start_servers(ctx, kinds, opts.thread_pool, registry)
    try:
        runs: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
        errors: dict[tuple[str, int], int] = collections.Counter()
        cpu_per_call: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
        for n in opts.clients:
            for rnd in range(opts.rounds):
                order = kinds[rnd % len(kinds):] + kinds[:rnd % len(kinds)]
                for kind in order:
                    uri = servers[kind].uri
                    for i in range(n):
                        workers.conn(i).send(("throughput", uri, opts.duration, 20))
                    for i in range(n):
                        workers.reply(i)
                    cpu0 = cpu_seconds(servers[kind].pid)
                    for i in range(n):
                        workers.conn(i).send("go")
                    rate, total = 0.0, 0
                    for i in range(n):
                        _, calls, elapsed, errs = workers.reply(i, opts.duration + REPLY_TIMEOUT)
                        rate += calls / elapsed
                        total += calls
                        errors[kind, n] += errs
                    cpu = cpu_seconds(servers[kind].pid) - cpu0
                    runs[kind, n].append(rate)
                    cpu_per_call[kind, n].append(cpu / max(1, total) * 1e6)
                    print("  %-22s %2d client(s) round %d: %9.0f calls/s, server CPU %5.1f us/call"
                          % (LABELS[kind], n, rnd + 1, rate, cpu_per_call[kind, n][-1]),
                          flush=True)
        results["a"] = {
            "%s/%d" % key: {"median": statistics.median(v), "runs": v, "errors": errors[key],
                            "cpu_us_per_call": statistics.median(cpu_per_call[key])}
            for key, v in runs.items()
        }
        capacity: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        for rnd in range(opts.rounds):
            for kind in kinds[rnd % len(kinds):] + kinds[:rnd % len(kinds)]:
                server = servers[kind]
                cpu0 = cpu_seconds(server.pid)
                _, got = workers.ask(0, ("capacity", "127.0.0.1", uri_port(server.uri),
                                         opts.capacity_conns, opts.duration),
                                     opts.duration + REPLY_TIMEOUT)
                cpu = cpu_seconds(server.pid) - cpu0
                rate = got["calls"] / got["elapsed"]
                capacity[kind].append((rate, cpu / max(1, got["calls"]) * 1e6))
                print("  %-22s capacity, %d raw connections, round %d: %9.0f calls/s, "
                      "server CPU %5.1f us/call" % (LABELS[kind], opts.capacity_conns, rnd + 1,
                                                     rate, capacity[kind][-1][1]), flush=True)
        results["a_capacity"] = {
            kind: {"median": statistics.median(r for r, _ in v),
                   "cpu_us_per_call": statistics.median(c for _, c in v), "runs": v}
            for kind, v in capacity.items()
        }
    finally:
        stop_servers(servers, registry)


def measure_b(ctx: Any, workers: Workers, opts: argparse.Namespace, registry: list[ServerProc],
              results: dict[str, Any]) -> None:
    print("\n== (b) burst: %d concurrent calls to slow(0.5) ==" % opts.burst, flush=True)
    servers = start_servers(ctx, opts.servers, opts.thread_pool, registry)
    try:
        out: dict[str, Any] = {}
        bursts = [(kind, "slow") for kind in opts.servers]
        if len(opts.reactors) > 1:  # the coroutine servants, where the reactors differ
            bursts += [(kind, method) for kind in opts.servers if server_reactor(kind)
                       for method in ("aslow", "asleep") if method == "aslow" or kind != "ours"]
        for kind, method in bursts:
            server = servers[kind]
            n = opts.burst if kind != "multiplex" else opts.mux_burst
            port = uri_port(server.uri)
            backlog = listen_backlog(port)
            timeout = 45.0 if kind != "multiplex" else n * 0.5 + 20.0
            overflows = listen_overflows()
            _, stats = workers.ask(0, ("burst", "127.0.0.1", port, n, method, (0.5,), n,
                                       timeout), timeout + REPLY_TIMEOUT)
            after = listen_overflows()
            stats["backlog"] = backlog
            stats["listen_overflows"] = (
                after - overflows if after is not None and overflows is not None else None)
            out[kind if method == "slow" else "%s/%s" % (kind, method)] = stats
            print("  %-22s %-6s %4d/%-4d ok, wall %s s, all handshaken at %s s, backlog %s, "
                  "listen overflows %s, client CPU %.2f s%s" % (
                      LABELS[kind], method, stats["ok"], n, _f(stats["wall"], 3),
                      _f(stats["handshaken_all"], 3), backlog, stats["listen_overflows"],
                      stats["client_cpu"],
                      ("; failures: %s" % stats["failures"]) if stats["failures"] else ""),
                  flush=True)
        results["b"] = out
    finally:
        stop_servers(servers, registry)


def _probe(uri: str, count: int, gen: int = 4) -> dict[str, Any]:
    """Fresh proxies (Pyro4's, or Pyro5's), one after the other: first and second call in ms."""
    first, second, failures = [], [], []
    for _ in range(count):
        try:
            proxy = _proxy(uri, gen)
            try:
                t0 = time.perf_counter()
                proxy.add(1, 2)
                t1 = time.perf_counter()
                proxy.add(1, 2)
                t2 = time.perf_counter()
            finally:
                proxy._pyroRelease()
            first.append((t1 - t0) * 1000.0)
            second.append((t2 - t1) * 1000.0)
        except Exception as exc:
            failures.append("%s: %s" % (type(exc).__name__, exc))
        time.sleep(0.05)
    return {"first": first, "second": second, "failures": failures}


def measure_c(ctx: Any, workers: Workers, opts: argparse.Namespace, registry: list[ServerProc],
              results: dict[str, Any]) -> None:
    print("\n== (c) %d idle connections, then a fresh Pyro4.Proxy ==" % opts.idle, flush=True)
    servers = start_servers(ctx, SERVERS, opts.thread_pool, registry)
    try:
        out: dict[str, Any] = {}
        for kind in SERVERS:
            server = servers[kind]
            n = opts.idle if kind != "thread" else opts.thread_idle
            _probe(server.uri, 3)  # warm the server's code paths before the baseline
            time.sleep(0.5)
            before = rss_kib(server.pid)
            t0 = time.perf_counter()
            _, stats = workers.ask(0, ("hold", "127.0.0.1", uri_port(server.uri), n, 100, 120.0),
                                   300.0)
            opened = time.perf_counter() - t0
            try:
                time.sleep(1.0)
                after = rss_kib(server.pid)
                probe = _probe(server.uri, opts.probes)
                after_probe = rss_kib(server.pid)
            finally:
                workers.conn(0).send("release")
                workers.reply(0, 300.0)
            stats.update(
                rss_before_kib=before, rss_after_kib=after, rss_after_probe_kib=after_probe,
                kib_per_conn=(after - before) / max(1, stats["ok"]), open_s=opened, probe=probe,
                target=n)
            out[kind] = stats
            print("  %-22s held %5d/%-5d in %.2f s; RSS %.1f -> %.1f MiB = %.2f KiB/conn; "
                  "fresh client first call %s ms (max %s), second %s ms%s" % (
                      LABELS[kind], stats["ok"], n, opened, before / 1024, after / 1024,
                      stats["kib_per_conn"], _f(_median(probe["first"]), 2),
                      _f(max(probe["first"], default=None), 2), _f(_median(probe["second"]), 2),
                      ("; failures: %s %s" % (stats["failures"], probe["failures"]))
                      if stats["failures"] or probe["failures"] else ""), flush=True)
            time.sleep(1.0)  # let the server see the closes before the next one is loaded
        results["c"] = out
    finally:
        stop_servers(servers, registry)


def measure_pyro5(ctx: Any, workers: Workers, opts: argparse.Namespace,
                  registry: list[ServerProc], results: dict[str, Any]) -> None:
    """Section 5: Pyro5 clients; ours beside Pyro5's multiplex and thread daemons."""
    print("\n== (5) Pyro5 clients: ours beside Pyro5's own daemons ==", flush=True)
    servers = start_servers(ctx, SERVERS5, opts.thread_pool, registry)
    out: dict[str, Any] = {"calls": {}, "capacity": {}, "burst": {}, "idle": {}}
    try:
        calls: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        capacity: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        for rnd in range(opts.rounds):
            for kind in SERVERS5[rnd % 3:] + SERVERS5[:rnd % 3]:  # (order rotated per round)
                server = servers[kind]
                workers.conn(0).send(("throughput", server.uri, opts.duration, 20, 5))
                workers.reply(0)
                cpu0 = cpu_seconds(server.pid)
                workers.conn(0).send("go")
                _, done, elapsed, errs = workers.reply(0, opts.duration + REPLY_TIMEOUT)
                if errs:
                    raise RuntimeError("%s: %d wrong results" % (kind, errs))
                calls[kind].append((done / elapsed,
                                    (cpu_seconds(server.pid) - cpu0) / max(1, done) * 1e6))
                cpu0 = cpu_seconds(server.pid)
                _, got = workers.ask(0, ("capacity", "127.0.0.1", uri_port(server.uri),
                                         opts.capacity_conns, opts.duration, 5),
                                     opts.duration + REPLY_TIMEOUT)
                capacity[kind].append((got["calls"] / got["elapsed"],
                                       (cpu_seconds(server.pid) - cpu0) / max(1, got["calls"])
                                       * 1e6))
                print("  %-22s round %d: 1 client %7.0f calls/s (%5.1f us CPU/call); "
                      "capacity %7.0f calls/s (%5.1f us CPU/call)" % (
                          LABELS[kind], rnd + 1, *calls[kind][-1], *capacity[kind][-1]),
                      flush=True)
        for name, table in (("calls", calls), ("capacity", capacity)):
            out[name] = {kind: {"median": statistics.median(r for r, _ in v),
                                "cpu_us_per_call": statistics.median(c for _, c in v),
                                "runs": v} for kind, v in table.items()}
        for kind in SERVERS5:
            server = servers[kind]
            n = opts.burst if kind != "multiplex5" else opts.mux_burst
            timeout = 45.0 if kind != "multiplex5" else n * 0.5 + 20.0
            _, stats = workers.ask(0, ("burst", "127.0.0.1", uri_port(server.uri), n, "slow",
                                       (0.5,), n, timeout, None, 5), timeout + REPLY_TIMEOUT)
            out["burst"][kind] = stats
            print("  %-22s burst %4d/%-4d ok, wall %s s%s" % (
                LABELS[kind], stats["ok"], n, _f(stats["wall"], 3),
                ("; failures: %s" % stats["failures"]) if stats["failures"] else ""),
                flush=True)
        for kind in SERVERS5:
            server = servers[kind]
            n = opts.idle if kind != "thread5" else opts.thread_idle
            _probe(server.uri, 3, 5)
            time.sleep(0.5)
            before = rss_kib(server.pid)
            _, stats = workers.ask(0, ("hold", "127.0.0.1", uri_port(server.uri), n, 100, 120.0,
                                       5), 300.0)
            try:
                time.sleep(1.0)
                after = rss_kib(server.pid)
                probe = _probe(server.uri, opts.probes, 5)
            finally:
                workers.conn(0).send("release")
                workers.reply(0, 300.0)
            stats.update(kib_per_conn=(after - before) / max(1, stats["ok"]), target=n,
                         rss_before_kib=before, rss_after_kib=after, probe=probe)
            out["idle"][kind] = stats
            print("  %-22s held %5d/%-5d idle: %.2f KiB/conn; fresh client first call %s ms%s"
                  % (LABELS[kind], stats["ok"], n, stats["kib_per_conn"],
                     _f(_median(probe["first"]), 2),
                     ("; failures: %s %s" % (stats["failures"], probe["failures"]))
                     if stats["failures"] or probe["failures"] else ""), flush=True)
            time.sleep(1.0)
        results["pyro5"] = out
    finally:
        stop_servers(servers, registry)


def report_pyro5(results: dict[str, Any], opts: argparse.Namespace) -> str:
    """Section 5's table: ours against Pyro5's daemons, with the Pyro5 targets."""
    five = results.get("pyro5")
    if not five:
        return ""
    mux, thr = "multiplex5", "thread5"
    header = ["Pyro5 clients", "ours", "Pyro5 multiplex", "Pyro5 thread", "ours / multiplex",
              "ours / thread", "target (ours)", "result"]
    rows: list[list[str]] = []

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    for name, label, need in (("calls", "add(1,2) calls/s, 1 client process", 1.0),
                              ("capacity", "capacity: 1 light raw client, %d conns, calls/s"
                               % opts.capacity_conns, 1.5)):
        rate = {k: five[name][k]["median"] for k in SERVERS5}
        cpu = {k: five[name][k]["cpu_us_per_call"] for k in SERVERS5}
        rows.append(["(5) " + label, "%.0f" % rate["ours"], "%.0f" % rate[mux],
                     "%.0f" % rate[thr], _ratio(rate["ours"], rate[mux]),
                     _ratio(rate["ours"], rate[thr]), ">= %.1fx multiplex" % need,
                     verdict(rate["ours"] >= need * rate[mux])])
        rows.append(["(5) server CPU per call (us), " + name, "%.0f" % cpu["ours"],
                     "%.0f" % cpu[mux], "%.0f" % cpu[thr], _ratio(cpu["ours"], cpu[mux]),
                     _ratio(cpu["ours"], cpu[thr]), "", ""])
    b = five["burst"]
    o = b["ours"]
    rows.append(["(5) %d concurrent slow(0.5 s) calls: ok / wall (s)" % opts.burst,
                 "%d/%d, %s" % (o["ok"], o["requested"], _f(o["wall"])),
                 "%d/%d, %s (capped: serialises)" % (b[mux]["ok"], b[mux]["requested"],
                                                     _f(b[mux]["wall"])),
                 "%d/%d, %s" % (b[thr]["ok"], b[thr]["requested"], _f(b[thr]["wall"])),
                 "", _ratio(o["wall"], b[thr]["wall"]), "all in <= 1.5 s",
                 verdict(o["ok"] == opts.burst and o["wall"] is not None and o["wall"] <= 1.5)])
    c = five["idle"]
    o = c["ours"]
    rows.append(["(5) idle connections held; server RSS per connection (KiB)",
                 "%d/%d; %s" % (o["ok"], o["target"], _f(o["kib_per_conn"])),
                 "%d/%d; %s" % (c[mux]["ok"], c[mux]["target"], _f(c[mux]["kib_per_conn"])),
                 "%d/%d; %s" % (c[thr]["ok"], c[thr]["target"], _f(c[thr]["kib_per_conn"])),
                 _ratio(o["kib_per_conn"], c[mux]["kib_per_conn"]),
                 _ratio(o["kib_per_conn"], c[thr]["kib_per_conn"]),
                 "all %d, <= 2 KiB" % opts.idle,
                 verdict(o["ok"] == opts.idle and o["kib_per_conn"] <= 2.0)])
    rows.append(["(5) fresh Pyro5 proxy with the idle ones: 1st call (ms, median)",
                 *(_f(_median(c[k]["probe"]["first"])) for k in SERVERS5), "", "", "", ""])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# report


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return "%.*f" % (digits, value)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return "%.2fx" % (a / b)


def load_average() -> str:
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "?"


def machine_facts(reactor_name: str) -> list[str]:
    import twisted

    affinity: int | None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    facts = [
        "cores: %s (usable by this process: %s)" % (os.cpu_count(), affinity),
        "CPU: %s" % _cpu_model(),
        "Python %s (%s)" % (platform.python_version(), platform.python_implementation()),
        "Twisted %s, reactor %s" % (twisted.__version__, reactor_name),
        "Pyro4 %s (serializer %s)" % (Pyro4.__version__, Pyro4.config.SERIALIZER),
        "twisted-pyro tree measured: %s" % git_state(),
        "Linux %s; net.core.somaxconn=%s; RLIMIT_NOFILE=%s" % (
            platform.release(), _read("/proc/sys/net/core/somaxconn"),
            "%d/%d" % resource.getrlimit(resource.RLIMIT_NOFILE)),
    ]
    return facts


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def report(results: dict[str, Any], opts: argparse.Namespace) -> str:
    rows: list[list[str]] = []
    header = ["measurement", "ours", "Pyro4 multiplex", "Pyro4 thread", "ours / multiplex",
              "ours / thread", "target (ours)", "result"]

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    a = results.get("a")
    if a:
        for n in opts.clients:
            med = {k: a["%s/%d" % (k, n)]["median"] for k in SERVERS}
            r_mux, r_thr = med["ours"] / med["multiplex"], med["ours"] / med["thread"]
            if n == 1:
                target, ok = ">= 1.0x multiplex", r_mux >= 1.0
            else:
                target, ok = ">= 1.2x multiplex and >= 1.5x thread", r_mux >= 1.2 and r_thr >= 1.5
            rows.append(["(a) add(1,2) calls/s, %d client process%s" % (n, "es" if n > 1 else ""),
                         "%.0f" % med["ours"], "%.0f" % med["multiplex"], "%.0f" % med["thread"],
                         "%.2fx" % r_mux, "%.2fx" % r_thr, target, verdict(ok)])
        for n in opts.clients:
            cpu = {k: a["%s/%d" % (k, n)]["cpu_us_per_call"] for k in SERVERS}
            rows.append(["(a) server CPU per call (us, user+sys), %d client%s" % (
                n, "s" if n > 1 else ""), "%.0f" % cpu["ours"], "%.0f" % cpu["multiplex"],
                "%.0f" % cpu["thread"], _ratio(cpu["ours"], cpu["multiplex"]),
                _ratio(cpu["ours"], cpu["thread"]), "", ""])
    cap = results.get("a_capacity")
    if cap:
        rate = {k: cap[k]["median"] for k in SERVERS}
        cpu = {k: cap[k]["cpu_us_per_call"] for k in SERVERS}
        rows.append(["(a, info) server capacity: 1 light raw client, %d conns, calls/s" %
                     opts.capacity_conns, "%.0f" % rate["ours"], "%.0f" % rate["multiplex"],
                     "%.0f" % rate["thread"], _ratio(rate["ours"], rate["multiplex"]),
                     _ratio(rate["ours"], rate["thread"]), "", ""])
        rows.append(["(a, info) server CPU per call at capacity (us)", "%.0f" % cpu["ours"],
                     "%.0f" % cpu["multiplex"], "%.0f" % cpu["thread"],
                     _ratio(cpu["ours"], cpu["multiplex"]), _ratio(cpu["ours"], cpu["thread"]),
                     "", ""])
    b = results.get("b")
    if b:
        o, m, t = b["ours"], b["multiplex"], b["thread"]
        m_per_call = (m["wall"] / m["ok"]) if m["ok"] and m["wall"] else None
        rows.append([
            "(b) %d concurrent slow(0.5 s) calls: succeeded" % opts.burst,
            "%d/%d" % (o["ok"], o["requested"]),
            "%d/%d (capped: serialises)" % (m["ok"], m["requested"]),
            "%d/%d" % (t["ok"], t["requested"]),
            "", "", "all %d" % opts.burst, verdict(o["ok"] == opts.burst)])
        rows.append([
            "(b) burst wall time, first connect to last reply (s)",
            _f(o["wall"]),
            "%s for %d = %s s/call (~%.0f s for %d)" % (
                _f(m["wall"]), m["requested"], _f(m_per_call), (m_per_call or 0) * opts.burst,
                opts.burst),
            _f(t["wall"]), "", _ratio(o["wall"], t["wall"]), "<= 1.5 s",
            verdict(o["ok"] == opts.burst and o["wall"] is not None and o["wall"] <= 1.5)])
        rows.append(["(b) listen backlog (kernel, via ss)", str(o["backlog"]),
                     str(m["backlog"]), str(t["backlog"]), "", "", "", ""])
        rows.append(["(b) SYNs dropped on a full accept queue (TcpExt ListenOverflows)",
                     str(o["listen_overflows"]), str(m["listen_overflows"]),
                     str(t["listen_overflows"]), "", "", "", ""])
    c = results.get("c")
    if c:
        o, m, t = c["ours"], c["multiplex"], c["thread"]

        def held(s: dict[str, Any]) -> str:
            return "%d/%d" % (s["ok"], s["target"])

        def ms(s: dict[str, Any], which: str) -> str:
            vals = s["probe"][which]
            if not vals:
                return "failed"
            return "%.2f (max %.2f)" % (statistics.median(vals), max(vals))

        o_first = _median(o["probe"]["first"])
        rows.append(["(c) idle connections held (handshaken)", held(o), held(m),
                     held(t) + " (= its pool; 1 thread each)", "", "", "all %d" % opts.idle,
                     verdict(o["ok"] == opts.idle)])
        rows.append(["(c) fresh proxy: 1st call, connect+handshake+call (ms, median of %d)" %
                     opts.probes, ms(o, "first"), ms(m, "first"), ms(t, "first"),
                     _ratio(o_first, _median(m["probe"]["first"])),
                     _ratio(o_first, _median(t["probe"]["first"])), "<= 5 ms",
                     verdict(o_first is not None and o_first <= 5.0 and o["ok"] == opts.idle)])
        rows.append(["(c) fresh proxy: 2nd call (ms)", ms(o, "second"), ms(m, "second"),
                     ms(t, "second"), _ratio(_median(o["probe"]["second"]),
                                             _median(m["probe"]["second"])),
                     _ratio(_median(o["probe"]["second"]), _median(t["probe"]["second"])), "",
                     ""])
        rows.append(["(c) server RSS per idle connection (KiB)", _f(o["kib_per_conn"]),
                     _f(m["kib_per_conn"]), _f(t["kib_per_conn"]),
                     _ratio(o["kib_per_conn"], m["kib_per_conn"]),
                     _ratio(o["kib_per_conn"], t["kib_per_conn"]), "<= 2 KiB",
                     verdict(o["kib_per_conn"] <= 2.0 and o["ok"] == opts.idle)])
        rows.append(["(c) server RSS before -> with idle conns (MiB)",
                     *("%.1f -> %.1f" % (s["rss_before_kib"] / 1024, s["rss_after_kib"] / 1024)
                       for s in (o, m, t)), "", "", "", ""])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def reactors_report(results: dict[str, Any], opts: argparse.Namespace) -> str:
    """Ours on each reactor beside Pyro4's multiplex daemon (the one to beat), with ratios:
    on the multiplex daemon, and on ours under epoll."""
    ours = [k for k in opts.servers if server_reactor(k)]
    extra = [k for k in ours if k != "ours"]
    header = (["measurement"] + [LABELS[k] for k in ours] + ["Pyro4 multiplex"]
              + ["%s / multiplex" % LABELS[k] for k in ours]
              + ["%s / epoll" % LABELS[k] for k in extra])

    def row(what: str, values: dict[str, float | None], digits: int = 0) -> list[str]:
        return ([what] + [_f(values.get(k), digits) for k in ours + ["multiplex"]]
                + [_ratio(values.get(k), values.get("multiplex")) for k in ours]
                + [_ratio(values.get(k), values.get("ours")) for k in extra])

    rows: list[list[str]] = []
    a = results.get("a")
    if a:
        for n in opts.clients:
            rows.append(row("(a) add(1,2) calls/s, %d client process%s" % (
                n, "es" if n > 1 else ""), {k: a["%s/%d" % (k, n)]["median"]
                                            for k in ours + ["multiplex"]}))
        for n in opts.clients:
            rows.append(row("(a) server CPU per call (us), %d client%s" % (
                n, "s" if n > 1 else ""), {k: a["%s/%d" % (k, n)]["cpu_us_per_call"]
                                           for k in ours + ["multiplex"]}))
    cap = results.get("a_capacity")
    if cap:
        rows.append(row("(a) capacity, 1 raw client, %d conns: calls/s" % opts.capacity_conns,
                        {k: cap[k]["median"] for k in ours + ["multiplex"]}))
        rows.append(row("(a) server CPU per call at capacity (us)",
                        {k: cap[k]["cpu_us_per_call"] for k in ours + ["multiplex"]}))
    b = results.get("b")
    if b:
        for method, what in (("slow", "slow(0.5), a Deferred"),
                             ("aslow", "aslow(0.5), async def awaiting a Deferred"),
                             ("asleep", "asleep(0.5), async def awaiting asyncio.sleep")):
            key = {k: (k if method == "slow" else "%s/%s" % (k, method)) for k in ours}
            if not any(key[k] in b for k in ours):
                continue
            walls = {k: b[key[k]]["wall"] for k in ours if key[k] in b}
            oks = ", ".join("%d/%d" % (b[key[k]]["ok"], b[key[k]]["requested"]) if key[k] in b
                            else "-" for k in ours)
            rows.append(row("(b) %d concurrent %s: wall (s); ok %s" % (opts.burst, what, oks),
                            walls, 2))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="reduced run for smoke-testing (well under a minute)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per throughput run (default 3, quick 1)")
    parser.add_argument("--only", default="a,b,c,5",
                        help="sections to run, e.g. a,c (5: Pyro5 clients)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="throughput rounds per cell, median reported (default 3, quick 1)")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument("--reactors", default="epoll",
                        help="reactors to run ours on, side by side: any of %s (default "
                             "epoll)" % ", ".join(REACTORS))
    parser.add_argument("--profile", default=None, metavar="PATH",
                        help="run only (a) with 4 clients against ours under cProfile and dump "
                             "the server's stats to PATH (figures then are not comparable)")
    opts = parser.parse_args(argv)
    opts.sections = {s.strip() for s in opts.only.split(",") if s.strip()}
    if not opts.sections <= {"a", "b", "c", "5"}:
        parser.error("--only takes a comma-separated subset of a,b,c,5")
    opts.reactors = tuple(r.strip() for r in opts.reactors.split(",") if r.strip())
    if "epoll" not in opts.reactors or not set(opts.reactors) <= set(REACTORS):
        parser.error("--reactors takes epoll and any of asyncio, uvloop")
    opts.servers = ("ours",) + tuple("ours-" + r for r in opts.reactors if r != "epoll") + (
        "multiplex", "thread")
    if opts.duration is None:
        opts.duration = 1.0 if opts.quick else 3.0
    if opts.rounds is None:
        opts.rounds = 1 if opts.quick else 3
    opts.clients = (1, 4, 16)
    opts.burst = 1000
    opts.mux_burst = 4 if opts.quick else 10
    opts.idle = 2000 if opts.quick else 10000
    opts.thread_idle = 200 if opts.quick else 1000
    opts.thread_pool = max(opts.thread_idle, opts.burst) + 100
    opts.probes = 5
    opts.capacity_conns = 16
    if opts.duration <= 0 or opts.duration > 60:
        parser.error("--duration must be in (0, 60]")
    if opts.rounds < 1 or opts.rounds > 10:
        parser.error("--rounds must be 1..10")
    return opts


def run_profile(ctx: Any, opts: argparse.Namespace) -> None:
    import pstats

    registry: list[ServerProc] = []
    workers = Workers(ctx, 4)
    try:
        servers = start_servers(ctx, ["ours"], opts.thread_pool, registry,
                                os.path.abspath(opts.profile))
        uri = servers["ours"].uri
        for i in range(4):
            workers.conn(i).send(("throughput", uri, opts.duration, 20))
        for i in range(4):
            workers.reply(i)
        for i in range(4):
            workers.conn(i).send("go")
        total = sum(c / e for _, c, e, _ in (workers.reply(i, opts.duration + REPLY_TIMEOUT)
                                             for i in range(4)))
        print("ours under cProfile, 4 clients: %.0f calls/s (not comparable)" % total)
        stop_servers(servers, registry)
        stats = pstats.Stats(os.path.abspath(opts.profile))
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
    finally:
        for server in registry:
            server.stop()
        workers.close()


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    nofile = raise_nofile()
    ctx = multiprocessing.get_context("spawn")
    if opts.profile:
        run_profile(ctx, opts)
        return 0
    started = time.perf_counter()
    load_before = load_average()
    print("twisted-pyro server benchmark (%s run)" % ("quick" if opts.quick else "full"))
    print("RLIMIT_NOFILE raised to %d/%d in every process" % nofile, flush=True)
    registry: list[ServerProc] = []
    results: dict[str, Any] = {}
    reactor_name = "?"
    workers = Workers(ctx, max(opts.clients))
    try:
        if "a" in opts.sections:
            measure_a(ctx, workers, opts, registry, results)
        if "b" in opts.sections:
            measure_b(ctx, workers, opts, registry, results)
        if "c" in opts.sections:
            measure_c(ctx, workers, opts, registry, results)
        if "5" in opts.sections:
            measure_pyro5(ctx, workers, opts, registry, results)
        # which reactor ours ran on (ask a fresh server; cheap)
        probe = start_servers(ctx, ["ours"], opts.thread_pool, registry)
        reactor_name = probe["ours"].impl
        stop_servers(probe, registry)
    finally:
        for server in list(registry):
            server.stop()
        workers.close()
    elapsed = time.perf_counter() - started
    print("\n## Machine\n")
    for fact in machine_facts(reactor_name):
        print("- " + fact)
    print("- Pyro4's daemons listen with backlog 100 (%s); ours with "
          "pyro.protocol.DEFAULT_BACKLOG, capped by net.core.somaxconn" % PYRO4_BACKLOG_SOURCE)
    print("- servers: one process each; Pyro4 thread daemon THREADPOOL_SIZE=%d; clients: "
          "separate processes (plain Pyro4.Proxy in (a); raw non-blocking sockets speaking "
          "the protocol via pyro.wire in (b) and (c))" % opts.thread_pool)
    print("- (a) %s s per run, %d round(s) per cell, median; (b) multiplex capped at %d calls "
          "(it serves one call at a time); (c) thread daemon measured at %d connections "
          "(one OS thread per connection, THREADPOOL_SIZE=%d)" % (
              opts.duration, opts.rounds, opts.mux_burst, opts.thread_idle, opts.thread_pool))
    print("- load average (1/5/15 min) at start: %s; at end: %s (the machine is shared: other "
          "processes' load shows up as noise)" % (load_before, load_average()))
    print("- total run time %.0f s\n" % elapsed)
    print(report(results, opts))
    if len(opts.reactors) > 1:
        print()
        print(reactors_report(results, opts))
    if "pyro5" in results:
        import Pyro5

        print("\nPyro5 %s (serializer serpent)\n" % Pyro5.__version__)
        print(report_pyro5(results, opts))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"options": {k: v for k, v in vars(opts).items() if k != "sections"},
                       "results": results}, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
