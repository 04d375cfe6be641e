"""The connections of :class:`pyro.proxy.PyroDeferredService`'s worker copies: Pyro4's own
``SocketConnection``, with fewer GIL hand-offs per call.

Why: every blocking socket call lets go of the GIL, and a socket with a timeout
(``_pyroTimeout``) polls before each one. Pyro4 sends a request with one poll and one ``send``
and reads a reply in three ``recv`` calls (header, annotations, data), each with its poll:
eight GIL drops per call. Alone in a process that costs nothing. With a service's worker
threads and the reactor thread all wanting the GIL, every drop is a hand-off to another thread,
often on the other core (measurements: ``benchmarks/README.md``, "Design measurements").
So, on these connections only:

- ``recv`` reads whatever has arrived, up to 64 KiB beyond what was asked, in one ``recv``,
  and serves the next reads of the same reply from that buffer: one poll and one ``recv``
  per reply;
- ``send`` first writes straight to the socket's file descriptor (``os.write``: no poll; the
  descriptor is non-blocking, as Python keeps it for a socket with a timeout) and falls back
  to Pyro4's own ``sendData`` for whatever did not fit, or on any error, so a lost connection
  fails as Pyro4's does. TLS sockets always use Pyro4's path.

Nothing changes for Pyro4 above: ``Message.recv`` gets exactly the sizes it asks for, errors
map to Pyro4's exceptions as in ``Pyro4.socketutil.receiveData`` (a timeout is
``TimeoutError``, a lost connection ``ConnectionClosedError`` with the ``partialData`` it got),
and Pyro4 releases a connection after any such error, taking the buffer with it. Pyro4's server
never sends anything a client did not ask for, so the buffer is empty between calls.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import Pyro4.errors
from Pyro4.socketutil import ERRNO_RETRIES, SocketConnection, receiveData, sendData

__all__ = ["READ_SIZE", "WorkerConnection", "adopt"]

#: The most a single ``recv`` asks for beyond what the caller needs.
READ_SIZE = 65536


class WorkerConnection(SocketConnection):  # type: ignore[misc]
    """A ``Pyro4.socketutil.SocketConnection`` that reads ahead and writes without polling
    first (see the module). Not made directly: :func:`adopt` turns a connection a proxy made
    into one, in place, so the proxy, its socket and Pyro4's other references stay as they
    are (and the old object's ``__del__`` cannot close the socket under us)."""

    _buffered: bytes = b""

    def send(self, data: bytes) -> None:
        sock = self.sock
        if not isinstance(sock, ssl.SSLSocket):
            try:
                sent = os.write(sock.fileno(), data)
            except OSError:  # full (BlockingIOError), or lost: Pyro4's path tells which
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        sendData(sock, data)

    def recv(self, size: int) -> bytes:
        buffered = self._buffered
        if len(buffered) >= size:
            self._buffered = buffered[size:]
            return buffered[:size] if len(buffered) > size else buffered
        chunks = [buffered] if buffered else []
        have = len(buffered)
        self._buffered = b""
        while have < size:
            try:
                chunk = self.sock.recv(max(size - have, READ_SIZE))
            except TimeoutError:  # the builtin: socket.timeout
                raise Pyro4.errors.TimeoutError("receiving: timeout") from None
            except OSError as error:
                if error.errno not in ERRNO_RETRIES:
                    raise Pyro4.errors.ConnectionClosedError(
                        f"receiving: connection lost: {error}") from None
                # Nothing there on a non-blocking socket (``_pyroTimeout = 0`` on a live
                # connection): the rest exactly as Pyro4 reads it, retrying as long as it does.
                chunk = receiveData(self.sock, size - have)
            if not chunk:
                lost = Pyro4.errors.ConnectionClosedError("receiving: not enough data")
                lost.partialData = b"".join(chunks)  # type: ignore[attr-defined]
                raise lost
            chunks.append(chunk)
            have += len(chunk)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if have == size:
            return data
        self._buffered = data[size:]
        return data[:size]


def adopt(proxy: Any) -> None:
    """Make ``proxy``'s current connection (if it has a plain Pyro4 one) a
    :class:`WorkerConnection`. Call it between calls, when no reply is being read; a
    connection Pyro4 makes later (a reconnect) is plain again, so call it after every call."""
    connection = proxy._pyroConnection
    if connection is not None and type(connection) is SocketConnection:
        connection.__class__ = WorkerConnection
