#!/usr/bin/env python
"""Side-by-side client benchmark: our Deferred clients against Pyro4's own proxies.

Usage::

    python benchmarks/bench_client.py [--quick] [--duration S] [--rounds N] [--only 1,2,3]
                                      [--servers multiplex,ours] [--burst N]
                                      [--burst-connections N] [--slow S] [--json PATH]
                                      [--small-burst N] [--profile VARIANT]
                                      [--pyro5-servers thread,multiplex]
                                      [--reactors epoll,asyncio,uvloop]

Servers are the ones ``bench_server.py`` starts (imported from it, not copied): Pyro4's
multiplex daemon (``SERVERTYPE="multiplex"``) and ours (``pyro.protocol.Pyro4ProtocolFactory``
on the epoll reactor), each in its own process on 127.0.0.1 port 0. Every client measurement
runs in a fresh process of its own (``multiprocessing``, *spawn*) with Twisted's epoll reactor
installed, so thread counts and CPU times belong to that client alone.

(1) small-call throughput, ``add(1, 2)``, for ``--duration`` seconds per run, median of
    ``--rounds`` runs (variant order rotated per round), against each server:

    * ``blocking``: a plain blocking ``Pyro4.Proxy`` in a loop (one call at a time);
    * ``async``:    Pyro4's own asynchronous proxy (``proxy._pyroAsync()``): every call
                    returns a ``FutureResult``; 100 kept outstanding (a new call as soon as
                    one completes);
    * ``pds4``, ``pds8``: ``pyro.proxy.PyroDeferredService`` with 4 / 8 worker threads and
                    100 calls in flight;
    * ``dp``:       ``pyro.client.DeferredProxy`` (``max_connections=4``,
                    ``max_in_flight=100``) with 100 calls in flight;
    * ``dp1``:      the same on a single pipelined connection (diagnostic).

    Every proxy has a 30 s call timeout (``_pyroTimeout`` / ``timeout``), as real code would.
    Each run also reports the client's and the server's CPU time per call (user+sys, from
    ``/proc``) and the most threads the client process had.
    Targets: PyroDeferredService >= 5x Pyro4's async proxy; DeferredProxy with 100 in flight
    >= 3x the blocking Pyro4.Proxy loop, on the same daemon (Pyro4's multiplex daemon is the
    judged one; ours is shown alongside).

(2) ``--burst`` (10,000) concurrent calls from one ``DeferredProxy`` to ``slow(--slow)`` on our
    server, a ``task.deferLater`` Deferred (no server thread either), with
    ``max_connections = max_in_flight = 10,000`` (one call per connection; our server also
    runs pipelined calls to such a servant concurrently: ``--burst-connections`` for fewer,
    pipelined). Two bursts on the same
    proxy: *cold* (one connection open; the pool grows during the burst) and *warm* (again,
    with the connections the first burst left open); then *prestarted*: a new proxy with
    ``min_connections`` = its ``max_connections``, whose whole pool is opened (and timed)
    before its burst, as for a burst known in advance. All calls are issued at once, so all
    their Deferreds are outstanding together; how many are on the wire at once depends on how
    fast the pool opens connections, and is reported. Also: successes, wall time from issuing
    the first call to the last reply, client CPU, and the client's threads
    (``threading.active_count()`` and the kernel's count) sampled every 1,000 calls issued and
    every 50 ms: no thread per call.

(3) ``--small-burst`` (50) concurrent calls to ``aslow(--slow)`` from a *default*
    ``DeferredProxy(uri)`` (``max_connections=4``, nothing open before: what a new user
    writes), against ours (an ``async def`` servant) and Pyro4's thread and multiplex daemons
    (``time.sleep``), side by side; for reference the same with ``max_connections`` = the
    number of calls. Reported: wall time (first call issued to last reply), first and
    median reply, how many calls each connection carried, and the bound each server allows
    when the calls are spread evenly over the connections the proxy may open: ours runs
    concurrent calls of one connection at once (one servant delay); Pyro4's thread daemon
    runs one call per connection at a time (``ceil(calls / max_connections)`` delays);
    its multiplex daemon one call at a time in all (``calls`` delays). Targets: ours within
    2 delays (1.0 s for 0.5 s calls), Pyro4's daemons no worse than that even spread (plus
    10 % and 0.2 s for connecting).

(4) the Pyro5 rows: ``add(1, 2)`` throughput against Pyro5's own daemons (``Pyro5.api.Daemon``
    with ``SERVERTYPE`` "multiplex" and "thread", each in its own process, started here), as
    in (1), median of ``--rounds`` runs with the variant order rotated:

    * ``p5blocking``: a plain blocking ``Pyro5.api.Proxy`` in a loop (Pyro5 has no async
                    proxy: this is the baseline);
    * ``p5pds4``:   ``PyroDeferredService`` wrapping a ``Pyro5.api.Proxy``, 4 workers;
    * ``p5dp``:     ``DeferredProxy(uri, pyro_version=5)``, ``max_connections=4``;
    * ``p5dp1``:    the same on one pipelined connection;

    the last three with 100 calls in flight. Ratios to the blocking Pyro5 proxy on the same
    daemon; the targets are the Pyro4 side's (DeferredProxy >= 3x the blocking loop on the
    multiplex daemon).

With ``--reactors``, (1) and (2) also run the native client on Twisted's asyncio reactor
(asyncio's own loop, or uvloop's) beside epoll: ``DeferredProxy`` driven by the reactor as
above (``dp@asyncio``...), and ``pyro.aio.Proxy`` in a plain ``asyncio.run(main())`` program,
``WINDOW`` coroutines each awaiting one call after the other (``aio@asyncio``...), with a
burst of its own (the calls gathered at once, cold then warm). The servers stay as above.

Only 127.0.0.1 is used; every loop is bounded in count and time; every child process is
stopped at the end, also on errors, and exits by itself when its parent disappears.
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import json
import multiprocessing
import os
import pstats
import queue
import resource
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import Pyro4  # noqa: E402
from bench_server import (  # noqa: E402 -- the server benchmark's helpers, shared
    OBJECT_ID,
    REACTORS,
    REPLY_TIMEOUT,
    ServerProc,
    _f,
    _ratio,
    _watch_parent,
    cpu_seconds,
    install_reactor,
    listen_overflows,
    load_average,
    machine_facts,
    raise_nofile,
    start_servers,
    stop_servers,
)

SERVER_KINDS = ("multiplex", "ours")
SERVER_LABELS = {"multiplex": "Pyro4 multiplex daemon", "ours": "ours (Twisted epoll)"}
WINDOW = 100  # calls kept in flight by the concurrent clients
CALL_TIMEOUT = 30.0
WARMUP_SECONDS = 0.4
CELL_LIMIT = 120.0  # a client process gives up after this long beyond its planned work

VARIANTS: dict[str, dict[str, Any]] = {
    "blocking": {"kind": "blocking", "short": "blocking",
                 "label": "blocking Pyro4.Proxy loop (1 call at a time)"},
    "async": {"kind": "async", "short": "async",
              "label": "Pyro4 async proxy (_pyroAsync), %d outstanding" % WINDOW},
    "pds4": {"kind": "pds", "workers": 4, "short": "PDS4",
             "label": "PyroDeferredService max_workers=4, %d in flight" % WINDOW},
    "pds8": {"kind": "pds", "workers": 8, "short": "PDS8",
             "label": "PyroDeferredService max_workers=8, %d in flight" % WINDOW},
    "dp": {"kind": "dp", "connections": 4, "short": "DP",
           "label": "DeferredProxy max_connections=4, %d in flight" % WINDOW},
    "dp1": {"kind": "dp", "connections": 1, "short": "DP1",
            "label": "DeferredProxy max_connections=1, %d in flight" % WINDOW},
}

#: (4): the native client against Pyro5's own daemons (see the module docstring).
PYRO5_SERVER_KINDS = ("multiplex", "thread")
PYRO5_SERVER_LABELS = {"multiplex": "Pyro5 multiplex daemon", "thread": "Pyro5 thread daemon"}
PYRO5_VARIANTS: dict[str, dict[str, Any]] = {
    "p5blocking": {"kind": "blocking5", "short": "blocking",
                   "label": "blocking Pyro5.api.Proxy loop (1 call at a time)"},
    "p5pds4": {"kind": "pds", "workers": 4, "pyro_version": 5, "short": "PDS4",
               "label": "PyroDeferredService(Pyro5 proxy) max_workers=4, %d in flight"
               % WINDOW},
    "p5dp": {"kind": "dp", "connections": 4, "pyro_version": 5, "short": "DP",
             "label": "DeferredProxy(pyro_version=5) max_connections=4, %d in flight"
             % WINDOW},
    "p5dp1": {"kind": "dp", "connections": 1, "pyro_version": 5, "short": "DP1",
              "label": "DeferredProxy(pyro_version=5) max_connections=1, %d in flight"
              % WINDOW},
}


# --------------------------------------------------------------------------------------------
# Pyro5's daemons, each in its own process


class Pyro5Bench:
    """The Pyro5 servant: ``add`` only (the throughput rows call nothing else)."""

    def add(self, a: Any, b: Any) -> Any:
        return a + b


def pyro5_server_main(kind: str, conn: Any, thread_pool_size: int) -> None:
    raise_nofile()
    import Pyro5.api

    Pyro5.config.SERVERTYPE = kind
    Pyro5.config.THREADPOOL_SIZE = thread_pool_size
    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(Pyro5.api.expose(Pyro5Bench), OBJECT_ID)
    conn.send(("uri", str(uri), os.getpid(), type(daemon.transportServer).__name__))
    _watch_parent(conn, lambda: os._exit(0))
    daemon.requestLoop()
    os._exit(0)


class Pyro5ServerProc(ServerProc):
    """A Pyro5 daemon subprocess (``wait_ready`` and ``stop`` as for the others)."""

    def __init__(self, ctx: Any, kind: str, thread_pool_size: int):
        self.kind = kind
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=pyro5_server_main, name="bench-pyro5-" + kind,
                                args=(kind, child_conn, thread_pool_size), daemon=True)
        self.proc.start()
        child_conn.close()
        self.uri = ""
        self.pid = 0
        self.impl = ""


def start_pyro5_servers(ctx: Any, kinds: Any, thread_pool_size: int,
                        registry: list[ServerProc]) -> dict[str, ServerProc]:
    import Pyro5.api

    servers: dict[str, ServerProc] = {}
    for kind in kinds:
        server = Pyro5ServerProc(ctx, kind, thread_pool_size)
        registry.append(server)
        servers[kind] = server
    for server in servers.values():
        server.wait_ready()
    for server in servers.values():  # everyone answers a real Pyro5 proxy before measuring
        with Pyro5.api.Proxy(server.uri) as proxy:
            proxy._pyroTimeout = 30
            assert proxy.add(1, 2) == 3
    return servers


# --------------------------------------------------------------------------------------------
# measuring inside a client process


def proc_status(*fields: str) -> list[int]:
    """Integer fields of /proc/self/status (threads, context switches)."""
    found = dict.fromkeys(fields, -1)
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in found:
                found[name] = int(value.split()[0])
    return [found[f] for f in fields]


def os_threads() -> int:
    """Threads of this process as the kernel counts them."""
    return proc_status("Threads")[0]


def context_switches() -> int:
    """Voluntary + involuntary context switches of this process so far, all its threads
    included, also those that have exited (getrusage)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw + usage.ru_nivcsw


