"""The quick-start demo: a Twisted-hosted Pyro4 object called by an unmodified Pyro4 client.

``python -m pyro demo`` starts :class:`Pyro4ProtocolFactory` in this process's reactor,
registers :class:`Greeter`, and runs a plain ``Pyro4.Proxy`` client in a separate Python
process (so nothing Twisted is involved on the client side). The client makes ordinary calls,
gets a remote exception with its traceback, reads an item stream, and fires 20 concurrent
calls at a coroutine that waits half a second: they finish together, because the reactor
serves all of them at once.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import Pyro4
from twisted.internet import defer, task, threads

from .server.factory import DEFAULT_BACKLOG, Pyro4ProtocolFactory


@Pyro4.expose
class Greeter:
    """A servant with the kinds of methods Twisted makes easy."""

    def __init__(self, reactor: Any):
        self._reactor = reactor

    def hello(self, name: str) -> str:
        return "Hello, %s, from a Twisted reactor!" % name

    def divide(self, a: float, b: float) -> float:
        return a / b

    def countdown(self, n: int):  # an item stream
        yield from range(n, 0, -1)

    async def slow_echo(self, value: Any, seconds: float = 0.5) -> Any:
        """Waits without blocking anybody: the reactor keeps serving other clients."""
        await task.deferLater(self._reactor, seconds, lambda: None)
        return value


CLIENT = r'''
import sys, time, threading
import Pyro4, Pyro4.util
uri = sys.argv[1]
with Pyro4.Proxy(uri) as greeter:
    print("client: hello ->", greeter.hello("Pyro4 user"))
    try:
        greeter.divide(1, 0)
    except ZeroDivisionError as exc:
        print("client: divide(1, 0) raised", repr(exc), "with remote traceback:")
        print("".join(Pyro4.util.getPyroTraceback()).rstrip())
    print("client: countdown(5) streams ->", list(greeter.countdown(5)))
results = []
def call(i):
    with Pyro4.Proxy(uri) as p:
        results.append(p.slow_echo(i))
start = time.time()
threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
for t in threads: t.start()
for t in threads: t.join()
print("client: 20 concurrent calls of a 0.5 s coroutine took %.2f s, results %s"
      % (time.time() - start, sorted(results) == list(range(20))))
'''


def run(reactor: Any) -> defer.Deferred[int]:
    """Serve, run the client process, stop serving; fires with the client's exit code."""
    factory = Pyro4ProtocolFactory(reactor=reactor)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1", backlog=DEFAULT_BACKLOG)
    factory.ports.append(port)
    factory.setAddress("127.0.0.1", port.getHost().port)
    uri = factory.register(Greeter(reactor), "example.greeter")
    print("server: serving %s from the Twisted reactor" % uri)

    def client() -> int:
        return subprocess.run([sys.executable, "-c", CLIENT, str(uri)], check=False).returncode

    d = threads.deferToThread(client)

    def done(code: int) -> defer.Deferred[int]:
        print("server: client finished (exit code %d); shutting down" % code)
        return factory.close().addCallback(lambda _: code)

    return d.addCallback(done)
