"""The native client (and PyroDeferredService's workers) over TLS, configured the way Pyro4 clients are: ``Pyro4.config.SSL``,
``SSL_CACERTS``, ``SSL_CLIENTCERT`` and ``SSL_CLIENTKEY``, read by ``default_endpoint`` for
every connection. The server is our factory on ``reactor.listenSSL`` (as in
``test_transports``), with certificates made fresh for each test (``tests/support/certs.py``).
"""

from __future__ import annotations

import shutil
import socket
import tempfile

import Pyro4
from cryptography.hazmat.primitives import serialization
from Pyro4 import errors
from twisted.internet import defer, reactor
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    UNIXClientEndpoint,
    _WrapperEndpoint,
)
from twisted.trial import unittest

from pyro.client import DeferredProxy, default_endpoint
from pyro.protocol import DEFAULT_BACKLOG
from pyro.proxy import PyroDeferredService
from pyro.threaded.workerconnection import WorkerConnection

from ..server import test_transports as transports
from ..support.certs import make_pki
from ..support.config import patch_config

config = Pyro4.config


@Pyro4.expose
class Echo:
    def echo(self, value):
        return value


def _can_bind(host: str) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


class ClientTLSTests(unittest.TestCase):
    timeout = 30

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pyro-tls-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.factory = transports.WitnessFactory()
        self.addCleanup(self.factory.close)  # stops the ports, waits for the connections
        self.servant = transports.Servant()
        patch_config(self, SSL=False, SSL_CACERTS="", SSL_CLIENTCERT="", SSL_CLIENTKEY="",
                       SSL_CLIENTKEYPASSWD="", SSL_SERVERCERT="", SSL_SERVERKEY="",
                       SSL_REQUIRECLIENTCERT=False)
        transports.reset_pyro4_ssl_contexts()
        self.addCleanup(transports.reset_pyro4_ssl_contexts)
        self.pki = make_pki(self.tmp)

    # -- helpers -------------------------------------------------------------------------------

    def listen_tls(self, host="127.0.0.1", require_client_cert=True):
        """Our server, configured from Pyro4's server SSL items; returns the servant's URI."""
        config.SSL_SERVERCERT = self.pki.server_cert
        config.SSL_SERVERKEY = self.pki.server_key
        config.SSL_CACERTS = self.pki.ca_cert
        config.SSL_REQUIRECLIENTCERT = require_client_cert
        port = reactor.listenSSL(0, self.factory, transports.tls_options_from_pyro4_config(),
                                 interface=host, backlog=DEFAULT_BACKLOG)
        self.factory.ports.append(port)
        if require_client_cert:
            self.factory.required_serial = "%X" % self.pki.client_serial
            self.factory.required_issuer = self.pki.ca_subject["organizationName"]
            self.factory.required_subject = {"countryName": "NL",
                                             "organizationName": "Razorvine.net"}
        return port

    def serve(self, port, host="127.0.0.1"):
        self.factory.setAddress(host, port.getHost().port)
        self.factory.register(self.servant, "servant")
        return self.factory.uriFor("servant")

    def use_tls_client(self, cacerts=None, with_certificate=True):
        config.SSL = True
        config.SSL_CACERTS = self.pki.ca_cert if cacerts is None else cacerts
        config.SSL_CLIENTCERT = self.pki.client_cert if with_certificate else ""
        config.SSL_CLIENTKEY = self.pki.client_key if with_certificate else ""

    def proxy(self, uri):
        proxy = DeferredProxy(uri, max_connections=1)
        self.addCleanup(proxy.close)  # runs before factory.close (cleanups are LIFO)
        return proxy

    @defer.inlineCallbacks
    def assert_refused(self, uri):
        """The call fails with a CommunicationError (not a timeout), and nothing ran."""
        proxy = self.proxy(uri)
        started = reactor.seconds()
        with self.assertRaises(errors.CommunicationError) as caught:
            yield proxy.count()
        self.assertNotIsInstance(caught.exception, errors.TimeoutError)
        self.assertLess(reactor.seconds() - started, 10)
        self.assertEqual(0, self.servant.calls)
        return caught.exception

    # -- TLS -----------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_twoWay_ipAddress(self):
        """Client certificate presented, seen by the server's validateHandshake; the server is
        checked against SSL_CACERTS and the URI's IP address."""
        uri = self.serve(self.listen_tls())
        self.use_tls_client()
        proxy = self.proxy(uri)
        self.assertEqual(1, (yield proxy.count()))
        self.assertEqual(2, (yield proxy.count()))
        (handshake,) = self.factory.handshakes
        self.assertTrue(handshake["tls"])
        cert = handshake["cert"]
        self.assertEqual(self.pki.client_subject, dict(p[0] for p in cert["subject"]))
        self.assertEqual(self.pki.ca_subject, dict(p[0] for p in cert["issuer"]))
        self.assertEqual("%X" % self.pki.client_serial, cert["serialNumber"])

    @defer.inlineCallbacks
    def test_twoWay_hostName(self):
        """A ``localhost`` URI: connected to 127.0.0.1, checked as the DNS name localhost."""
        uri = self.serve(self.listen_tls(), host="localhost")
        self.assertEqual("localhost", uri.host)
        self.use_tls_client()
        proxy = self.proxy(uri)
        self.assertEqual(1, (yield proxy.count()))
        (handshake,) = self.factory.handshakes
        self.assertEqual(self.pki.client_subject,
                         dict(p[0] for p in handshake["cert"]["subject"]))

    @defer.inlineCallbacks
    def test_encryptedClientKey(self):
        """SSL_CLIENTKEYPASSWD decrypts the client key, as Pyro4's load_cert_chain does."""
        with open(self.pki.client_key, "rb") as file:
            key = serialization.load_pem_private_key(file.read(), None)
        encrypted = self.pki.client_key + ".enc"
        with open(encrypted, "wb") as file:
            file.write(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret")))
        uri = self.serve(self.listen_tls())
        self.use_tls_client()
        config.SSL_CLIENTKEY = encrypted
        config.SSL_CLIENTKEYPASSWD = "secret"
        proxy = self.proxy(uri)
        self.assertEqual(1, (yield proxy.count()))
        (handshake,) = self.factory.handshakes
        self.assertEqual(self.pki.client_subject,
                         dict(p[0] for p in handshake["cert"]["subject"]))

    @defer.inlineCallbacks
    def test_oneWay_noClientCertificate(self):
        uri = self.serve(self.listen_tls(require_client_cert=False))
        self.use_tls_client(with_certificate=False)
        proxy = self.proxy(uri)
        self.assertEqual(1, (yield proxy.count()))
        (handshake,) = self.factory.handshakes
        self.assertTrue(handshake["tls"])
        self.assertIsNone(handshake["cert"])

    @defer.inlineCallbacks
    def test_wrongCA_fails(self):
        """A server certificate from another CA: the TLS handshake fails, and so does the
        call, with a CommunicationError, at once."""
        other = tempfile.mkdtemp(prefix="pyro-tls-other-")
        self.addCleanup(shutil.rmtree, other, True)
        uri = self.serve(self.listen_tls())
        self.use_tls_client(cacerts=make_pki(other).ca_cert)
        error = yield self.assert_refused(uri)
        self.assertIn("certificate verify failed", str(error))
        self.assertEqual([], self.factory.handshakes)

    @defer.inlineCallbacks
    def test_wrongHost_fails(self):
        """A good certificate that does not name the URI's host (127.0.0.2) is refused."""
        if not _can_bind("127.0.0.2"):
            raise unittest.SkipTest("127.0.0.2 is not a loopback address here")
        uri = self.serve(self.listen_tls(host="127.0.0.2"), host="127.0.0.2")
        self.use_tls_client()
        yield self.assert_refused(uri)
        self.assertEqual([], self.factory.handshakes)

    @defer.inlineCallbacks
    def test_clientWithoutCertificate_refused(self):
        uri = self.serve(self.listen_tls(require_client_cert=True))
        self.use_tls_client(with_certificate=False)
        yield self.assert_refused(uri)
        self.assertEqual([], self.factory.handshakes)

    @defer.inlineCallbacks
    def test_missingCAFile_fails(self):
        uri = self.serve(self.listen_tls())
        self.use_tls_client(cacerts=self.tmp + "/nothing.pem")
        error = yield self.assert_refused(uri)
        self.assertIn("nothing.pem", str(error))

    @defer.inlineCallbacks
    def test_deferredService_overTLS_usesWorkerConnections(self):
        """PyroDeferredService's workers (blocking Pyro4 proxies, Pyro4's own TLS) read replies
        ahead on their TLS connections too (pyro/workerconnection.py; sending stays Pyro4's);
        a large reply arrives in many TLS records."""
        uri = self.serve(self.listen_tls())
        self.factory.register(Echo(), "echo")
        self.use_tls_client()
        service = PyroDeferredService(Pyro4.Proxy(self.factory.uriFor("echo")), max_workers=1)
        self.addCleanup(service.close)
        big = "".join(map(str, range(60_000)))
        self.assertEqual(big, (yield service.echo(big)))
        self.assertEqual("small", (yield service.echo("small")))
        (copy,) = service._workers.copies
        self.assertIs(WorkerConnection, type(copy._pyroConnection))
        self.assertTrue(hasattr(copy._pyroConnection.sock, "getpeercert"))  # really TLS
        counter = PyroDeferredService(Pyro4.Proxy(uri))
        self.addCleanup(counter.close)
        self.assertEqual(1, (yield counter.count()))

    # -- without SSL ---------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_plain_withoutSSLConfig(self):
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1",
                                 backlog=DEFAULT_BACKLOG)
        self.factory.ports.append(port)
        uri = self.serve(port)
        proxy = self.proxy(uri)
        self.assertEqual(1, (yield proxy.count()))
        (handshake,) = self.factory.handshakes
        self.assertFalse(handshake["tls"])
        self.assertIsNone(handshake["cert"])

    def test_default_endpoint_readsConfigPerConnection(self):
        uri = Pyro4.URI("PYRO:obj@127.0.0.1:9999")
        self.assertIsInstance(default_endpoint(reactor, uri), TCP4ClientEndpoint)
        self.use_tls_client()
        endpoint = default_endpoint(reactor, uri)
        self.assertIsInstance(endpoint, _WrapperEndpoint)
        self.assertIsInstance(endpoint._wrappedEndpoint, TCP4ClientEndpoint)
        named = default_endpoint(reactor, Pyro4.URI("PYRO:obj@example.invalid:9999"))
        self.assertIsInstance(named._wrappedEndpoint, HostnameEndpoint)
        # UNIX sockets stay plain
        unix = default_endpoint(reactor, Pyro4.URI("PYRO:obj@./u:/tmp/nowhere.sock"))
        self.assertIsInstance(unix, UNIXClientEndpoint)
        config.SSL = False
        self.assertIsInstance(default_endpoint(reactor, uri), TCP4ClientEndpoint)
