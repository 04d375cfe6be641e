#!/usr/bin/env python
"""A/B of the server's per-call CPU on two source trees: the small-call path in-process.

Usage::

    git archive BASE | tar -x -C /tmp/base      # the tree before a change
    python benchmarks/ab_call_path.py /tmp/base . [--rounds 3]

Each tree runs in a fresh Python, alternating, ``--rounds`` times: a ``Pyro4ProtocolFactory``
on a ``task.Clock`` serves one connection over a ``StringTransport``, fed 20,000 INVOKE
messages for ``add(1, 2)`` (serpent, built by Pyro4's own ``Message``); the figure is CPU
microseconds per call, the best of 5 batches; the medians of the rounds are compared. No sockets and no reactor loop: what remains is
framing, dispatch, the servant call and the reply, which is what a change on the per-message
path touches, with far less noise than the socket benchmarks on a shared machine.
``--gen 5`` does the same with Pyro5 frames (built by Pyro5's own ``SendingMessage``, no
correlation id: as the raw clients of ``bench_server.py`` send them).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

MEASURE = r'''
import sys, time
sys.path.insert(0, sys.argv[1])
GEN = int(sys.argv[2])
import Pyro4, Pyro4.message, Pyro4.util
from twisted.internet import task
from twisted.internet.testing import StringTransport
from pyro.protocol import Pyro4ProtocolFactory

@Pyro4.expose
class Thing:
    def add(self, a, b):
        return a + b

factory = Pyro4ProtocolFactory(reactor=task.Clock())
factory.setAddress("127.0.0.1", 9)
factory.register(Thing(), "thing")
serializer = Pyro4.util.get_serializer("serpent")
protocol = factory.buildProtocol(None)
transport = StringTransport()
protocol.makeConnection(transport)
hello = serializer.serializeData({"handshake": "hello", "object": "thing"})[0]
protocol.dataReceived(Pyro4.message.Message(
    Pyro4.message.MSG_CONNECT, hello, serializer.serializer_id, 0, 1).to_bytes())
transport.clear()
data, _ = serializer.serializeCall("thing", "add", (1, 2), {}, compress=False)
messages = [Pyro4.message.Message(Pyro4.message.MSG_INVOKE, data, serializer.serializer_id, 0,
                                  seq + 2).to_bytes() for seq in range(2000)]
if GEN == 5:
    import Pyro5.protocol, Pyro5.serializers
    protocol.connectionLost(None)
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    serializer = Pyro5.serializers.serializers["serpent"]
    hello = serializer.dumps({"handshake": "hello", "object": "thing"})
    protocol.dataReceived(Pyro5.protocol.SendingMessage(
        Pyro5.protocol.MSG_CONNECT, 0, 1, serializer.serializer_id, hello).data)
    assert Pyro5.protocol.MSG_CONNECTOK == transport.value()[4 + 2], transport.value()
    transport.clear()
    data = serializer.dumpsCall("thing", "add", (1, 2), {})
    messages = [Pyro5.protocol.SendingMessage(Pyro5.protocol.MSG_INVOKE, 0, (seq + 2) % 65536,
                                              serializer.serializer_id, data).data
                for seq in range(2000)]
protocol.dataReceived(messages[0])
assert len(transport.value()) > 0 and b"3" in transport.value(), transport.value()
transport.clear()
batches = []
for _ in range(5):
    t0 = time.process_time()
    for _ in range(10):
        for message in messages:
            protocol.dataReceived(message)
        transport.clear()
    batches.append((time.process_time() - t0) / 20000 * 1e6)
print("%.2f" % min(batches))
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs=2, help="the two source trees (A, then B)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gen", type=int, choices=(4, 5), default=4,
                        help="the clients' Pyro generation (default 4)")
    opts = parser.parse_args(argv)
    figures: dict[str, list[float]] = {tree: [] for tree in opts.trees}
    for _ in range(opts.rounds):
        for tree in opts.trees:
            out = subprocess.run([sys.executable, "-c", MEASURE, tree, str(opts.gen)], check=True,
                                 capture_output=True, text=True).stdout
            figures[tree].append(float(out))
    for tree, values in figures.items():
        print("%-30s %s us/call (median %.2f)" % (tree, " ".join("%.2f" % v for v in values),
                                                  statistics.median(values)))
    a, b = (statistics.median(figures[tree]) for tree in opts.trees)
    print("B / A (medians): %.3f" % (b / a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
