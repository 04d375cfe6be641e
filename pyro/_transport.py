"""Large messages through Twisted's plain TCP transports, for both roles: no needless copies.

Twisted's TCP transport reads at most ``bufferSize`` (64 KiB) per ``recv()`` into a new bytes
object, and sends what it is given from its own buffer, joining whatever was written into it.
For a 64 MiB message that means a thousand chunks to collect and join on the way in, and on
the way out a copy of the payload whenever it is not the one thing buffered. Two fast paths,
used by :mod:`pyro.server.protocol` and :mod:`pyro.client.protocol` on plain TCP transports
(``tcp.Server`` and ``tcp.Client``; TLS and other transports keep Twisted's own paths):

- :func:`read_in_place`: while the reader collects a large payload in its final buffer
  (:meth:`pyro.wire.MessageReader.receive_buffer`), the transport's ``doRead`` receives
  straight into it (``socket.recv_into``): the kernel copies the payload once, into the
  ``bytes`` object that becomes ``msg.data``, as Pyro4's blocking ``recv(MSG_WAITALL)`` does,
  in few large reads (``SO_RCVLOWAT``).
- :func:`hand_over`: the unsent rest of a reply becomes the transport's send buffer as it
  is (the bytes object and an offset), instead of a slice copied into Twisted's list buffer,
  and Twisted may pass up to :data:`SEND_LIMIT` of it to each ``send()``.

Both use attributes of Twisted's ``FileDescriptor`` that are not public API (``dataBuffer``,
``offset``, ``SEND_LIMIT``, ``_maybePauseProducer``, an instance ``doRead``); they are only
used on the exact transport classes checked here, and the tests run them on real sockets.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import main, tcp
from twisted.internet.tcp import EWOULDBLOCK

__all__ = ["RCVLOWAT", "SEND_LIMIT", "ReadInPlace", "hand_over", "read_in_place", "stop_reading_in_place",
           "unsent"]

_PLAIN_TCP = (tcp.Server, tcp.Client)

#: What Twisted may pass to one ``send()`` on a transport that sends a large reply (its
#: default is 128 KiB). Measured with 16 MiB replies: 1 MiB gave ~20 % more throughput
#: (fewer trips through the reactor per reply); larger limits gained little more, and make
#: the last piece, which Twisted copies (``remaining < SEND_LIMIT``), larger.
SEND_LIMIT = 1 << 20

#: The socket's low-water mark while a large payload is received in place (``SO_RCVLOWAT``).
#: Measured with 64 MiB replies to the native client: ~20 reads per reply instead of 50-250,
#: and 1.0-1.1x a ``Pyro4.Proxy``'s throughput instead of 0.92-1.05x. (Linux raises the
#: receive buffer to fit it when needed; it never lowers what autotuning reached.)
RCVLOWAT = 1 << 20
_SO_RCVLOWAT = getattr(socket, "SO_RCVLOWAT", None)


def _plain(transport: Any) -> bool:
    """A plain TCP transport (server or client side), with no TLS started on it."""
    return type(transport) in _PLAIN_TCP and not getattr(transport, "TLS", False)


def hand_over(transport: Any, data: bytes, offset: int) -> None:
    """Let Twisted send ``data[offset:]`` from ``data`` itself: no slice, no copy.

    Only when both its buffers are empty (``dataBuffer``, ``_tempDataBuffer``: the caller
    checks, as for any direct send, so the order is kept). Twisted sends from ``dataBuffer``
    at ``offset`` (at most :data:`SEND_LIMIT` bytes per writable event), tells the registered
    producer to pause while more than ``bufferSize`` is unsent and to resume once all is
    sent, and honours ``loseConnection`` after it, exactly as for its own writes.
    """
    transport.dataBuffer, transport.offset = data, offset
    if transport.SEND_LIMIT < SEND_LIMIT:
        transport.SEND_LIMIT = SEND_LIMIT
    transport.startWriting()
    transport._maybePauseProducer()


class ReadInPlace:
    """A transport's ``doRead`` while its reader collects a large payload in place.

    Receives into :meth:`~pyro.wire.MessageReader.receive_buffer` and hands the count to
    ``deliver`` (the protocol's counterpart of ``dataReceived``, which calls
    :meth:`~pyro.wire.MessageReader.received`); once the payload is complete, the
    transport's own ``doRead`` is back. Returns what Twisted's ``doRead`` returns: None, or
    why the connection ended.

    Meanwhile the socket's ``SO_RCVLOWAT`` is :data:`RCVLOWAT` (or what is still missing,
    when less): the reactor is woken once that much has arrived, not for every few hundred
    KiB, and each ``recv_into`` takes more at once. Where the option cannot be set, reads
    simply come in smaller pieces.
    """

    __slots__ = ("transport", "reader", "deliver", "lowat")

    def __init__(self, transport: Any, reader: Any, deliver: Callable[[int], None]):
        self.transport = transport
        self.reader = reader
        self.deliver = deliver
        self.lowat = 1
        section = reader.section
        if section is not None:
            self._low_water(section.size - section.filled)

    def __call__(self) -> Any:
        transport = self.transport
        view = self.reader.receive_buffer()
        if view is None:  # complete, or the connection moved on: Twisted's doRead again
            stop_reading_in_place(transport)
            return transport.doRead()
        try:
            with view:
                missing = len(view)
                count = transport.socket.recv_into(view)
        except OSError as error:  # as tcp.Connection.doRead
            return None if error.args[0] == EWOULDBLOCK else main.CONNECTION_LOST
        if not count:
            return main.CONNECTION_DONE
        if count == missing:  # the payload is complete: Twisted's doRead reads what follows
            stop_reading_in_place(transport)
        elif missing - count < self.lowat:
            self._low_water(missing - count)  # never wait for more than the payload's rest
        self.deliver(count)
        return None

    def _low_water(self, missing: int) -> None:
        lowat = max(1, min(missing, RCVLOWAT))
        if lowat != self.lowat:
            try:
                self.transport.socket.setsockopt(socket.SOL_SOCKET, _SO_RCVLOWAT, lowat)
            except (OSError, TypeError):  # not settable here (or no such option: None)
                return
            self.lowat = lowat


def read_in_place(transport: Any, reader: Any, deliver: Callable[[int], None]) -> bool:
    """Have a plain TCP ``transport`` read the reader's large payload in place (see
    :class:`ReadInPlace`); False (nothing changed) for any other transport."""
    if not _plain(transport):
        return False
    if "doRead" not in transport.__dict__:
        transport.doRead = ReadInPlace(transport, reader, deliver)
    return True


def stop_reading_in_place(transport: Any) -> None:
    """The transport's own ``doRead`` again (no-op if it was never replaced), and the
    socket's low-water mark back to 1."""
    if transport is None:
        return
    reading = transport.__dict__.pop("doRead", None)
    if isinstance(reading, ReadInPlace) and reading.lowat != 1 and transport.connected:
        reading._low_water(1)


def unsent(transport: Any) -> int | None:
    """How many bytes written to ``transport`` have not been sent yet, for Twisted's
    ``FileDescriptor`` transports (TCP, UNIX; under TLS, the TCP transport beneath, whose
    buffer holds the encrypted bytes); None for a transport that does not say."""
    candidate: Any
    for candidate in (transport, getattr(transport, "transport", None)):
        buffer = getattr(candidate, "dataBuffer", None)
        if isinstance(buffer, (bytes, bytearray, memoryview)):
            return len(buffer) - candidate.offset + candidate._tempDataLen
    return None