class Meter:
    """One measured window: wall time, this process's CPU, the server's CPU, threads."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.py_threads = threading.active_count()
        self.kernel_threads = os_threads()
        self.errors: list[str] = []

    def start(self) -> None:
        self.server_cpu0 = cpu_seconds(self.server_pid)
        self.switches0 = context_switches()
        self.times0 = os.times()
        self.cpu0 = time.process_time()
        self.t0 = time.perf_counter()

    def sample_threads(self) -> None:
        self.py_threads = max(self.py_threads, threading.active_count())
        self.kernel_threads = max(self.kernel_threads, os_threads())

    def error(self, what: Any) -> None:
        if len(self.errors) < 5:
            self.errors.append(str(what)[:300])

    def result(self, calls: int, elapsed: float, error_count: int) -> dict[str, Any]:
        cpu = time.process_time() - self.cpu0
        times = os.times()
        server_cpu = cpu_seconds(self.server_pid) - self.server_cpu0
        switches = context_switches() - self.switches0  # threads that exited are not counted
        per_call = 1e6 / max(1, calls)
        return {"calls": calls, "elapsed": elapsed, "rate": calls / elapsed if elapsed else 0.0,
                "client_us": cpu * per_call,
                "client_user_us": (times.user - self.times0.user) * per_call,
                "client_sys_us": (times.system - self.times0.system) * per_call,
                "switches_per_call": switches / max(1, calls),
                "server_us": server_cpu / max(1, calls) * 1e6,
                "threads": self.py_threads, "kernel_threads": self.kernel_threads,
                "errors": error_count, "error_samples": self.errors}


def run_blocking(uri: str, server_pid: int, duration: float, spec: dict[str, Any]) -> Any:
    if spec.get("pyro_version") == 5:
        import Pyro5.api

        proxy: Any = Pyro5.api.Proxy(uri)
    else:
        proxy = Pyro4.Proxy(uri)
    proxy._pyroTimeout = CALL_TIMEOUT
    try:
        proxy._pyroBind()
        add = proxy.add
        warm_until = time.perf_counter() + WARMUP_SECONDS
        for _ in range(100_000):
            add(1, 2)
            if time.perf_counter() >= warm_until:
                break
        meter = Meter(server_pid)
        calls = errors = 0
        meter.start()
        deadline = meter.t0 + duration
        now = meter.t0
        while now < deadline and calls < 100_000_000:
            if add(1, 2) != 3:
                errors += 1
            calls += 1
            now = time.perf_counter()
        meter.sample_threads()
        return meter.result(calls, now - meter.t0, errors)
    finally:
        proxy._pyroRelease()


def run_async(uri: str, server_pid: int, duration: float, spec: dict[str, Any]) -> Any:
    """Pyro4's async proxy: a thread and a fresh connection per call (Pyro4's design)."""
    proxy = Pyro4.Proxy(uri)
    proxy._pyroTimeout = CALL_TIMEOUT
    proxy._pyroBind()  # metadata once; the per-call copies inherit it
    proxy._pyroAsync()
    done: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def issue() -> None:
        future = proxy.add(1, 2)
        future.iferror(done.put)
        future.then(done.put)

    def window(seconds: float, meter: Meter | None) -> tuple[int, int, float]:
        calls = errors = outstanding = 0
        start = time.perf_counter()
        deadline = start + seconds
        last = start
        for _ in range(WINDOW):
            issue()
            outstanding += 1
        while outstanding and calls < 10_000_000:
            try:
                value = done.get(timeout=CALL_TIMEOUT + 5)
            except queue.Empty:
                raise RuntimeError("async proxy: no completion in %.0f s" % CALL_TIMEOUT)
            outstanding -= 1
            if value != 3:
                errors += 1
                if meter is not None:
                    meter.error(repr(value))
            now = time.perf_counter()
            if now < deadline:
                calls += 1
                last = now
                if meter is not None and calls % 64 == 0:
                    meter.sample_threads()
                issue()
                outstanding += 1
        return calls, errors, last - start

    window(WARMUP_SECONDS, None)
    meter = Meter(server_pid)
    meter.start()
    calls, errors, _ = window(duration, meter)
    return meter.result(calls, duration, errors)


async def drive_window(reactor: Any, call: Callable[[], Any], seconds: float,
                       meter: Meter | None) -> tuple[int, int]:
    """Keep WINDOW Deferred calls in flight for ``seconds``; completions inside the window
    are counted; then wait for the outstanding ones."""
    from twisted.internet import defer

    finished: defer.Deferred[None] = defer.Deferred()
    state = {"calls": 0, "errors": 0, "outstanding": 0}
    deadline = time.perf_counter() + seconds

    def issue() -> None:
        state["outstanding"] += 1
        call().addCallbacks(ok, failed)

    def ok(value: Any) -> None:
        if value != 3:
            state["errors"] += 1
            if meter is not None:
                meter.error(repr(value))
        after()

    def failed(failure: Any) -> None:
        state["errors"] += 1
        if meter is not None:
            meter.error(failure.getErrorMessage())
        after()

    def after() -> None:
        state["outstanding"] -= 1
        if time.perf_counter() < deadline and state["calls"] < 10_000_000:
            state["calls"] += 1
            if meter is not None and state["calls"] % 256 == 0:
                meter.sample_threads()
            issue()
        elif not state["outstanding"] and not finished.called:
            finished.callback(None)

    for _ in range(WINDOW):
        issue()
    await finished.addTimeout(seconds + CALL_TIMEOUT + 10, reactor)
    return state["calls"], state["errors"]


async def run_pds(reactor: Any, uri: str, server_pid: int, duration: float,
                  spec: dict[str, Any]) -> Any:
    from pyro.proxy import PyroDeferredService

    if spec.get("pyro_version") == 5:
        import Pyro5.api

        wrapped: Any = Pyro5.api.Proxy(uri)
    else:
        wrapped = Pyro4.Proxy(uri)
    wrapped._pyroTimeout = CALL_TIMEOUT
    service = PyroDeferredService(wrapped, reactor=reactor, max_workers=spec["workers"])
    try:
        await drive_window(reactor, lambda: service.add(1, 2), WARMUP_SECONDS, None)
        meter = Meter(server_pid)
        meter.start()
        calls, errors = await drive_window(reactor, lambda: service.add(1, 2), duration, meter)
        return meter.result(calls, duration, errors)
    finally:
        await service.close()


async def run_dp(reactor: Any, uri: str, server_pid: int, duration: float,
                 spec: dict[str, Any]) -> Any:
    from pyro.client import DeferredProxy

    proxy = DeferredProxy(uri, reactor=reactor, max_connections=spec["connections"],
                          max_in_flight=WINDOW, timeout=CALL_TIMEOUT,
                          pyro_version=spec.get("pyro_version", 4))
    try:
        await proxy.connect()
        await drive_window(reactor, lambda: proxy.add(1, 2), WARMUP_SECONDS, None)
        meter = Meter(server_pid)
        meter.start()
        calls, errors = await drive_window(reactor, lambda: proxy.add(1, 2), duration, meter)
        result = meter.result(calls, duration, errors)
        result["connections"] = len(proxy._connections)
        return result
    finally:
        await proxy.close()


def burst_result(meter: Meter, times: list[float], errors: int, issued: float,
                 peak: dict[str, int], open_before: int) -> dict[str, Any]:
    """What a burst phase reports: ``times`` are the replies' arrival after the first call."""
    result = meter.result(len(times), time.perf_counter() - meter.t0, errors)
    result.update(
        ok=len(times) - errors, wall=max(times) if times else None,
        first=min(times) if times else None,
        median=statistics.median(times) if times else None, issued_s=issued,
        peak_in_flight=peak["in_flight"], peak_connections=peak["connections"],
        open_before=open_before, client_cpu_s=result["client_us"] * max(1, result["calls"]) / 1e6)
    return result


