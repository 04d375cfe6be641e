"""One factory, many transports: TCP over IPv4 and IPv6, UNIX sockets and TLS, with real
Pyro4 clients on each, one at a time and all at once.

Every test's factory is a :class:`WitnessFactory`: its ``validateHandshake`` records what
Pyro4 code usually asks a connection there (``conn.sock.getpeername()``, ``conn.family()``,
``conn.getpeercert()``), so each transport is checked to answer those.

TLS is configured the way Pyro4 users configure it: the client through ``Pyro4.config.SSL``,
``SSL_CACERTS``, ``SSL_CLIENTCERT`` and ``SSL_CLIENTKEY``; the server's
``SSL_SERVERCERT``/``SSL_SERVERKEY``/``SSL_CACERTS``/``SSL_REQUIRECLIENTCERT`` are turned into a
Twisted ``CertificateOptions`` (:func:`tls_options_from_pyro4_config`). Certificates are made
fresh for the test run (``tests/support/certs.py``).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading

import Pyro4
import Pyro4.errors
import Pyro4.socketutil
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import defer, interfaces, reactor
from twisted.internet import ssl as twisted_ssl
from twisted.internet.endpoints import serverFromString
from twisted.trial import unittest

from pyro.protocol import DEFAULT_BACKLOG, Pyro4ProtocolFactory

from ..support.certs import make_pki
from ..support.config import patch_config
from ..support.our_server import in_thread

config = Pyro4.config


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6_loopback()
NO_IPV6 = "this machine has no IPv6 loopback (::1)"
HAS_UNIX = hasattr(socket, "AF_UNIX")


@Pyro4.expose
class Servant:
    """One servant shared by every transport: the counter proves it is the same object."""

    def __init__(self):
        self.calls = 0
        self._lock = threading.Lock()

    def count(self):
        with self._lock:
            self.calls += 1
            return self.calls

    def whoami(self):
        """What the servant learns about its caller from ``current_context``."""
        client = Pyro4.current_context.client
        address = Pyro4.current_context.client_sock_addr
        return {"family": client.family(),
                "address": list(address) if isinstance(address, tuple) else address}


class WitnessFactory(Pyro4ProtocolFactory):
    """Records, for every handshake, what Pyro4 code asks of a connection.

    With ``required_subject`` set it also vets the client certificate of TLS connections the
    way Pyro4's ``examples/ssl/server.py`` does, refusing the connection when it does not
    match. (One factory may serve TLS and plain transports at once; the hook can tell them
    apart by the Twisted transport.)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.handshakes: list[dict] = []
        self.required_subject: dict[str, str] | None = None
        self.required_serial: str | None = None
        self.required_issuer: str | None = None

    def validateHandshake(self, conn, data):
        cert = conn.getpeercert()
        tls = interfaces.ISSLTransport.providedBy(conn.transport)
        self.handshakes.append({
            "peer": conn.sock.getpeername(),
            "family": conn.family(),
            "cert": cert,
            "tls": tls,
            "data": data,
        })
        if self.required_subject is not None and tls:
            # examples/ssl/server.py, CertValidatingDaemon.validateHandshake
            if not cert:
                raise Pyro4.errors.CommunicationError("client cert missing")
            if cert["serialNumber"] != self.required_serial:
                raise Pyro4.errors.CommunicationError("cert serial number incorrect")
            issuer = dict(p[0] for p in cert["issuer"])
            subject = dict(p[0] for p in cert["subject"])
            if issuer["organizationName"] != self.required_issuer:
                raise Pyro4.errors.CommunicationError("cert not issued by the test CA")
            for key, value in self.required_subject.items():
                if subject.get(key) != value:
                    raise Pyro4.errors.CommunicationError("cert not for %s=%s" % (key, value))
        return super().validateHandshake(conn, data)


