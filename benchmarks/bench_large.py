#!/usr/bin/env python
"""Large messages: our server (and native client) against Pyro4's daemons, side by side.

Usage::

    python benchmarks/bench_large.py                    # full run, about 2.5 minutes
    python benchmarks/bench_large.py --quick            # smoke test (1 round, short cells)
    python benchmarks/bench_large.py --sizes 16,64 --rounds 5 --json out.json
    python benchmarks/bench_large.py --base-tree /tmp/base   # adds "ours@base": A/B in one run

Rows: ``put`` (the client sends ``put(data)`` with ``len(data)`` = 1, 16 or 64 MiB; the
servant returns ``len(data)``) and ``get`` (the client calls ``get(n)``; the servant returns
``b"x" * n``), each against Pyro4's thread and multiplex daemons and ours, plus client rows:
a 64 MiB ``get`` received by a plain ``Pyro4.Proxy`` and by our ``DeferredProxy`` from the
same server.

Every cell (row x server x round) gets a *fresh* server process and a fresh client process
(multiprocessing, spawn, 127.0.0.1 port 0). The client is a plain blocking ``Pyro4.Proxy``
with the marshal serializer and no ``_pyroTimeout`` (with a timeout, Pyro4 4.82's client
re-copies the rest of a message on every ``send()`` and becomes the bottleneck), one call at a
time. Procedure per cell: the client connects and makes one small call; the parent reads the
server's VmRSS (the baseline) and resets its peak (``/proc/<pid>/clear_refs`` = 5, which resets
VmHWM); the client makes one large warm-up call, then times calls for ``--duration`` seconds
(at least ``--min-calls``); the parent then reads the server's VmHWM. Reported: MB/s (10**6
bytes of payload per second, timed calls only), and the server's peak RSS growth
(VmHWM - baseline, MiB; warm-up call included). Cells are repeated ``--rounds`` times with the
server order rotated; the table shows the median and the range.

Only 127.0.0.1 is used; every child exits when the parent goes away or after a time limit.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import os
import signal
import statistics
import sys
import threading
import time
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MiB = 1 << 20
OBJECT_ID = "large"
PYRO4_KINDS = ("thread", "multiplex")
LABELS = {"thread": "Pyro4 thread", "multiplex": "Pyro4 multiplex", "ours": "ours",
          "base": "ours@base"}
MAX_CHILD_LIFETIME = 600.0
REPLY_TIMEOUT = 180.0

# Targets (defect 3): throughput >= 1.2x the multiplex daemon's at 16 and 64 MiB both ways,
# peak growth <= the multiplex daemon's; DeferredProxy receives a 64 MiB reply at least as
# fast as a Pyro4.Proxy.
TARGET_RATIO = 1.2
TARGET_SIZES = (16, 64)


# --------------------------------------------------------------------------------------------
# child processes


def _die_with_parent(limit: float) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    signal.alarm(int(limit))


def server_main(kind: str, tree: str, conn: Any) -> None:
    """A server process: Pyro4's daemon (``thread``/``multiplex``) or ours from ``tree``."""
    _die_with_parent(MAX_CHILD_LIFETIME)
    import Pyro4

    Pyro4.config.SERIALIZERS_ACCEPTED = {"marshal", "serpent", "json"}

    @Pyro4.expose
    class Large:
        def put(self, data: bytes) -> int:
            return len(data)

        def get(self, size: int) -> bytes:
            return b"x" * size

    if kind in PYRO4_KINDS:
        Pyro4.config.SERVERTYPE = kind
        daemon = Pyro4.Daemon(host="127.0.0.1", port=0)
        uri = daemon.register(Large(), OBJECT_ID)
        conn.send((str(uri), os.getpid(), Pyro4.__file__))
        threading.Thread(target=_stop_on_word, args=(conn,), daemon=True).start()
        daemon.requestLoop()
        os._exit(0)
    sys.path.insert(0, tree)
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    import pyro
    import pyro.protocol

    factory = pyro.protocol.Pyro4ProtocolFactory()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    factory.setAddress("127.0.0.1", port.getHost().port)
    uri = factory.register(Large(), OBJECT_ID)
    conn.send((str(uri), os.getpid(), pyro.__file__))
    threading.Thread(target=_stop_on_word, args=(conn,), daemon=True).start()
    reactor.run(installSignalHandlers=False)
    os._exit(0)


def _stop_on_word(conn: Any) -> None:
    try:
        conn.recv()
    except (EOFError, OSError):
        pass
    os._exit(0)


