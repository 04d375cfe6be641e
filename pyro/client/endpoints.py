"""How a :class:`~pyro.client.DeferredProxy` reaches a server: the Twisted client endpoint
for a ``PYRO:`` URI (TCP over IPv4 or IPv6, TLS, UNIX sockets), configured from
``Pyro4.config`` the way a ``Pyro4.Proxy`` configures its socket.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from Pyro4 import errors
from Pyro4.configuration import config as pyro4_config
from Pyro4.core import URI
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    UNIXClientEndpoint,
    wrapClientTLS,
)

__all__ = ["default_endpoint", "tls_client_options"]


def default_endpoint(reactor: Any, uri: URI, timeout: float = 30.0) -> Any:
    """The Twisted client endpoint for a ``PYRO:`` URI: TCP (v4/v6), TLS or a UNIX socket.

    IP literals connect directly, and so does ``localhost`` (as ``127.0.0.1``, or ``::1`` when
    ``Pyro4.config.PREFER_IP_VERSION`` is 6); other host names go through
    ``HostnameEndpoint`` and so through the reactor's name resolver (Twisted's default one
    uses a thread pool).

    When ``Pyro4.config.SSL`` is true (read here, for every connection), TCP connections use
    TLS as a ``Pyro4.Proxy`` does: the server certificate must chain to ``SSL_CACERTS`` (a PEM
    file or a directory of them; the system's trust store when empty) and name the URI's host
    (a DNS name or IP address); ``SSL_CLIENTCERT``/``SSL_CLIENTKEY`` (and
    ``SSL_CLIENTKEYPASSWD``), when set, are presented to the server. UNIX sockets stay plain.
    Pass your own ``endpoint_factory`` to :class:`DeferredProxy` for anything else.

    For a ``Pyro5.core.URI`` (a proxy with ``pyro_version=5``) the same items are read from
    ``Pyro5.config`` instead, as a ``Pyro5.api.Proxy`` reads them.
    """
    config = config_for(uri)
    if uri.sockname:
        return UNIXClientEndpoint(reactor, uri.sockname, timeout=timeout)
    host, port = uri.host, uri.port
    if host == "localhost" and config.PREFER_IP_VERSION in (4, 6):
        # Pyro4's default NS_HOST; its sockets resolve it for the preferred IP version.
        # Mapping it here spares a resolver thread for the most common name of all.
        host = "127.0.0.1" if config.PREFER_IP_VERSION == 4 else "::1"
    endpoint: Any
    if isIPv6Address(host):
        endpoint = TCP6ClientEndpoint(reactor, host, port, timeout=timeout)
    elif isIPAddress(host):
        endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    else:
        endpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
    if config.SSL:
        # the name checked is the URI's, as Pyro4's server_hostname, not the mapped address
        endpoint = wrapClientTLS(tls_client_options(uri.host, config), endpoint)
    return endpoint


def config_for(uri: Any) -> Any:
    """The config a proxy for ``uri`` obeys: ``Pyro5.config`` for a ``Pyro5.core.URI``,
    else ``Pyro4.config`` (Pyro5 is not imported for a Pyro4 URI)."""
    if type(uri).__module__.startswith("Pyro5"):
        import Pyro5

        return Pyro5.config
    return pyro4_config


def tls_client_options(hostname: str, config: Any = None) -> Any:
    """Twisted's client TLS options from ``Pyro4.config``'s client SSL items (or those of the
    ``config`` given: ``Pyro5.config``), for ``hostname``.

    Read at every call; the options (an OpenSSL context each) are kept while the config items
    and the files they name are unchanged, much as Pyro4 keeps its client ``SSLContext``.
    """
    def stamp(path: str) -> tuple[str, int, int] | None:
        if not path:
            return None
        try:
            info = os.stat(path)
        except OSError:
            return (path, -1, -1)  # loading it reports the error
        return (path, info.st_mtime_ns, info.st_size)

    config = config or pyro4_config
    return _tls_client_options(hostname, stamp(config.SSL_CACERTS or ""),
                               stamp(config.SSL_CLIENTCERT or ""),
                               stamp(config.SSL_CLIENTKEY or ""),
                               config.SSL_CLIENTKEYPASSWD or "")


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                              re.DOTALL)
_PEM_KEY = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----",
                      re.DOTALL)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise errors.CommunicationError("cannot read %s %s: %s" % (what, path, exc)) from exc


@functools.lru_cache(maxsize=32)
def _tls_client_options(hostname: str, cacerts: tuple[str, int, int] | None,
                        clientcert: tuple[str, int, int] | None,
                        clientkey: tuple[str, int, int] | None, password: str) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from twisted.internet import ssl

    trust_root = None  # Twisted's platformTrust(), as Pyro4's create_default_context()
    if cacerts is not None:
        path = cacerts[0]
        if os.path.isdir(path):
            names = sorted(os.path.join(path, name) for name in os.listdir(path))
            pems = [_read(name, "CA certificates") for name in names if os.path.isfile(name)]
        else:
            pems = [_read(path, "CA certificates")]
        authorities = [ssl.Certificate.loadPEM(block)
                       for pem in pems for block in _PEM_CERTIFICATE.findall(pem)]
        if not authorities:
            raise errors.CommunicationError("no CA certificates in SSL_CACERTS %s" % path)
        trust_root = ssl.trustRootFromCertificates(authorities)
    client_certificate: dict[str, Any] = {}
    if clientcert is not None:
        cert_pem = _read(clientcert[0], "client certificate")
        key_pem = _read(clientkey[0], "client key") if clientkey is not None else cert_pem
        certificate = _PEM_CERTIFICATE.search(cert_pem)
        key = _PEM_KEY.search(key_pem)
        if certificate is None or key is None:
            raise errors.CommunicationError("no client certificate and key in %s" % (
                clientcert[0] if clientkey is None else "%s, %s" % (clientcert[0], clientkey[0])))
        encrypted = b"ENCRYPTED" in key.group(0)  # PKCS#8 or legacy; ssl ignores a spare one
        # cryptography objects (pyOpenSSL deprecates its own), and the key password applied
        client_certificate = {
            "certificate": x509.load_pem_x509_certificate(certificate.group(0)),
            "privateKey": serialization.load_pem_private_key(
                key.group(0), password.encode() if password and encrypted else None),
        }
    return ssl.optionsForClientTLS(hostname, trustRoot=trust_root,
                                   extraCertificateOptions=client_certificate)