class CertCheckingProxy(Pyro4.Proxy):
    """examples/ssl/client.py: the client vets the server's certificate in the handshake."""

    def _pyroValidateHandshake(self, response):
        cert = self._pyroConnection.getpeercert()
        if not cert:
            raise Pyro4.errors.CommunicationError("cert missing")
        subject = dict(p[0] for p in cert["subject"])
        if subject["commonName"] != "localhost":
            raise Pyro4.errors.CommunicationError("cert not for localhost")


def reset_pyro4_ssl_contexts():
    """Pyro4 builds its SSL contexts once per process (``socketutil.getSSLcontext`` caches
    them in module globals), so a test that changes the SSL config must drop them."""
    for name in ("__ssl_client_context", "__ssl_server_context"):
        setattr(Pyro4.socketutil, name, None)  # a string: a literal name would be mangled here


def tls_options_from_pyro4_config():
    """Pyro4's server-side SSL config items, as a Twisted ``CertificateOptions``.

    Pyro4 (``socketutil.getSSLcontext``) loads ``SSL_SERVERCERT``/``SSL_SERVERKEY``, trusts
    ``SSL_CACERTS`` and, with ``SSL_REQUIRECLIENTCERT``, requires a client certificate signed
    by one of them; without it, no client certificate is asked for at all.
    """
    with open(config.SSL_SERVERCERT, "rb") as file:
        certificate = x509.load_pem_x509_certificate(file.read())
    with open(config.SSL_SERVERKEY or config.SSL_SERVERCERT, "rb") as file:
        password = config.SSL_SERVERKEYPASSWD.encode() if config.SSL_SERVERKEYPASSWD else None
        key = serialization.load_pem_private_key(file.read(), password)
    # cryptography objects: pyOpenSSL deprecates its own X509/PKey in these places
    options = {"privateKey": key, "certificate": certificate}
    if config.SSL_REQUIRECLIENTCERT:
        with open(config.SSL_CACERTS, "rb") as file:
            authorities = [twisted_ssl.Certificate.loadPEM(file.read())]
        options["trustRoot"] = twisted_ssl.trustRootFromCertificates(authorities)
    return twisted_ssl.CertificateOptions(**options)


def client(function, *args, **kwargs):
    """Run blocking Pyro4 client code in a thread, with a clean ``current_context``."""
    def run():
        Pyro4.current_context.__init__()
        try:
            return function(*args, **kwargs)
        finally:
            Pyro4.current_context.__init__()

    return in_thread(run)


def uri_at(object_id: str, location: str) -> Pyro4.URI:
    """The URI of an object of ours, reached through one particular transport."""
    return Pyro4.URI("PYRO:%s@%s" % (object_id, location))


def call_whoami(uri, proxy_class=Pyro4.Proxy):
    """One call; what the server saw, and this client's own socket address."""
    with proxy_class(uri) as p:
        seen = p.whoami()
        mine = p._pyroConnection.sock.getsockname()
        return seen, mine


