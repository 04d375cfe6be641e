"""pyro.workerconnection: the connection of PyroDeferredService's worker copies (reads
ahead, writes without polling first).

Reading is checked with a scripted socket (what each ``recv`` returns, in order: splits,
errors, a closing peer) and with real socket pairs carrying real Pyro4 messages; sending with
real socket pairs (a full buffer, a closed peer). The workers' use of it is checked against
real Pyro4 daemons in tests/threaded/test_service.py, and over TLS in tests/client/test_tls.py.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator
from typing import Any

import Pyro4.errors
import Pyro4.message
import Pyro4.socketutil
import pytest
from Pyro4.socketutil import SocketConnection

from pyro.threaded.workerconnection import READ_SIZE, WorkerConnection, adopt


class ScriptedSocket:
    """A socket whose ``recv`` plays a script: bytes (at most the size asked for; the rest
    stays for the next read) or an exception to raise. Records the sizes asked for."""

    def __init__(self, *script: bytes | BaseException) -> None:
        self.script = list(script)
        self.asked: list[int] = []

    def recv(self, size: int, flags: int = 0) -> bytes:
        self.asked.append(size)
        if not self.script:
            return b""  # the peer closed
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        if len(step) > size:
            self.script.insert(0, step[size:])
        return step[:size]

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass


def connection(sock: Any) -> WorkerConnection:
    plain = SocketConnection(sock)
    adopt(type("P", (), {"_pyroConnection": plain})())
    assert type(plain) is WorkerConnection
    return plain  # type: ignore[return-value]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


def test_small_reads_are_served_from_one_recv():
    sock = ScriptedSocket(b"header--" + b"anno" + b"the data")
    conn = connection(sock)
    assert [conn.recv(8), conn.recv(4), conn.recv(8)] == [b"header--", b"anno", b"the data"]
    assert sock.asked == [READ_SIZE]


def test_a_read_waits_for_the_rest_of_a_split_message():
    sock = ScriptedSocket(b"hea", b"der", b"-rest")
    conn = connection(sock)
    assert conn.recv(6) == b"header"
    assert conn.recv(5) == b"-rest"
    assert sock.asked == [READ_SIZE] * 3


def test_a_large_message_is_read_whole_and_asked_for_in_full():
    body = bytes(range(256)) * 1000  # 256,000 bytes
    sock = ScriptedSocket(body[:70_000], body[70_000:], b"next")
    conn = connection(sock)
    assert conn.recv(len(body)) == body
    assert sock.asked == [len(body), len(body) - 70_000]
    assert conn.recv(4) == b"next"


def test_a_closing_peer_gives_pyro4s_error_with_the_partial_data():
    conn = connection(ScriptedSocket(b"only this"))
    with pytest.raises(Pyro4.errors.ConnectionClosedError, match="not enough data") as caught:
        conn.recv(20)
    assert caught.value.partialData == b"only this"


def test_a_socket_error_is_a_lost_connection():
    conn = connection(ScriptedSocket(ConnectionResetError(errno.ECONNRESET, "reset")))
    with pytest.raises(Pyro4.errors.ConnectionClosedError, match="connection lost"):
        conn.recv(4)


def test_a_retryable_error_is_retried():
    sock = ScriptedSocket(BlockingIOError(errno.EAGAIN, "again"), b"data")
    conn = connection(sock)
    assert conn.recv(4) == b"data"
    assert len(sock.asked) == 2


def test_a_non_blocking_socket_waits_as_long_as_pyro4_does(monkeypatch):
    # Pyro4 sets a live connection's socket to timeout 0 when _pyroTimeout becomes 0: a read
    # then finds nothing (EAGAIN) until the reply comes, and Pyro4 keeps trying, pausing a
    # little longer each time (no pauses here), for as long as it takes.
    monkeypatch.setattr(Pyro4.socketutil.time, "sleep", lambda seconds: None)
    nothing_yet = [BlockingIOError(errno.EAGAIN, "again")] * 5000
    sock = ScriptedSocket(*nothing_yet, b"late reply")
    assert connection(sock).recv(10) == b"late reply"
    assert len(sock.asked) == 5001


def test_a_socket_timeout_is_pyro4s_timeout(pair):
    left, _ = pair
    left.settimeout(0.05)
    conn = connection(left)
    with pytest.raises(Pyro4.errors.TimeoutError, match="receiving: timeout"):
        conn.recv(4)


def test_pyro4_messages_sent_back_to_back_are_read_one_by_one(pair):
    left, right = pair
    first = Pyro4.message.Message(Pyro4.message.MSG_RESULT, b"first reply", 1, 0, 7,
                                  annotations={"CORR": b"0123456789abcdef"})
    second = Pyro4.message.Message(Pyro4.message.MSG_RESULT, b"x" * 100_000, 1, 0, 8)
    right.sendall(first.to_bytes() + second.to_bytes())
    conn = connection(left)
    got = Pyro4.message.Message.recv(conn, [Pyro4.message.MSG_RESULT])
    assert (got.seq, got.data, got.annotations["CORR"]) == (7, b"first reply",
                                                           b"0123456789abcdef")
    got = Pyro4.message.Message.recv(conn, [Pyro4.message.MSG_RESULT])
    assert (got.seq, got.data) == (8, b"x" * 100_000)
    assert conn._buffered == b""


def test_adopt_converts_only_a_plain_connection(pair):
    class Holder:
        _pyroConnection: Any = None

    holder = Holder()
    adopt(holder)  # not connected: nothing to do
    assert holder._pyroConnection is None

    class Custom(SocketConnection):
        pass

    holder._pyroConnection = custom = Custom(pair[0])
    adopt(holder)
    assert type(custom) is Custom  # someone else's subclass is left alone
    custom.keep_open = True

    holder._pyroConnection = plain = SocketConnection(pair[0])
    adopt(holder)
    adopt(holder)
    assert type(plain) is WorkerConnection
    assert holder._pyroConnection is plain and plain.sock is pair[0]
    plain.keep_open = True  # the fixture closes the socket


def test_send_writes_a_request_whole(pair):
    left, right = pair
    left.settimeout(5)  # as a proxy with _pyroTimeout has it: non-blocking underneath
    conn = connection(left)
    conn.send(b"a request")
    assert right.recv(100) == b"a request"


def test_send_finishes_what_did_not_fit_in_the_socket_buffer(pair):
    left, right = pair
    left.settimeout(5)
    data = bytes(range(256)) * 40_000  # 10 MB: far more than a socket buffer holds
    received = bytearray()

    def drain():
        while len(received) < len(data):
            chunk = right.recv(1 << 20)
            if not chunk:
                break
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    connection(left).send(data)
    reader.join(10)
    assert bytes(received) == data


def test_send_to_a_closed_peer_is_pyro4s_lost_connection(pair):
    left, right = pair
    left.settimeout(5)
    right.close()
    conn = connection(left)
    with pytest.raises(Pyro4.errors.ConnectionClosedError, match="sending: connection lost"):
        conn.send(b"x" * 100)
        conn.send(b"x" * 100)  # the first may still be taken by the kernel