async def burst_phase(reactor: Any, proxy: Any, server_pid: int, count: int, slow: float,
                      timeout: float) -> dict[str, Any]:
    """``count`` concurrent ``slow(slow)`` calls issued at once; sampled every 50 ms."""
    from twisted.internet import defer, task

    meter = Meter(server_pid)
    peak = {"in_flight": 0, "connections": 0}
    open_before = len(proxy._ready)

    def sample() -> None:
        meter.sample_threads()
        peak["in_flight"] = max(peak["in_flight"], proxy._in_flight)
        peak["connections"] = max(peak["connections"], len(proxy._ready))

    sampler = task.LoopingCall(sample)
    sampler.clock = reactor
    times: list[float] = []
    errors = 0
    meter.start()
    t0 = meter.t0

    def ok(value: Any) -> None:
        nonlocal errors
        times.append(time.perf_counter() - t0)
        if value != slow:
            errors += 1
            meter.error(repr(value))

    def failed(failure: Any) -> None:
        nonlocal errors
        errors += 1
        meter.error(failure.getErrorMessage())

    calls = []
    for i in range(count):
        calls.append(proxy.slow(slow).addCallbacks(ok, failed))
        if i % 1000 == 999:
            sample()
    issued = time.perf_counter() - t0
    sampler.start(0.05, now=True)
    try:
        await defer.gatherResults(calls).addTimeout(timeout + 30, reactor)
    finally:
        sampler.stop()
    sample()
    return burst_result(meter, times, errors, issued, peak, open_before)


async def run_burst(reactor: Any, uri: str, server_pid: int, duration: float,
                    spec: dict[str, Any]) -> Any:
    """Bursts of ``spec["count"]`` concurrent ``slow(spec["slow"])`` calls: cold and warm on
    one proxy, then on a new proxy whose pool was opened first (``min_connections``)."""
    from pyro.client import DeferredProxy

    proxy = DeferredProxy(uri, reactor=reactor, max_connections=spec["connections"],
                          max_in_flight=spec["in_flight"], timeout=spec["timeout"])
    out: dict[str, Any] = {"count": spec["count"], "slow": spec["slow"],
                           "connections_limit": spec["connections"],
                           "in_flight_limit": spec["in_flight"]}
    try:
        await proxy.connect()
        assert await proxy.add(1, 2) == 3
        for phase in ("cold", "warm"):
            out[phase] = await burst_phase(reactor, proxy, server_pid, spec["count"],
                                           spec["slow"], spec["timeout"])
    finally:
        t0 = time.perf_counter()
        await proxy.close()
        out["close_s"] = time.perf_counter() - t0
    prestarted = DeferredProxy(uri, reactor=reactor, max_connections=spec["connections"],
                               max_in_flight=spec["in_flight"], timeout=spec["timeout"],
                               min_connections=spec["connections"])
    try:
        from twisted.internet import task

        t0 = time.perf_counter()
        await prestarted.connect()
        deadline = t0 + spec["timeout"]
        while len(prestarted._ready) < spec["connections"] and time.perf_counter() < deadline:
            await task.deferLater(reactor, 0.01, lambda: None)
        opened_s = time.perf_counter() - t0
        out["prestarted"] = await burst_phase(reactor, prestarted, server_pid, spec["count"],
                                              spec["slow"], spec["timeout"])
        out["prestarted"]["opened_s"] = opened_s
    finally:
        await prestarted.close()
    return out