class TransportTestCase(unittest.TestCase):
    timeout = 30

    def setUp(self):
        # a short path (UNIX socket names are limited to ~107 bytes), removed only after the
        # factory has closed: cleanups run last-in first-out, and Twisted unlinks the socket
        # file itself when a UNIX port stops listening (it fails if the file is gone)
        self.tmp = tempfile.mkdtemp(prefix="pyro-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.factory = WitnessFactory()
        self.addCleanup(self.factory.close)  # stops every port in factory.ports, waits
        self.servant = Servant()  # registered once the factory has an address (Pyro4's rule)
        # Pyro4's SSL settings are global; every test starts (and ends) without them
        patch_config(self, SSL=False, SSL_CACERTS="", SSL_CLIENTCERT="", SSL_CLIENTKEY="",
                       SSL_SERVERCERT="", SSL_SERVERKEY="", SSL_REQUIRECLIENTCERT=False)
        reset_pyro4_ssl_contexts()
        self.addCleanup(reset_pyro4_ssl_contexts)

    # -- listening helpers (every port goes into factory.ports, so close() stops it) ---------

    def listen_tcp(self, interface="127.0.0.1"):
        port = reactor.listenTCP(0, self.factory, interface=interface, backlog=DEFAULT_BACKLOG)
        self.factory.ports.append(port)
        return port

    def listen_unix(self, name=None):
        if name is None:
            name = os.path.join(self.tmp, "server%d.sock" % len(self.factory.ports))
        port = reactor.listenUNIX(name, self.factory)
        self.factory.ports.append(port)
        return port, name

    def make_pki(self):
        return make_pki(self.tmp)

    def listen_tls(self, pki, require_client_cert=True):
        # the server side, configured like examples/ssl/server.py
        config.SSL_SERVERCERT = pki.server_cert
        config.SSL_SERVERKEY = pki.server_key
        config.SSL_CACERTS = pki.ca_cert
        config.SSL_REQUIRECLIENTCERT = require_client_cert
        port = reactor.listenSSL(0, self.factory, tls_options_from_pyro4_config(),
                                 interface="127.0.0.1", backlog=DEFAULT_BACKLOG)
        self.factory.ports.append(port)
        if require_client_cert:
            self.factory.required_serial = "%X" % pki.client_serial
            self.factory.required_issuer = pki.ca_subject["organizationName"]
            self.factory.required_subject = {"countryName": "NL",
                                             "organizationName": "Razorvine.net"}
        return port

    def use_tls_client(self, pki, with_certificate=True):
        """The client side, configured like examples/ssl/client.py."""
        config.SSL = True
        config.SSL_CACERTS = pki.ca_cert  # to make ssl accept the test CA's server cert
        config.SSL_CLIENTCERT = pki.client_cert if with_certificate else ""
        config.SSL_CLIENTKEY = pki.client_key if with_certificate else ""
        reset_pyro4_ssl_contexts()

    # -- one transport at a time -------------------------------------------------------------

    @defer.inlineCallbacks
    def test_tcp_ipv4(self):
        port = self.listen_tcp("127.0.0.1")
        self.factory.setAddress("127.0.0.1", port.getHost().port)
        self.factory.register(self.servant, "servant")
        uri = self.factory.uriFor("servant")
        self.assertEqual("PYRO:servant@127.0.0.1:%d" % port.getHost().port, str(uri))
        seen, mine = yield client(call_whoami, uri)
        self.assertEqual({"family": "IPv4", "address": list(mine)}, seen)
        (handshake,) = self.factory.handshakes
        self.assertEqual(mine, handshake["peer"])
        self.assertEqual("IPv4", handshake["family"])
        self.assertIsNone(handshake["cert"])

    @defer.inlineCallbacks
    def test_tcp_ipv6(self):
        if not HAS_IPV6:
            raise unittest.SkipTest(NO_IPV6)
        port = self.listen_tcp("::1")
        self.factory.setAddress("::1", port.getHost().port)
        self.factory.register(self.servant, "servant")
        uri = self.factory.uriFor("servant")
        self.assertEqual("PYRO:servant@[::1]:%d" % port.getHost().port, str(uri))
        self.assertEqual(("::1", port.getHost().port), (uri.host, uri.port))
        seen, mine = yield client(call_whoami, uri)
        self.assertEqual(4, len(mine))  # ('::1', port, flowinfo, scope_id), as socket gives it
        self.assertEqual({"family": "IPv6", "address": list(mine)}, seen)
        (handshake,) = self.factory.handshakes
        self.assertEqual(mine, handshake["peer"])
        self.assertEqual("IPv6", handshake["family"])

    @defer.inlineCallbacks
    def test_unix(self):
        if not HAS_UNIX:
            raise unittest.SkipTest("no UNIX domain sockets here")
        _, path = self.listen_unix()
        self.factory.setUnixAddress(path)
        self.factory.register(self.servant, "servant")
        uri = self.factory.uriFor("servant")
        self.assertEqual("PYRO:servant@./u:" + path, str(uri))
        self.assertEqual(path, uri.sockname)
        seen, mine = yield client(call_whoami, uri)
        # the client's socket is unnamed: getpeername() gives "" on the server, as a socket does
        self.assertEqual("", mine)
        self.assertEqual({"family": "Unix", "address": ""}, seen)
        (handshake,) = self.factory.handshakes
        self.assertEqual("", handshake["peer"])
        self.assertEqual("Unix", handshake["family"])

    @defer.inlineCallbacks
    def test_unix_abstractNamespace(self):
        """Pyro4's testDaemonUnixSocketAbstractNS: a Linux abstract socket (no file)."""
        if not sys.platform.startswith("linux"):
            raise unittest.SkipTest("abstract namespace sockets are a Linux feature")
        name = "\0pyro-test-%d-%d" % (os.getpid(), id(self))
        self.listen_unix(name)
        self.factory.setUnixAddress(name)
        self.factory.register(self.servant, "servant")
        uri = self.factory.uriFor("servant")
        self.assertEqual("PYRO:servant@./u:" + name, str(uri))
        seen, _ = yield client(call_whoami, uri)
        self.assertEqual("Unix", seen["family"])

    @defer.inlineCallbacks
    def test_tls_twoWay(self):
        """examples/ssl: both sides present certificates, both sides check them in the
        handshake, and the server's ``conn.getpeercert()`` is the client certificate."""
        pki = self.make_pki()
        port = self.listen_tls(pki, require_client_cert=True)
        self.factory.setAddress("127.0.0.1", port.getHost().port)
        self.factory.register(self.servant, "servant")
        self.use_tls_client(pki)
        seen, mine = yield client(call_whoami, self.factory.uriFor("servant"),
                                  CertCheckingProxy)
        self.assertEqual({"family": "IPv4", "address": list(mine)}, seen)
        (handshake,) = self.factory.handshakes
        self.assertEqual(mine, handshake["peer"])
        cert = handshake["cert"]
        self.assertEqual(pki.client_subject, dict(p[0] for p in cert["subject"]))
        self.assertEqual(pki.ca_subject, dict(p[0] for p in cert["issuer"]))
        self.assertEqual("%X" % pki.client_serial, cert["serialNumber"])
        # the dates are in ssl's own format (examples/ssl checks them with cert_time_to_seconds)
        self.assertLess(ssl.cert_time_to_seconds(cert["notBefore"]),
                        ssl.cert_time_to_seconds(cert["notAfter"]))

    @defer.inlineCallbacks
    def test_tls_wrongClientCertificate_refusedInHandshake(self):
        """validateHandshake refuses a good certificate with the wrong subject: the client gets
        CONNECTFAIL with the reason, over TLS, exactly like from Pyro4's example server."""
        pki = self.make_pki()
        port = self.listen_tls(pki, require_client_cert=True)
        self.factory.required_subject = {"organizationName": "Somebody Else"}
        self.factory.setAddress("127.0.0.1", port.getHost().port)
        self.factory.register(self.servant, "servant")
        self.use_tls_client(pki)

        def body():
            with Pyro4.Proxy(self.factory.uriFor("servant")) as p:
                with self.assertRaises(Pyro4.errors.CommunicationError) as e:
                    p.count()
                self.assertIn("cert not for organizationName=Somebody Else", str(e.exception))

        yield client(body)
        self.assertEqual(0, self.servant.calls)

    @defer.inlineCallbacks
    def test_tls_clientWithoutCertificate_refused(self):
        pki = self.make_pki()
        port = self.listen_tls(pki, require_client_cert=True)
        self.factory.setAddress("127.0.0.1", port.getHost().port)
        self.factory.register(self.servant, "servant")
        self.use_tls_client(pki, with_certificate=False)

        def body():
            with Pyro4.Proxy(self.factory.uriFor("servant")) as p:
                # TLS 1.3 lets the client finish its side of the TLS handshake before the
                # server rejects it: Pyro4 sees the alert ("certificate required") when it
                # sends or receives its CONNECT, and wraps it in ConnectionClosedError
                with self.assertRaises(Pyro4.errors.CommunicationError):
                    p.count()

        yield client(body)
        self.assertEqual([], self.factory.handshakes)  # never got as far as Pyro's handshake
        self.assertEqual(0, self.servant.calls)

    # Twisted's ``ssl:`` endpoint parser hands pyOpenSSL its own X509/PKey objects, which
    # pyOpenSSL now deprecates: Twisted's warning, not ours (our own TLS options use
    # cryptography objects, see tls_options_from_pyro4_config).
    @pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")
    @defer.inlineCallbacks
    def test_tls_oneWay_sslEndpoint(self):
        """Server certificate only, served with ``factory.listen()`` on Twisted's ``ssl:``
        endpoint; the address comes from the port, and no client certificate is asked for."""
        pki = self.make_pki()
        description = "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s" % (
            pki.server_key, pki.server_cert)
        port = yield self.factory.listen(serverFromString(reactor, description))
        self.factory.register(self.servant, "servant")
        self.assertEqual("127.0.0.1:%d" % port.getHost().port, self.factory.locationStr)
        self.use_tls_client(pki, with_certificate=False)
        seen, mine = yield client(call_whoami, self.factory.uriFor("servant"),
                                  CertCheckingProxy)
        self.assertEqual({"family": "IPv4", "address": list(mine)}, seen)
        (handshake,) = self.factory.handshakes
        self.assertEqual(mine, handshake["peer"])
        self.assertIsNone(handshake["cert"])

    # -- several at once ---------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_allTransportsAtOnce(self):
        """One factory on TCP/IPv4, TCP/IPv6, UNIX and TLS at the same time: one client per
        transport, all connected at once, all calling the same servant."""
        tcp = self.listen_tcp("127.0.0.1")
        self.factory.setAddress("127.0.0.1", tcp.getHost().port)
        self.factory.register(self.servant, "servant")
        locations = {"IPv4": "127.0.0.1:%d" % tcp.getHost().port}
        if HAS_IPV6:
            tcp6 = self.listen_tcp("::1")
            locations["IPv6"] = "[::1]:%d" % tcp6.getHost().port
        if HAS_UNIX:
            _, path = self.listen_unix()
            locations["Unix"] = "./u:" + path
        pki = self.make_pki()
        tls = self.listen_tls(pki, require_client_cert=True)
        tls_location = "127.0.0.1:%d" % tls.getHost().port

        def body():
            # Pyro4's SSL switch is global and read at connect time: connect the plain
            # clients first, then the TLS one; then use them all while all are connected
            proxies = {family: Pyro4.Proxy(uri_at("servant", location))
                       for family, location in locations.items()}
            try:
                for proxy in proxies.values():
                    proxy._pyroBind()
                self.use_tls_client(pki)
                proxies["TLS"] = CertCheckingProxy(uri_at("servant", tls_location))
                proxies["TLS"]._pyroBind()
                results = {}

                def use(name, proxy):
                    results[name] = (proxy.whoami()["family"], proxy.count())

                threads = [threading.Thread(target=use, args=item) for item in proxies.items()]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return results
            finally:
                for proxy in proxies.values():
                    proxy._pyroRelease()

        results = yield client(body)
        expected_families = dict((family, family) for family in locations)
        expected_families["TLS"] = "IPv4"
        self.assertEqual(expected_families, {name: r[0] for name, r in results.items()})
        self.assertEqual(set(range(1, len(results) + 1)), {r[1] for r in results.values()})
        self.assertEqual(len(results), self.servant.calls)
        families = sorted(h["family"] for h in self.factory.handshakes)
        self.assertEqual(sorted(expected_families.values()), families)
        certs = [h["cert"] for h in self.factory.handshakes if h["cert"]]
        self.assertEqual(1, len(certs))
        self.assertEqual(pki.client_subject, dict(p[0] for p in certs[0]["subject"]))
        self.assertEqual(len(results), len(self.factory.ports))

    @defer.inlineCallbacks
    def test_twoTcpPorts(self):
        first = self.listen_tcp()
        second = self.listen_tcp()
        self.factory.setAddress("127.0.0.1", first.getHost().port)
        self.factory.register(self.servant, "servant")
        uri = self.factory.uriFor("servant")  # URIs name the address that was set
        self.assertEqual(first.getHost().port, uri.port)
        other = uri_at("servant", "127.0.0.1:%d" % second.getHost().port)

        def body():
            with Pyro4.Proxy(uri) as p1, Pyro4.Proxy(other) as p2:
                counts = [p1.count(), p2.count(), p1.count(), p2.count()]
                ports = [p1._pyroConnection.sock.getpeername()[1],
                         p2._pyroConnection.sock.getpeername()[1]]
                return counts, ports

        counts, ports = yield client(body)
        self.assertEqual([1, 2, 3, 4], counts)  # one servant behind both ports
        self.assertEqual([first.getHost().port, second.getHost().port], ports)
        self.assertEqual(2, len(self.factory.handshakes))

    @defer.inlineCallbacks
    def test_listen_endpoint_derivesAddress(self):
        """``factory.listen(endpoint)`` with no address set: the first port names the URIs."""
        first = yield self.factory.listen(
            serverFromString(reactor, "tcp:0:interface=127.0.0.1"))
        self.assertEqual("127.0.0.1:%d" % first.getHost().port, self.factory.locationStr)
        self.factory.register(self.servant, "servant")
        second = yield self.factory.listen(
            serverFromString(reactor, "tcp:0:interface=127.0.0.1"))
        self.assertEqual("127.0.0.1:%d" % first.getHost().port, self.factory.locationStr)
        self.assertEqual([first, second], self.factory.ports)
        uri = self.factory.uriFor("servant")
        self.assertEqual("PYRO:servant@127.0.0.1:%d" % first.getHost().port, str(uri))
        other = uri_at("servant", "127.0.0.1:%d" % second.getHost().port)

        def body():
            with Pyro4.Proxy(uri) as p1, Pyro4.Proxy(other) as p2:
                return [p1.count(), p2.count()]

        self.assertEqual([1, 2], (yield client(body)))
        yield self.factory.close()  # stops both ports, waits for both connections
        self.assertEqual([], self.factory.ports)
        self.assertEqual(set(), self.factory.protocols)

    @defer.inlineCallbacks
    def test_listen_endpoint_derivesAddress_ipv6(self):
        if not HAS_IPV6:
            raise unittest.SkipTest(NO_IPV6)
        port = yield self.factory.listen(serverFromString(reactor, r"tcp6:0:interface=\:\:1"))
        self.factory.register(self.servant, "servant")
        self.assertEqual("[::1]:%d" % port.getHost().port, self.factory.locationStr)
        seen, _ = yield client(call_whoami, self.factory.uriFor("servant"))
        self.assertEqual("IPv6", seen["family"])

    @defer.inlineCallbacks
    def test_listen_endpoint_derivesAddress_unix(self):
        if not HAS_UNIX:
            raise unittest.SkipTest("no UNIX domain sockets here")
        path = os.path.join(self.tmp, "endpoint.sock")
        yield self.factory.listen("unix:" + path)  # a description string, as twistd takes
        self.factory.register(self.servant, "servant")
        self.assertEqual("./u:" + path, self.factory.locationStr)
        seen, _ = yield client(call_whoami, self.factory.uriFor("servant"))
        self.assertEqual("Unix", seen["family"])