def client_main(kind: str, tree: str, uri: str, method: str, size: int, duration: float,
                min_calls: int, conn: Any) -> None:
    """A client process: ``pyro4`` (blocking Pyro4.Proxy) or ``dp`` (our DeferredProxy)."""
    _die_with_parent(MAX_CHILD_LIFETIME)
    try:
        if kind == "pyro4":
            result = _client_pyro4(uri, method, size, duration, min_calls, conn)
        else:
            sys.path.insert(0, tree)
            result = _client_dp(uri, method, size, duration, min_calls, conn)
        result["client_peak_mib"] = _status_kib("VmHWM") / 1024
        conn.send(("result", result))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()
        os._exit(0)


def _check(method: str, size: int, value: Any) -> None:
    expected = size if method == "put" else None
    if method == "put" and value != expected:
        raise AssertionError("put returned %r, expected %d" % (value, size))
    if method == "get" and (len(value) != size or value[-1:] not in (b"x", b"")):
        raise AssertionError("get returned %d bytes, expected %d" % (len(value), size))


def _client_pyro4(uri: str, method: str, size: int, duration: float, min_calls: int,
                  conn: Any) -> dict[str, Any]:
    import Pyro4

    Pyro4.config.SERIALIZER = "marshal"
    payload = b"y" * size
    with Pyro4.Proxy(uri) as proxy:
        proxy._pyroSerializer = "marshal"  # and no _pyroTimeout (see the module's doc)

        def one(n: int) -> None:
            if method == "put":
                _check(method, n, proxy.put(payload if n == size else b""))
            else:
                _check(method, n, proxy.get(n))

        one(0)
        conn.send("ready")
        conn.recv()  # the parent read the baseline and reset the server's peak
        one(size)  # warm-up
        times = []
        t0 = time.perf_counter()
        while len(times) < min_calls or time.perf_counter() - t0 < duration:
            t = time.perf_counter()
            one(size)
            times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - t0
    return {"calls": len(times), "elapsed": elapsed, "times": times}


def _client_dp(uri: str, method: str, size: int, duration: float, min_calls: int,
               conn: Any) -> dict[str, Any]:
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import defer, reactor, threads

    from pyro.client import DeferredProxy

    payload = b"y" * size
    outcome: dict[str, Any] = {}

    async def run() -> None:
        proxy = DeferredProxy(uri, reactor=reactor, serializer="marshal", max_connections=1,
                              timeout=None)
        try:
            async def one(n: int) -> None:
                if method == "put":
                    _check(method, n, await proxy.put(payload if n == size else b""))
                else:
                    _check(method, n, await proxy.get(n))

            await one(0)
            await threads.deferToThread(lambda: (conn.send("ready"), conn.recv()))
            await one(size)
            times = []
            t0 = time.perf_counter()
            while len(times) < min_calls or time.perf_counter() - t0 < duration:
                t = time.perf_counter()
                await one(size)
                times.append(time.perf_counter() - t)
            outcome["result"] = {"calls": len(times), "elapsed": time.perf_counter() - t0,
                                 "times": times}
        finally:
            await proxy.close()

    def start() -> None:
        d = defer.ensureDeferred(run())
        d.addErrback(lambda f: outcome.setdefault("error", f.getTraceback()))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    if "error" in outcome:
        raise RuntimeError(outcome["error"])
    return outcome["result"]