async def run_small_burst(reactor: Any, uri: str, server_pid: int, duration: float,
                          spec: dict[str, Any]) -> Any:
    """``spec["count"]`` concurrent ``aslow(spec["slow"])`` calls from a fresh proxy with
    default settings (``spec["connections"]``: a ``max_connections`` to use instead)."""
    import collections

    from twisted.internet import defer

    from pyro.client import DeferredProxy, PyroClientProtocol

    kwargs = {} if spec["connections"] is None else {"max_connections": spec["connections"]}
    proxy = DeferredProxy(uri, reactor=reactor, timeout=spec["timeout"], **kwargs)
    carried: collections.Counter[int] = collections.Counter()  # calls sent per connection
    send = PyroClientProtocol.send

    def counting_send(protocol: Any, call: Any) -> None:
        carried[id(protocol)] += 1
        send(protocol, call)

    times: list[float] = []
    errors: list[str] = []
    PyroClientProtocol.send = counting_send  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()

        def ok(value: Any) -> None:
            times.append(time.perf_counter() - t0)
            if value != spec["slow"]:
                errors.append(repr(value))

        calls = [proxy.aslow(spec["slow"]).addCallbacks(
            ok, lambda f: errors.append(f.getErrorMessage())) for _ in range(spec["count"])]
        await defer.gatherResults(calls).addTimeout(spec["timeout"] + 30, reactor)
    finally:
        PyroClientProtocol.send = send  # type: ignore[method-assign]
        await proxy.close()
    return {"ok": len(times) - len(errors), "errors": errors[:5],
            "wall": max(times) if times else None, "first": min(times) if times else None,
            "median": statistics.median(times) if times else None,
            "per_connection": sorted(carried.values(), reverse=True),
            "max_connections": proxy._pool.max_connections
            if hasattr(proxy, "_pool") else proxy._max_connections}


def _asyncio_run(spec: dict[str, Any], main: Any) -> Any:
    """``asyncio.run(main())`` on the spec's loop (uvloop's for ``reactor="uvloop"``)."""
    import asyncio

    if spec.get("reactor") == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(main())


async def aio_window(proxy: Any, seconds: float, meter: Meter | None) -> tuple[int, int]:
    """WINDOW coroutines, each awaiting one ``add(1, 2)`` after the other, for ``seconds``."""
    import asyncio

    deadline = time.perf_counter() + seconds
    state = {"calls": 0, "errors": 0}

    async def lane() -> None:
        while time.perf_counter() < deadline and state["calls"] < 10_000_000:
            try:
                value = await proxy.add(1, 2)
                if value != 3:
                    state["errors"] += 1
            except Exception as exc:
                state["errors"] += 1
                if meter is not None:
                    meter.error(str(exc))
            state["calls"] += 1
            if meter is not None and state["calls"] % 256 == 0:
                meter.sample_threads()

    await asyncio.gather(*(lane() for _ in range(WINDOW)))
    return state["calls"], state["errors"]


def run_aio(uri: str, server_pid: int, duration: float, spec: dict[str, Any]) -> Any:
    """``pyro.aio.Proxy`` in a plain asyncio program: WINDOW calls in flight."""
    import pyro.aio

    async def main() -> Any:
        async with pyro.aio.Proxy(uri, max_connections=spec["connections"],
                                  max_in_flight=WINDOW, timeout=CALL_TIMEOUT) as proxy:
            await proxy.connect()
            await aio_window(proxy, WARMUP_SECONDS, None)
            meter = Meter(server_pid)
            meter.start()
            calls, errors = await aio_window(proxy, duration, meter)
            result = meter.result(calls, duration, errors)
            result["connections"] = len(proxy._proxy._connections)
            return result

    return _asyncio_run(spec, main)


async def aio_burst_phase(proxy: Any, server_pid: int, count: int, slow: float,
                          timeout: float) -> dict[str, Any]:
    """``count`` concurrent ``slow(slow)`` calls of a ``pyro.aio.Proxy``, gathered at once."""
    import asyncio

    native = proxy._proxy
    meter = Meter(server_pid)
    peak = {"in_flight": 0, "connections": 0}
    open_before = len(native._ready)

    def sample() -> None:
        meter.sample_threads()
        peak["in_flight"] = max(peak["in_flight"], native._in_flight)
        peak["connections"] = max(peak["connections"], len(native._ready))

    async def sampler() -> None:
        while True:
            sample()
            await asyncio.sleep(0.05)

    times: list[float] = []
    errors = 0
    meter.start()
    t0 = meter.t0

    def done(future: Any) -> None:
        nonlocal errors
        times.append(time.perf_counter() - t0)
        if future.cancelled() or future.exception() is not None or future.result() != slow:
            errors += 1
            meter.error(repr(future))

    calls = []
    for i in range(count):
        call = proxy.slow(slow)
        call.add_done_callback(done)
        calls.append(call)
        if i % 1000 == 999:
            sample()
    issued = time.perf_counter() - t0
    sampling = asyncio.ensure_future(sampler())
    try:
        await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout + 30)
    finally:
        sampling.cancel()
    sample()
    return burst_result(meter, times, errors, issued, peak, open_before)


def run_aio_burst(uri: str, server_pid: int, duration: float, spec: dict[str, Any]) -> Any:
    """The burst of (2), cold then warm, from a ``pyro.aio.Proxy`` in an asyncio program."""
    import pyro.aio

    async def main() -> Any:
        out: dict[str, Any] = {"count": spec["count"], "slow": spec["slow"]}
        async with pyro.aio.Proxy(uri, max_connections=spec["connections"],
                                  max_in_flight=spec["in_flight"],
                                  timeout=spec["timeout"]) as proxy:
            await proxy.connect()
            assert await proxy.add(1, 2) == 3
            for phase in ("cold", "warm"):
                out[phase] = await aio_burst_phase(proxy, server_pid, spec["count"],
                                                   spec["slow"], spec["timeout"])
        return out

    return _asyncio_run(spec, main)


BURST_PHASES = ("cold", "warm", "prestarted")
SYNC_RUNNERS = {"blocking": run_blocking, "async": run_async, "aio": run_aio,
                "aio_burst": run_aio_burst,
                "blocking5": lambda uri, pid, duration, spec: run_blocking(
                    uri, pid, duration, {**spec, "pyro_version": 5})}
#: Runners that make their own asyncio program (pyro.aio installs the reactor there).
AIO_RUNNERS = ("aio", "aio_burst")
REACTOR_RUNNERS = {"pds": run_pds, "dp": run_dp, "burst": run_burst,
                   "small_burst": run_small_burst}


