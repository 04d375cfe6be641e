"""From a parsed configuration to a running service: the one startup path of the commands.

``python -m pyro serve|ns`` (:mod:`pyro.cli.runner`) and ``twistd pyro-serve|pyro-ns``
(:mod:`pyro.cli.tap`) both build their service here, from the configurations of
:mod:`pyro.cli.options`:

- :class:`ServeCommandService`: one factory (the daemon) on every ``--listen`` endpoint
  (a :class:`~pyro.service.ServerService` each), the SPEC objects registered once it
  listens, their names kept in the name server with ``--ns`` (:mod:`pyro.cli.registration`:
  registered again after a name server restart) and taken out on shutdown;
- :func:`name_server_service`: a :class:`~pyro.service.NameServerService`.

Each has a ``ready`` Deferred: what the command prints once it serves, or why it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from Pyro4.core import URI
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger

from ..nameserver import KeptRegistration
from ..server.factory import Pyro4ProtocolFactory
from ..service import DEFAULT_GRACE, NameServerService, ServerService
from .errors import StartupError
from .options import NameServerConfig, ServeConfig
from .registration import keep_name
from .specs import LoadedObject, load

__all__ = ["ServeCommandService", "load_objects", "name_server_lines", "name_server_service",
           "serve_service"]

log = Logger(namespace="pyro.cli")


def load_objects(config: ServeConfig) -> list[LoadedObject]:
    """Import what the SPECs name (:class:`~pyro.cli.specs.SpecError` if one is missing)."""
    return [load(spec) for spec in config.specs]


class ServeCommandService(MultiService):
    """``serve``: objects on one factory, on every endpoint, named in the name server.

    ``ready`` fires with ``[(loaded object, URI), ...]`` once every endpoint listens, the
    objects are registered and (with ``ns``) their names are in the name server, where they
    are checked every ``ns_interval`` seconds and registered again if it lost them. Stopping
    takes the names out of the name server while the factory drains (at most ``grace``
    seconds for calls in progress), then fires.
    """

    def __init__(self, objects: Sequence[LoadedObject], listen: Sequence[Any], *,
                 threads: int | None = None, hmac_key: bytes | None = None,
                 ns: bool = False, ns_host: str | None = None, ns_port: int | None = None,
                 ns_interval: float | None = None, nathost: str | None = None, natport: int | None = None,
                 grace: float | None = DEFAULT_GRACE, reactor: Any = None) -> None:
        MultiService.__init__(self)
        self.objects = list(objects)
        self.factory = Pyro4ProtocolFactory(reactor=reactor, threads=threads)
        self.factory.noisy = False  # no "Starting factory" lines: the service says more
        if hmac_key:
            self.factory._pyroHmacKey = hmac_key
        self.hmac_key = hmac_key
        self.servers = [ServerService(self.factory, endpoint, grace) for endpoint in listen]
        for server in self.servers:
            server.setServiceParent(self)
        self.ns, self.ns_host, self.ns_port = ns, ns_host, ns_port
        self.ns_interval = ns_interval
        self.nathost, self.natport = nathost, natport
        self.ready: defer.Deferred[list[tuple[LoadedObject, URI]]] = defer.Deferred()
        self.registrations: list[KeptRegistration] = []
        self._starting: defer.Deferred[Any] | None = None

    def startService(self) -> None:
        MultiService.startService(self)
        self._starting = defer.Deferred.fromCoroutine(self._start())
        self._starting.chainDeferred(self.ready)

    async def _start(self) -> list[tuple[LoadedObject, URI]]:
        ports = await defer.gatherResults(
            [server.whenListening() for server in self.servers],
            consumeErrors=True).addErrback(lambda f: f.value.subFailure)
        if self.nathost:  # Pyro4's NAT location: what URIs name instead of the port's address
            natport = self.natport or ports[0].getHost().port
            host = "[%s]" % self.nathost if ":" in self.nathost else self.nathost
            self.factory.natLocationStr = "%s:%d" % (host, natport)
        served = []
        for loaded in self.objects:
            try:
                uri = self.factory.register(loaded.value, loaded.spec.name)
            except Exception as exc:
                raise StartupError("cannot serve %s: %s" % (loaded.spec, exc)) from exc
            log.info("serving {spec} as {uri}", spec=str(loaded.spec), uri=str(uri))
            served.append((loaded, uri))
        if self.ns:
            await defer.gatherResults([defer.Deferred.fromCoroutine(keep_name(
                loaded.spec.name, uri, self.registrations, ns_host=self.ns_host,
                ns_port=self.ns_port, hmac_key=self.hmac_key, interval=self.ns_interval,
                reactor=self.factory.reactor))
                for loaded, uri in served if loaded.spec.name is not None],
                consumeErrors=True).addErrback(lambda f: f.value.subFailure)
        self._starting = None
        self.serving = True
        return served

    #: Whether startup went through: the objects are served (and named).
    serving = False

    def stopService(self) -> defer.Deferred[None]:
        if self.serving:
            log.info("shutting down: no new connections; calls in progress may take up "
                     "to {grace:g} s", grace=self.servers[0].grace if self.servers else 0)
        self.serving = False
        if self._starting is not None:
            self._starting.cancel()
        waits = [registration.stop() for registration in self.registrations]
        self.registrations = []
        waits.append(MultiService.stopService(self))
        return defer.gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)


def serve_service(config: ServeConfig, objects: Sequence[LoadedObject],
                  reactor: Any = None) -> ServeCommandService:
    return ServeCommandService(objects, config.listen, threads=config.threads,
                               hmac_key=config.hmac_key, ns=config.ns,
                               ns_host=config.ns_host, ns_port=config.ns_port,
                               ns_interval=config.ns_interval, nathost=config.nathost, natport=config.natport,
                               grace=config.grace, reactor=reactor)


def name_server_service(config: NameServerConfig, reactor: Any = None) -> NameServerService:
    return NameServerService(config.listen, broadcast=config.broadcast,
                             storage=config.storage, autoclean=config.autoclean,
                             hmac_key=config.hmac_key, bchost=config.bchost,
                             bcport=config.bcport, host=config.host, nathost=config.nathost,
                             natport=config.natport, grace=config.grace, reactor=reactor)


def name_server_lines(service: NameServerService) -> list[str]:
    """What ``python -m Pyro4.naming`` prints once its name server runs (in our order)."""
    from twisted.internet.address import UNIXAddress

    from ..service import describe_address

    lines = []
    existing = service.nameserver.count()
    if existing > 1:  # (its own registration does not count)
        lines.append("Persistent store contains %d existing registrations." % existing)
    address = service.server.port.getHost()
    hostip = ("Unix domain socket" if isinstance(address, UNIXAddress)
              else address.host)
    lines.append("NS running on %s (%s)" % (service.factory.locationStr, hostip))
    if service.broadcast_port is not None:
        lines.append("Broadcast server running on %s"
                     % describe_address(service.broadcast_port.getHost()))
    else:
        lines.append(str(service.broadcast_note))
    if service.factory.natLocationStr:
        lines.append("internal URI = %s" % service.internal_uri)
        lines.append("external URI = %s" % service.uri)
    else:
        lines.append("URI = %s" % service.uri)
    return lines