def _faults_and_cpu(pid: int) -> tuple[int, float]:
    """Minor page faults and CPU seconds (user+sys) of a process, from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rpartition(")")[2].split()
    return int(fields[7]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kib(field: str, pid: int | str = "self") -> int:
    with open("/proc/%s/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for %s" % (field, pid))


# --------------------------------------------------------------------------------------------
# the parent: one cell at a time


class Child:
    def __init__(self, ctx: Any, target: Any, args: tuple[Any, ...], name: str):
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(*args, child_conn), name=name, daemon=True)
        self.proc.start()
        child_conn.close()

    def recv(self, timeout: float = REPLY_TIMEOUT) -> Any:
        if not self.conn.poll(timeout):
            raise RuntimeError("%s did not answer within %.0f s" % (self.proc.name, timeout))
        return self.conn.recv()

    def stop(self) -> None:
        try:
            self.conn.send("stop")
        except (OSError, ValueError):
            pass
        self.proc.join(10.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(3.0)
        self.conn.close()


def measure_cell(ctx: Any, server_kind: str, server_tree: str, client_kind: str,
                 client_tree: str, method: str, size: int,
                 opts: argparse.Namespace) -> dict[str, Any]:
    server = Child(ctx, server_main, (server_kind if server_kind in PYRO4_KINDS else "ours",
                                      server_tree), "large-server-" + server_kind)
    client = None
    try:
        uri, pid, _ = server.recv(60.0)
        client = Child(ctx, client_main, (client_kind, client_tree, uri, method, size,
                                          opts.duration, opts.min_calls),
                       "large-client-" + client_kind)
        if client.recv() != "ready":
            raise RuntimeError("client not ready")
        baseline = _status_kib("VmRSS", pid)
        faults, cpu = _faults_and_cpu(pid)
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")  # VmHWM := VmRSS
        client.conn.send("go")
        answer = client.recv()
        peak = _status_kib("VmHWM", pid)
        faults_after, cpu_after = _faults_and_cpu(pid)
        if answer[0] == "error":
            raise RuntimeError("client failed:\n" + answer[1])
        result = answer[1]
        result["mbps"] = result["calls"] * size / result["elapsed"] / 1e6
        result["server_growth_mib"] = (peak - baseline) / 1024
        result["server_baseline_mib"] = baseline / 1024
        calls = result["calls"] + 1  # the warm-up call was counted too
        result["server_faults_per_call"] = (faults_after - faults) / calls
        result["server_cpu_ms_per_call"] = (cpu_after - cpu) / calls * 1e3
        return result
    finally:
        if client is not None:
            client.stop()
        server.stop()


def rows(opts: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for method in opts.methods:
        for size in opts.sizes:
            out.append({"name": "%s %d MiB" % (method, size), "method": method, "size": size,
                        "client": "pyro4", "servers": opts.servers, "client_row": False})
    if opts.client_rows:
        size = max(opts.sizes)
        for server in ("ours", "multiplex"):
            for client in ("pyro4", "dp"):
                out.append({"name": "client get %d MiB from %s: %s" % (
                    size, LABELS[server], "DeferredProxy" if client == "dp" else "Pyro4.Proxy"),
                    "method": "get", "size": size, "client": client, "servers": [server],
                    "client_row": True})
    return out


def run(opts: argparse.Namespace) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    results: dict[str, Any] = {}
    trees = {"ours": ROOT, "base": opts.base_tree}
    for row in rows(opts):
        cells: dict[str, list[dict[str, Any]]] = {kind: [] for kind in row["servers"]}
        for r in range(opts.rounds):
            kinds = list(row["servers"])
            shift = r % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                cell = measure_cell(ctx, kind, trees.get(kind, ROOT), row["client"], ROOT,
                                    row["method"], row["size"] * MiB, opts)
                cells[kind].append(cell)
                print("  %-40s %-16s round %d: %7.1f MB/s, server peak +%.0f MiB, %d calls, "
                      "server %.1f ms CPU and %.0f page faults per call"
                      % (row["name"], LABELS[kind], r + 1, cell["mbps"],
                         cell["server_growth_mib"], cell["calls"],
                         cell["server_cpu_ms_per_call"], cell["server_faults_per_call"]),
                      flush=True)
        results[row["name"]] = {"row": row, "cells": cells}
    return results


# --------------------------------------------------------------------------------------------
# report


def _summary(values: list[float], digits: int = 0) -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return "%.*f" % (digits, med)
    return "%.*f (%.*f-%.*f)" % (digits, med, digits, min(values), digits, max(values))


def _med(cells: list[dict[str, Any]], key: str) -> float | None:
    return statistics.median(c[key] for c in cells) if cells else None


def report(results: dict[str, Any], opts: argparse.Namespace) -> str:
    lines = []
    servers = list(opts.servers)
    header = ["row"]
    for kind in servers:
        header.append("%s MB/s" % LABELS[kind])
    header += ["ours / multiplex", "ours / thread"]
    if "base" in servers:
        header.append("ours / ours@base")
    for kind in servers:
        header.append("%s peak MiB" % LABELS[kind])
    header += ["peak ours / multiplex", "target", "result"]
    table = [header]
    for name, entry in results.items():
        row, cells = entry["row"], entry["cells"]
        if row["client_row"]:
            continue
        line = [name]
        for kind in servers:
            line.append(_summary([c["mbps"] for c in cells.get(kind, [])]))
        tput = {kind: _med(cells.get(kind, []), "mbps") for kind in servers}
        peak = {kind: _med(cells.get(kind, []), "server_growth_mib") for kind in servers}

        def ratio(a: float | None, b: float | None) -> str:
            return "%.2fx" % (a / b) if a is not None and b else "n/a"

        line += [ratio(tput["ours"], tput.get("multiplex")), ratio(tput["ours"], tput.get("thread"))]
        if "base" in servers:
            line.append(ratio(tput["ours"], tput["base"]))
        for kind in servers:
            line.append(_summary([c["server_growth_mib"] for c in cells.get(kind, [])]))
        line.append(ratio(peak["ours"], peak.get("multiplex")))
        if row["size"] in TARGET_SIZES and tput.get("multiplex"):
            ok = (tput["ours"] >= TARGET_RATIO * tput["multiplex"]
                  and peak["ours"] <= peak["multiplex"] + opts.peak_slack)
            line += [">= %.1fx multiplex, peak <= multiplex" % TARGET_RATIO,
                     "PASS" if ok else "MISS"]
        else:
            line += ["", ""]
        table.append(line)
    lines.append(_markdown(table))
    client_rows = [(n, e) for n, e in results.items() if e["row"]["client_row"]]
    if client_rows:
        lines.append("")
        table = [["client row", "MB/s", "server peak MiB", "client peak MiB"]]
        for name, entry in client_rows:
            cells = next(iter(entry["cells"].values()))
            table.append([name, _summary([c["mbps"] for c in cells]),
                          _summary([c["server_growth_mib"] for c in cells]),
                          _summary([c["client_peak_mib"] for c in cells])])
        by_server: dict[str, dict[str, float | None]] = {}
        for _name, entry in client_rows:
            server = entry["row"]["servers"][0]
            cells = entry["cells"][server]
            by_server.setdefault(server, {})[entry["row"]["client"]] = _med(cells, "mbps")
        lines.append(_markdown(table))
        for server, got in by_server.items():
            if got.get("dp") and got.get("pyro4"):
                lines.append("- from %s: DeferredProxy / Pyro4.Proxy = %.2fx (target >= 1.0x): %s"
                             % (LABELS[server], got["dp"] / got["pyro4"],
                                "PASS" if got["dp"] >= got["pyro4"] else "MISS"))
    return "\n".join(lines)


def _markdown(table: list[list[str]]) -> str:
    out = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    out += ["| " + " | ".join(line) + " |" for line in table[1:]]
    return "\n".join(out)


def machine_notes(opts: argparse.Namespace) -> list[str]:
    sys.path.insert(0, HERE)
    import Pyro4
    from bench_server import load_average, machine_facts

    Pyro4.config.SERIALIZER = "marshal"  # (what the clients use; machine_facts names it)
    facts = machine_facts("twisted.internet.epollreactor.EPollReactor")
    facts.append("serializer: marshal (client and DeferredProxy); Pyro4.Proxy without "
                 "_pyroTimeout; one call at a time")
    facts.append("%d round(s) per cell, >= %.1f s and >= %d timed calls per cell, one large "
                 "warm-up call" % (opts.rounds, opts.duration, opts.min_calls))
    facts.append("tcp_rmem %s; tcp_wmem %s" % (_read("/proc/sys/net/ipv4/tcp_rmem"),
                                               _read("/proc/sys/net/ipv4/tcp_wmem")))
    if opts.base_tree:
        facts.append("ours@base: our server from %s (%s)" % (opts.base_tree, _git(opts.base_tree)))
    facts.append("load average: %s" % load_average())
    return facts


def _git(tree: str) -> str:
    import subprocess

    try:
        return subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip().replace("\t", " ")
    except OSError:
        return "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,16,64", help="MiB, comma separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=1.5,
                        help="seconds of timed calls per cell (after one warm-up call)")
    parser.add_argument("--min-calls", type=int, default=4)
    parser.add_argument("--base-tree", default=None,
                        help="another twisted-pyro tree: adds its server as 'ours@base'")
    parser.add_argument("--methods", default="put,get", help="main rows: put, get or both")
    parser.add_argument("--no-client-rows", dest="client_rows", action="store_false")
    parser.add_argument("--only-ours", action="store_true",
                        help="skip Pyro4's daemons (quick A/B with --base-tree)")
    parser.add_argument("--peak-slack", type=float, default=2.0,
                        help="MiB of measurement noise allowed on the peak target")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    opts = parser.parse_args(argv)
    opts.sizes = [int(s) for s in opts.sizes.split(",") if s]
    opts.methods = [m for m in opts.methods.split(",") if m]
    if opts.quick:
        opts.rounds, opts.duration, opts.min_calls = 1, 0.3, 2
    servers = [] if opts.only_ours else ["thread", "multiplex"]
    servers.append("ours")
    if opts.base_tree:
        servers.append("base")
    opts.servers = servers
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    t0 = time.time()
    results = run(opts)
    notes = machine_notes(opts)
    notes.append("total run time %.0f s" % (time.time() - t0))
    text = report(results, opts)
    print()
    print("\n".join("- " + n for n in notes))
    print()
    print(text)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"notes": notes, "results": results}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