def client_main(conn: Any, spec: dict[str, Any], uri: str, server_pid: int, duration: float,
                profile_path: str | None) -> None:
    """A client process: one measurement, its result through ``conn``, then exit."""
    raise_nofile()
    # Never outlive the parent, nor the planned work by much; no watchdog thread (this
    # process's threads are counted): the kernel kills us when the parent dies
    # (PR_SET_PDEATHSIG), SIGALRM's default action after the time limit.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    signal.alarm(int(duration + 2 * CELL_LIMIT))
    profiler = cProfile.Profile() if profile_path else None
    try:
        reactor: Any = None
        if spec["kind"] not in AIO_RUNNERS:
            reactor = install_reactor(spec.get("reactor", "epoll"))
        if profiler is not None:
            profiler.enable()
        if spec["kind"] in SYNC_RUNNERS:
            result = SYNC_RUNNERS[spec["kind"]](uri, server_pid, duration, spec)
        else:
            result = _run_in_reactor(reactor, REACTOR_RUNNERS[spec["kind"]], uri, server_pid,
                                     duration, spec)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)
        from twisted.internet import reactor as installed  # (pyro.aio's, for AIO_RUNNERS)

        result["reactor"] = "%s.%s" % (type(installed).__module__, type(installed).__name__)
        conn.send(("result", result))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()
        os._exit(0)  # Pyro4's async threads are daemons; no need to wait for them


def _run_in_reactor(reactor: Any, runner: Any, uri: str, server_pid: int, duration: float,
                    spec: dict[str, Any]) -> Any:
    from twisted.internet import defer

    outcome: dict[str, Any] = {}

    def start() -> None:
        d = defer.ensureDeferred(runner(reactor, uri, server_pid, duration, spec))

        def done(result: Any) -> None:
            outcome["result"] = result

        def failed(failure: Any) -> None:
            outcome["error"] = failure.getTraceback()

        d.addCallbacks(done, failed)
        d.addBoth(lambda _: reactor.stop())

    def give_up() -> None:
        outcome.setdefault("error", "gave up after %.0f s" % (duration + CELL_LIMIT))
        reactor.stop()

    reactor.callWhenRunning(start)
    limit = reactor.callLater(duration + CELL_LIMIT, give_up)
    reactor.run(installSignalHandlers=False)
    if limit.active():
        limit.cancel()
    if "error" in outcome:
        raise RuntimeError(outcome["error"])
    return outcome["result"]


def run_client(ctx: Any, spec: dict[str, Any], server: ServerProc, duration: float,
               profile_path: str | None = None) -> dict[str, Any]:
    """Run one measurement in a fresh client process; its result dict."""
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=client_main, name="bench-client-" + spec["kind"],
                       args=(child, spec, server.uri, server.pid, duration, profile_path),
                       daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(duration + CELL_LIMIT + REPLY_TIMEOUT):
            raise RuntimeError("client %s did not answer" % spec["kind"])
        answer = parent.recv()
        if answer[0] == "error":
            raise RuntimeError("client %s failed:\n%s" % (spec["kind"], answer[1]))
        return answer[1]
    finally:
        proc.join(10.0)
        if proc.is_alive():
            proc.kill()
            proc.join(3.0)
        parent.close()


# --------------------------------------------------------------------------------------------
# the two measurements


