"""The connection object Pyro4's hooks expect, backed by a Twisted transport.

Pyro4 hands a ``SocketConnection`` to ``validateHandshake``, ``clientDisconnect`` and
servants (``current_context.client``). Existing Pyro4 code uses its ``sock``, ``objectId``,
``pyroInstances`` and ``tracked_resources``; :class:`PyroConnection` offers the same names so
that such code runs unchanged, and adds ``transport`` for new, Twisted-aware code.
"""

from __future__ import annotations

import socket
import weakref
from typing import Any

from twisted.internet import address

from ..wire.messages import PYRO4, Pyro4Codec


def _socket_address(addr: Any) -> Any:
    """Render a Twisted address the way ``socket.getpeername()`` would."""
    if isinstance(addr, address.IPv6Address):
        return (addr.host, addr.port, addr.flowInfo, addr.scopeID)
    if isinstance(addr, address.IPv4Address):
        return (addr.host, addr.port)
    if isinstance(addr, address.UNIXAddress):
        name = addr.name
        return name.decode() if isinstance(name, bytes) else (name or "")
    return addr


class TransportSocket:
    """A socket-like view of a transport: ``getpeername()`` and friends work on any transport.

    TLS and UNIX transports do not all expose a real socket, and code written for Pyro4 calls
    ``conn.sock.getpeername()``; this answers from the transport's own addresses, and passes
    anything else through to the real socket when there is one.
    """

    def __init__(self, transport: Any):
        self._transport = transport

    def getpeername(self) -> Any:
        return _socket_address(self._transport.getPeer())

    def getsockname(self) -> Any:
        return _socket_address(self._transport.getHost())

    @property
    def family(self) -> socket.AddressFamily:
        host = self._transport.getHost()
        if isinstance(host, address.IPv6Address):
            return socket.AF_INET6
        if isinstance(host, address.UNIXAddress):
            return socket.AF_UNIX
        return socket.AF_INET

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The peer's TLS certificate as ``ssl.SSLSocket.getpeercert`` would give it, or None."""
        cert = getattr(self._transport, "getPeerCertificate", lambda: None)()
        if cert is None:
            return None
        if binary_form:
            from OpenSSL import crypto

            return crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
        x509 = cert.to_cryptography()
        subject = tuple(((attr.oid._name, attr.value),) for attr in x509.subject)
        issuer = tuple(((attr.oid._name, attr.value),) for attr in x509.issuer)
        return {
            "subject": subject,
            "issuer": issuer,
            "serialNumber": "%X" % x509.serial_number,
            "notBefore": x509.not_valid_before_utc.strftime("%b %d %H:%M:%S %Y GMT"),
            "notAfter": x509.not_valid_after_utc.strftime("%b %d %H:%M:%S %Y GMT"),
        }

    def __getattr__(self, name: str) -> Any:
        handle = getattr(self._transport, "getHandle", None)
        if handle is None:
            raise AttributeError(name)
        return getattr(handle(), name)


class PyroConnection:
    """One client connection, as Pyro4's hooks and servants see it.

    :class:`pyro.protocol.Pyro4Protocol` *is* a ``PyroConnection`` (this class is its base),
    so hooks and ``current_context.client`` get the connection's protocol object itself. A
    server may hold tens of thousands of idle connections: one object per connection instead
    of two, and the parts few connections ever use (the socket view, session servants,
    tracked resources, the peer address) are made on first use. Code may add attributes of
    its own, as it could on Pyro4's ``SocketConnection``.
    """

    #: The protocol generation this connection speaks (what its messages mean). A class
    #: attribute until a connection speaks another: idle connections pay nothing for it.
    codec: Pyro4Codec = PYRO4

    def __init__(self, transport: Any = None):
        self.transport = transport
        self.objectId: str | None = None  # the object named in the handshake
        self.keep_open = False
        self._sock: TransportSocket | None = None
        self._instances: dict[type, Any] | None = None
        self._tracked: weakref.WeakSet[Any] | None = None
        self._peer: Any = _UNKNOWN

    @property
    def sock(self) -> TransportSocket:
        """A socket-like view: ``conn.sock.getpeername()`` works on every transport."""
        if self._sock is None:
            self._sock = TransportSocket(self.transport)
        return self._sock

    @property
    def pyroInstances(self) -> dict[type, Any]:
        """Servants of classes registered with ``instance_mode="session"``."""
        if self._instances is None:
            self._instances = {}
        return self._instances

    @property
    def tracked_resources(self) -> weakref.WeakSet[Any]:
        """Resources closed when the client disconnects (``current_context.track_resource``)."""
        if self._tracked is None:
            self._tracked = weakref.WeakSet()
        return self._tracked

    @property
    def peer_address(self) -> Any:
        """The client's address as ``socket.getpeername()`` gives it (None if unknown)."""
        if self._peer is _UNKNOWN:
            try:
                self._peer = self.sock.getpeername()
            except Exception:
                self._peer = None
        return self._peer

    def send(self, data: bytes) -> None:
        self.transport.write(data)

    def close(self) -> None:
        """Close the connection (after pending writes are flushed)."""
        self.transport.loseConnection()

    def family(self) -> str:
        return {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6", socket.AF_UNIX: "Unix"}[
            self.sock.family
        ]

    def getpeercert(self) -> Any:
        return self.sock.getpeercert()

    def release(self) -> None:
        """Forget session servants and close tracked resources, as Pyro4 does on disconnect."""
        self._instances = None
        tracked, self._tracked = self._tracked, None
        for resource in list(tracked or ()):
            try:
                resource.close()
            except Exception:
                pass

    def __repr__(self) -> str:
        return "<%s to %r>" % (type(self).__name__, self.peer_address)


_UNKNOWN = object()