def measure_throughput(ctx: Any, opts: argparse.Namespace, registry: list[ServerProc],
                       results: dict[str, Any]) -> None:
    print("\n== (1) add(1, 2) throughput, %s s per run, %d round(s), median ==" % (
        opts.duration, opts.rounds), flush=True)
    servers = start_servers(ctx, opts.servers, 16, registry)
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        names = list(opts.variants)
        for rnd in range(opts.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for kind in opts.servers:
                for name in order:
                    before = listen_overflows()
                    got = run_client(ctx, opts.variants[name], servers[kind], opts.duration)
                    after = listen_overflows()
                    got["listen_overflows"] = (after - before if None not in (before, after)
                                               else None)
                    runs.setdefault("%s/%s" % (kind, name), []).append(got)
                    print("  %-22s %-50s round %d: %8.0f calls/s  client %4.0f us/call "
                          "(user %3.0f, sys %3.0f, %4.1f switches)  server %4.0f us/call  "
                          "threads %3d (kernel %3d)%s%s" % (
                              SERVER_LABELS[kind], opts.variants[name]["label"], rnd + 1,
                              got["rate"], got["client_us"], got["client_user_us"],
                              got["client_sys_us"], got["switches_per_call"],
                              got["server_us"], got["threads"], got["kernel_threads"],
                              "  errors %d %s" % (got["errors"], got["error_samples"])
                              if got["errors"] else "",
                              "  SYNs dropped %d" % got["listen_overflows"]
                              if got["listen_overflows"] else ""), flush=True)
    finally:
        stop_servers(servers, registry)
    summary = {}
    for key, got in runs.items():
        summary[key] = {
            "rate": statistics.median(g["rate"] for g in got),
            "client_us": statistics.median(g["client_us"] for g in got),
            "client_user_us": statistics.median(g["client_user_us"] for g in got),
            "client_sys_us": statistics.median(g["client_sys_us"] for g in got),
            "switches_per_call": statistics.median(g["switches_per_call"] for g in got),
            "server_us": statistics.median(g["server_us"] for g in got),
            "threads": max(g["threads"] for g in got),
            "kernel_threads": max(g["kernel_threads"] for g in got),
            "errors": sum(g["errors"] for g in got),
            "runs": got,
        }
    results["throughput"] = summary


def measure_pyro5(ctx: Any, opts: argparse.Namespace, registry: list[ServerProc],
                  results: dict[str, Any]) -> None:
    """(4): the Pyro5 variants against Pyro5's own daemons, as (1) does for Pyro4."""
    print("\n== (4) add(1, 2) throughput against Pyro5's daemons, %s s per run, %d round(s), "
          "median ==" % (opts.duration, opts.rounds), flush=True)
    servers = start_pyro5_servers(ctx, opts.pyro5_servers, 16, registry)
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        names = list(PYRO5_VARIANTS)
        for rnd in range(opts.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for kind in opts.pyro5_servers:
                for name in order:
                    got = run_client(ctx, PYRO5_VARIANTS[name], servers[kind], opts.duration)
                    runs.setdefault("%s/%s" % (kind, name), []).append(got)
                    print("  %-22s %-62s round %d: %8.0f calls/s  client %4.0f us/call  "
                          "server %4.0f us/call  threads %3d%s" % (
                              PYRO5_SERVER_LABELS[kind], PYRO5_VARIANTS[name]["label"],
                              rnd + 1, got["rate"], got["client_us"], got["server_us"],
                              got["threads"],
                              "  errors %d %s" % (got["errors"], got["error_samples"])
                              if got["errors"] else ""), flush=True)
    finally:
        stop_servers(servers, registry)
    results["pyro5"] = {key: {
        "rate": statistics.median(g["rate"] for g in got),
        "client_us": statistics.median(g["client_us"] for g in got),
        "server_us": statistics.median(g["server_us"] for g in got),
        "threads": max(g["threads"] for g in got),
        "errors": sum(g["errors"] for g in got),
        "runs": got} for key, got in runs.items()}


def pyro5_report(results: dict[str, Any], opts: argparse.Namespace) -> str:
    kinds = list(opts.pyro5_servers)
    cells = results["pyro5"]
    header = (["measurement (4)"] + [PYRO5_SERVER_LABELS[k] for k in kinds]
              + ["ratio on " + k for k in kinds] + ["target", "result"])
    rows = []
    for name, spec in PYRO5_VARIANTS.items():
        ratios, oks = [], []
        for kind in kinds:
            value = cells.get("%s/%s" % (kind, name), {}).get("rate")
            ref = cells.get("%s/p5blocking" % kind, {}).get("rate")
            if name == "p5blocking":
                ratios.append("1.00x (baseline)")
                continue
            ratios.append("%s blocking" % _ratio(value, ref))
            if name == "p5dp" and value is not None and ref:
                oks.append("%s %s" % (kind, verdict(value / ref >= 3.0)))
        rows.append(["%s: calls/s" % spec["label"]]
                    + [_f(cells.get("%s/%s" % (k, name), {}).get("rate"), 0) for k in kinds]
                    + ratios + [">= 3x blocking" if name == "p5dp" else "", "; ".join(oks)])
    for what, field in (("client CPU per call (us)", "client_us"),
                        ("server CPU per call (us)", "server_us"),
                        ("client threads, max", "threads")):
        rows.append(["%s: %s" % (what, " / ".join(v["short"] for v in PYRO5_VARIANTS.values()))]
                    + [" / ".join(_f(cells["%s/%s" % (k, n)][field], 0)
                                  if "%s/%s" % (k, n) in cells else "-"
                                  for n in PYRO5_VARIANTS) for k in kinds]
                    + [""] * len(kinds) + ["", ""])
    errors = sum(cell["errors"] for cell in cells.values())
    rows.append(["failed calls, all variants"] + [""] * (2 * len(kinds))
                + ["0", "%d %s" % (errors, verdict(not errors))])
    return markdown_table(header, rows)


def measure_burst(ctx: Any, opts: argparse.Namespace, registry: list[ServerProc],
                  results: dict[str, Any]) -> None:
    print("\n== (2) %d concurrent slow(%s) calls from one DeferredProxy to ours ==" % (
        opts.burst, opts.slow), flush=True)
    servers = start_servers(ctx, ["ours"], 16, registry)
    spec = {"kind": "burst", "count": opts.burst, "slow": opts.slow,
            "connections": opts.burst_connections, "in_flight": opts.burst,
            "timeout": 60.0 + opts.burst * opts.slow / opts.burst_connections}
    extra: dict[str, dict[str, Any]] = {}
    try:
        got = run_client(ctx, spec, servers["ours"], spec["timeout"] * 2 + 60)
        for reactor in opts.reactors[1:]:
            for kind, name in (("burst", "dp@" + reactor), ("aio_burst", "aio@" + reactor)):
                extra[name] = run_client(ctx, dict(spec, kind=kind, reactor=reactor),
                                         servers["ours"], spec["timeout"] * 2 + 60)
    finally:
        stop_servers(servers, registry)
    for name, other in extra.items():
        for phase in ("cold", "warm"):
            r = other[phase]
            print("  %s, %s: %d/%d ok in %s s (first reply %s s, median %s s); threads %d "
                  "Python, %d kernel (max); client CPU %.2f s%s" % (
                      name, phase, r["ok"], opts.burst, _f(r["wall"], 3), _f(r["first"], 3),
                      _f(r["median"], 3), r["threads"], r["kernel_threads"], r["client_cpu_s"],
                      ("; errors %d %s" % (r["errors"], r["error_samples"]))
                      if r["errors"] else ""), flush=True)
    results["burst_reactors"] = extra
    for phase in BURST_PHASES:
        r = got[phase]
        print("  %s (%d connections open before): %d/%d ok in %s s (first reply %s s, median "
              "%s s; calls issued in %.3f s); peak %d sent and unanswered, %d connections; "
              "threads: %d Python, %d kernel (max); client CPU %.2f s%s" % (
                  phase, r["open_before"], r["ok"], opts.burst, _f(r["wall"], 3), _f(r["first"], 3),
                  _f(r["median"], 3), r["issued_s"], r["peak_in_flight"],
                  r["peak_connections"], r["threads"], r["kernel_threads"], r["client_cpu_s"],
                  ("; errors %d %s" % (r["errors"], r["error_samples"])) if r["errors"] else ""),
              flush=True)
        if "opened_s" in r:
            print("    (%s: its pool was opened beforehand in %.2f s)" % (phase, r["opened_s"]),
                  flush=True)
    print("  closing the proxy (%d connections): %.2f s" % (
        max(got["cold"]["peak_connections"], got["warm"]["peak_connections"]), got["close_s"]),
        flush=True)
    results["burst"] = got


SMALL_BURST_SERVERS = ("ours", "thread", "multiplex")
SMALL_BURST_LABELS = {"ours": "ours (async def servant)", "thread": "Pyro4 thread daemon",
                      "multiplex": "Pyro4 multiplex daemon"}


def even_spread(kind: str, calls: int, connections: int, slow: float) -> float:
    """The wall time of ``calls`` concurrent ``slow``-second calls spread evenly over
    ``connections`` connections, as each server runs them (see (3) in the docstring)."""
    if kind == "ours":
        return slow
    if kind == "thread":
        return -(-calls // connections) * slow
    return calls * slow


def measure_small_burst(ctx: Any, opts: argparse.Namespace, registry: list[ServerProc],
                        results: dict[str, Any]) -> None:
    n, slow = opts.small_burst, opts.slow
    print("\n== (3) %d concurrent aslow(%s) calls from a default DeferredProxy ==" % (n, slow),
          flush=True)
    servers = start_servers(ctx, SMALL_BURST_SERVERS, max(16, n + 4), registry)
    got: dict[str, Any] = {}
    try:
        for setting in (None, n):
            for kind in SMALL_BURST_SERVERS:
                spec = {"kind": "small_burst", "count": n, "slow": slow, "connections": setting,
                        "timeout": 60.0 + n * slow}
                r = run_client(ctx, spec, servers[kind], spec["timeout"] + 60)
                got["%s/%s" % (kind, "default" if setting is None else "wide")] = r
                print("  %s, max_connections=%d: %d/%d ok in %s s (first %s, median %s); "
                      "calls per connection %s%s" % (
                          kind, r["max_connections"], r["ok"], n, _f(r["wall"], 2),
                          _f(r["first"], 2), _f(r["median"], 2), r["per_connection"],
                          "; errors %s" % r["errors"] if r["errors"] else ""), flush=True)
    finally:
        stop_servers(servers, registry)
    results["small_burst"] = {"count": n, "slow": slow, "runs": got}


def small_burst_report(small: dict[str, Any]) -> str:
    n, slow, runs = small["count"], small["slow"], small["runs"]
    kinds = SMALL_BURST_SERVERS
    rows: list[list[str]] = []
    for variant, what in (("default", "default DeferredProxy()"),
                          ("wide", "DeferredProxy(max_connections=%d)" % n)):
        cells = [runs.get("%s/%s" % (kind, variant)) for kind in kinds]
        limit = next((c["max_connections"] for c in cells if c), 4)
        rows.append(["(3) %s: %d concurrent aslow(%s) calls, wall time (s) (first / median)"
                     % (what, n, slow)] +
                    ["%s (%s / %s)" % (_f(c["wall"], 2), _f(c["first"], 2), _f(c["median"], 2))
                     if c else "-" for c in cells] + ["", ""])
        rows.append(["(3) %s: calls per connection" % what] +
                     [" ".join(str(k) for k in c["per_connection"]) if c else "-"
                      for c in cells] + ["", ""])
        bounds = [even_spread(kind, n, limit, slow) for kind in kinds]
        rows.append(["(3) %s: spread evenly over its %d connections, each server's way (s)"
                     % (what, limit)] + [_f(b, 2) for b in bounds] + ["", ""])
        if variant == "default":
            oks = []
            for kind, cell, bound in zip(kinds, cells, bounds, strict=True):
                if cell is None or cell["wall"] is None:
                    continue
                need = 2 * slow if kind == "ours" else bound * 1.1 + 0.2
                oks.append("%s %s" % (kind, verdict(cell["ok"] == n and cell["wall"] <= need)))
            rows.append(["(3) %s: target" % what, "", "", "",
                         "ours <= %s s; Pyro4's <= even spread" % _f(2 * slow, 1),
                         "; ".join(oks)])
    header = ["measurement"] + [SMALL_BURST_LABELS[k] for k in kinds] + ["target", "result"]
    return markdown_table(header, rows)


def run_profile(ctx: Any, opts: argparse.Namespace) -> None:
    """One variant against Pyro4's multiplex daemon with the client under cProfile."""
    registry: list[ServerProc] = []
    path = os.path.join(tempfile.gettempdir(), "bench_client_%s.prof" % opts.profile)
    if opts.profile == "burst":
        spec = {"kind": "burst", "count": opts.burst, "slow": opts.slow,
                "connections": opts.burst_connections, "in_flight": opts.burst,
                "timeout": 60.0 + opts.burst * opts.slow / opts.burst_connections}
        kind = "ours"
    else:
        spec, kind = VARIANTS[opts.profile], opts.servers[0]
    try:
        servers = start_servers(ctx, [kind], 16, registry)
        got = run_client(ctx, spec, servers[kind], opts.duration if opts.profile != "burst"
                         else spec["timeout"] * 2 + 60, path)
        print("%s against %s under cProfile (not comparable): %s" % (
            opts.profile, kind, {k: v for k, v in got.items() if k not in ("runs",)}))
    finally:
        for server in list(registry):
            server.stop()
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    print("profile written to", path)


# --------------------------------------------------------------------------------------------
# report


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def report(results: dict[str, Any], opts: argparse.Namespace) -> str:
    kinds = list(opts.servers)
    header = ["measurement"] + [SERVER_LABELS[k] for k in kinds] + [
        "ratio on " + ("multiplex" if k == "multiplex" else k) for k in kinds] + [
        "target", "result"]
    rows: list[list[str]] = []
    tp = results.get("throughput")
    if tp:
        def rate(kind: str, name: str) -> float | None:
            cell = tp.get("%s/%s" % (kind, name))
            return cell["rate"] if cell else None

        targets = {"pds4": ("async", 5.0), "pds8": ("async", 5.0), "dp": ("blocking", 3.0)}
        for name, spec in opts.variants.items():
            base, need = targets.get(name, ("blocking", None))
            ratios, oks = [], []
            for kind in kinds:
                value, ref = rate(kind, name), rate(kind, base)
                if name == "blocking":
                    ratios.append("1.00x (baseline)")
                    continue
                ratios.append("%s %s" % (_ratio(value, ref), base))
                if need is not None and value is not None and ref:
                    oks.append("%s %s" % (kind, verdict(value / ref >= need)))
            rows.append(["(1) %s: calls/s" % spec["label"]] +
                         [_f(rate(k, name), 0) for k in kinds] + ratios +
                         [">= %.0fx %s" % (need, base) if need else "",
                          "; ".join(oks)])
        order = " / ".join(spec["short"] for spec in opts.variants.values())
        def user_sys(cell: dict[str, Any]) -> str:
            return "%.0f+%.0f" % (cell["client_user_us"], cell["client_sys_us"])

        for what, show in (
                ("client CPU per call, user+sys (us)", user_sys),
                ("client context switches per call", lambda c: _f(c["switches_per_call"], 1)),
                ("server CPU per call (us)", lambda c: _f(c["server_us"], 0)),
                ("client threads, max (threading)", lambda c: str(c["threads"]))):
            rows.append(["(1) %s: %s" % (what, order)] + [
                " / ".join(show(tp["%s/%s" % (k, n)]) if "%s/%s" % (k, n) in tp else "-"
                           for n in opts.variants) for k in kinds] + [""] * len(kinds) + ["", ""])
        errors = {k: sum(tp["%s/%s" % (k, n)]["errors"] for n in opts.variants
                         if "%s/%s" % (k, n) in tp) for k in kinds}
        rows.append(["(1) failed calls, all variants"] + [str(errors[k]) for k in kinds] +
                     [""] * len(kinds) + ["0", verdict(not any(errors.values()))])
    burst = results.get("burst")
    if burst:
        ours = kinds.index("ours") if "ours" in kinds else None

        def cells(text: str) -> list[str]:
            out = ["-"] * len(kinds)
            out[ours if ours is not None else 0] = text
            return out + [""] * len(kinds)

        n = burst["count"]
        for phase in BURST_PHASES:
            r = burst[phase]
            rows.append(["(2) %d concurrent slow(%s s) calls, %s (%d connection%s open "
                         "before): succeeded" % (n, burst["slow"], phase, r["open_before"],
                                                 "" if r["open_before"] == 1 else "s")] + cells("%d/%d" % (r["ok"], n)) +
                ["all %d" % n, verdict(r["ok"] == n and not r["errors"])])
            if "opened_s" in r:
                rows.append(["(2) %s: opening the pool beforehand, min_connections=%d (s)"
                             % (phase, r["open_before"])] + cells(_f(r["opened_s"], 2))
                            + ["", ""])
            rows.append(["(2) %s: wall time, first call issued to last reply (s)" % phase] +
                         cells("%s (first reply %s, median %s)" % (
                             _f(r["wall"], 2), _f(r["first"], 2), _f(r["median"], 2))) +
                         ["", ""])
            rows.append(["(2) %s: most calls sent and unanswered at once; connections" %
                         phase] + cells("%d; %d" % (r["peak_in_flight"],
                                                    r["peak_connections"])) + ["", ""])
            rows.append(["(2) %s: client threads during the burst, max (threading / kernel)"
                         % phase] + cells("%d / %d" % (r["threads"], r["kernel_threads"])) +
                         ["1 / 1 (no thread per call)",
                          verdict(r["threads"] == 1 and r["kernel_threads"] == 1)])
            rows.append(["(2) %s: client CPU for the burst (s); per call (us)" % phase] +
                         cells("%.2f; %.0f" % (r["client_cpu_s"], r["client_us"])) + ["", ""])
        for name, other in results.get("burst_reactors", {}).items():
            for phase in ("cold", "warm"):
                r = other[phase]
                rows.append(["(2) %s, %s: succeeded; wall (s); client CPU per call (us); "
                             "threads" % (name, phase)]
                            + cells("%d/%d; %s; %.0f; %d / %d" % (
                                r["ok"], n, _f(r["wall"], 2), r["client_us"], r["threads"],
                                r["kernel_threads"]))
                            + ["all %d" % n, verdict(r["ok"] == n and not r["errors"])])
    return markdown_table(header, rows)


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="reduced run for smoke-testing (under a minute)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per throughput run (default 3, quick 1)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="throughput runs per cell, median reported (default 3, quick 1)")
    parser.add_argument("--only", default="1,2,3,4",
                        help="sections to run: any of 1, 2, 3, 4, comma-separated")
    parser.add_argument("--pyro5-servers", default="multiplex,thread",
                        help="Pyro5 daemons for (4): multiplex, thread or both")
    parser.add_argument("--servers", default="multiplex,ours",
                        help="servers for (1): multiplex, ours or both (first = judged)")
    parser.add_argument("--burst", type=int, default=None,
                        help="concurrent calls in (2) (default 10000, quick 2000)")
    parser.add_argument("--burst-connections", type=int, default=None,
                        help="DeferredProxy max_connections in (2) (default: = --burst)")
    parser.add_argument("--slow", type=float, default=0.5,
                        help="seconds the servant's slow() waits in (2) (default 0.5)")
    parser.add_argument("--small-burst", type=int, default=50,
                        help="concurrent calls from a default proxy in (3) (default 50)")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument("--reactors", default="epoll",
                        help="client reactors for (1) and (2), side by side: epoll and any of "
                             "asyncio, uvloop (default epoll)")
    parser.add_argument("--profile", default=None, metavar="VARIANT",
                        help="run one client variant (%s, or burst) under cProfile against "
                             "the first server (burst: ours) and print the client's profile "
                             "(cProfile sees the main thread only: use py-spy for worker "
                             "threads)" % ", ".join(VARIANTS))
    opts = parser.parse_args(argv)
    opts.sections = {s.strip() for s in opts.only.split(",") if s.strip()}
    if not opts.sections or not opts.sections <= {"1", "2", "3", "4"}:
        parser.error("--only takes any of 1, 2, 3, 4 (comma-separated)")
    opts.pyro5_servers = tuple(s.strip() for s in opts.pyro5_servers.split(",") if s.strip())
    if not opts.pyro5_servers or not set(opts.pyro5_servers) <= set(PYRO5_SERVER_KINDS):
        parser.error("--pyro5-servers takes multiplex, thread or both")
    if not 1 <= opts.small_burst <= 500:
        parser.error("--small-burst must be 1..500")
    opts.reactors = tuple(r.strip() for r in opts.reactors.split(",") if r.strip())
    if not opts.reactors or opts.reactors[0] != "epoll" or not set(opts.reactors) <= set(
            REACTORS):
        parser.error("--reactors takes epoll first, then any of asyncio, uvloop")
    opts.variants = dict(VARIANTS)
    for reactor in opts.reactors[1:]:
        opts.variants["dp@" + reactor] = dict(
            VARIANTS["dp"], reactor=reactor, short="DP@" + reactor,
            label="DeferredProxy on the %s reactor, %d in flight" % (reactor, WINDOW))
        opts.variants["aio@" + reactor] = {
            "kind": "aio", "connections": 4, "reactor": reactor, "short": "aio@" + reactor,
            "label": "pyro.aio.Proxy in asyncio.run (%s), %d in flight" % (reactor, WINDOW)}
    opts.servers = tuple(s.strip() for s in opts.servers.split(",") if s.strip())
    if not opts.servers or not set(opts.servers) <= set(SERVER_KINDS):
        parser.error("--servers takes multiplex, ours or both")
    if opts.duration is None:
        opts.duration = 1.0 if opts.quick else 3.0
    if opts.rounds is None:
        opts.rounds = 1 if opts.quick else 3
    if opts.burst is None:
        opts.burst = 2000 if opts.quick else 10000
    if opts.burst_connections is None:
        opts.burst_connections = opts.burst
    if not 0 < opts.duration <= 60:
        parser.error("--duration must be in (0, 60]")
    if not 1 <= opts.rounds <= 10:
        parser.error("--rounds must be 1..10")
    if not 1 <= opts.burst <= 15000 or not 1 <= opts.burst_connections <= opts.burst:
        parser.error("--burst must be 1..15000 and --burst-connections 1..--burst")
    if not 0 < opts.slow <= 5:
        parser.error("--slow must be in (0, 5]")
    if opts.profile and opts.profile not in VARIANTS and opts.profile != "burst":
        parser.error("--profile takes one of %s, burst" % ", ".join(VARIANTS))
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    nofile = raise_nofile()
    ctx = multiprocessing.get_context("spawn")
    if opts.profile:
        run_profile(ctx, opts)
        return 0
    started = time.perf_counter()
    load_before = load_average()
    print("twisted-pyro client benchmark (%s run)" % ("quick" if opts.quick else "full"))
    print("RLIMIT_NOFILE raised to %d/%d in every process" % nofile, flush=True)
    registry: list[ServerProc] = []
    results: dict[str, Any] = {}
    try:
        if "1" in opts.sections:
            measure_throughput(ctx, opts, registry, results)
        if "2" in opts.sections:
            measure_burst(ctx, opts, registry, results)
        if "3" in opts.sections:
            measure_small_burst(ctx, opts, registry, results)
        if "4" in opts.sections:
            measure_pyro5(ctx, opts, registry, results)
    finally:
        for server in list(registry):
            server.stop()
    elapsed = time.perf_counter() - started
    reactor_name = "twisted.internet.epollreactor.EPollReactor"
    for cell in results.get("throughput", {}).values():
        reactor_name = cell["runs"][0].get("reactor", reactor_name)
    print("\n## Machine\n")
    for fact in machine_facts(reactor_name + " (clients and our server)"):
        print("- " + fact)
    print("- every client measurement in a fresh process (spawn) with the epoll reactor "
          "installed (%s); servers in their own processes (Pyro4 multiplex daemon; ours on "
          "epoll); all on 127.0.0.1" % (
              "the @asyncio/@uvloop variants: Twisted's asyncio reactor; aio@: installed by "
              "pyro.aio in asyncio.run" if len(opts.reactors) > 1 else "only"))
    print("- (1) %s s per run after a %.1f s warm-up, %d round(s) per cell, median; %d calls "
          "in flight for the concurrent clients; every proxy with a %.0f s call timeout" % (
              opts.duration, WARMUP_SECONDS, opts.rounds, WINDOW, CALL_TIMEOUT))
    if "2" in opts.sections:
        print("- (2) DeferredProxy(max_connections=%d, max_in_flight=%d, timeout=%.0f s); "
              "servant slow(%s) = task.deferLater on our server" % (
                  opts.burst_connections, opts.burst,
                  60.0 + opts.burst * opts.slow / opts.burst_connections, opts.slow))
    print("- load average (1/5/15 min) at start: %s; at end: %s (the machine is shared: "
          "other processes' load shows up as noise)" % (load_before, load_average()))
    print("- total run time %.0f s\n" % elapsed)
    if "1" in opts.sections or "2" in opts.sections:
        print(report(results, opts))
    if "small_burst" in results:
        print()
        print(small_burst_report(results["small_burst"]))
    if "pyro5" in results:
        print()
        print(pyro5_report(results, opts))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"options": {k: v for k, v in vars(opts).items() if k != "sections"},
                       "results": results}, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
