"""``PyroPatientProxy``: a ``Pyro4.Proxy`` that waits for what it needs to show up.

It waits for its name server, its object or its daemon instead of failing at once. It
*blocks* while it waits: give it to a :class:`pyro.proxy.PyroDeferredService` (or use it in a
thread of your own), never call it directly from the reactor thread. Importable as
``pyro.proxy.PyroPatientProxy``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import Pyro4
import Pyro4.core
import Pyro4.errors
import Pyro4.futures
import Pyro4.message
import Pyro4.naming
from twisted.logger import Logger

__all__ = ["DEFAULT_MAX_TRIES", "DEFAULT_RETRY_INTERVAL", "PyroPatientProxy"]

DEFAULT_RETRY_INTERVAL = 2.0
DEFAULT_MAX_TRIES = 43200  # one day at one try every 2 seconds

_log = Logger(namespace="pyro.proxy")


def _isPermanent(error: BaseException | None) -> bool:
    """Errors that waiting cannot cure: protocol and security errors. Pyro4 wraps them: a wrong
    HMAC key arrives as a CommunicationError caused by a SecurityError, or, from the name
    server, as a NamingError caused by that CommunicationError; so follow the causes."""
    permanent = (Pyro4.errors.ProtocolError, Pyro4.errors.SecurityError)
    for _ in range(5):
        if error is None:
            return False
        if isinstance(error, permanent):
            return True
        error = error.__cause__
    return False


class PyroPatientProxy(Pyro4.Proxy):
    """A ``Pyro4.Proxy`` that waits for its name server, object or daemon to show up.

    .. warning:: **This proxy BLOCKS its caller while it waits** (by default up to a day).
       Never call it from the reactor thread: wrap it in a ``PyroDeferredService``, which runs
       it in worker threads, or use it from a thread of your own.

    Whenever it has to connect (first call, ``_pyroBind()``, metadata, after a lost
    connection), it tries to resolve its URI through the name server (``PYRONAME:`` /
    ``PYROMETA:``) and to connect and handshake; when that fails with a naming or
    communication error it sleeps and tries again, at most once every ``retry_interval``
    seconds, ``max_tries`` times, then raises ``NamingError`` (the name server or name never
    appeared) or ``CommunicationError`` (the object's daemon never answered) naming the URI.
    Protocol and security errors (a wrong HMAC key...) are raised at once: waiting will not fix
    them. Once connected, calls behave exactly as with ``Pyro4.Proxy``; a lost connection is
    reconnected patiently at the next call. A proxy bound to a direct ``PYRO:`` URI that it got
    from the name server falls back to the name server when that address stops answering (the
    object may have moved, e.g. to a new port after a restart).

    It logs (``twisted.logger``, namespace ``pyro.proxy``) when it finds the name server, when
    it loses it, and when it starts waiting or gives up.

    Settings are attributes, so that ``copy.copy`` (used by Pyro4's async machinery and by
    ``PyroDeferredService``) keeps them: ``_pyroRetryInterval``, ``_pyroMaxTries``,
    ``_pyroSleep`` (the function used to wait: inject a fake one in tests).

    :param retry_interval: seconds between the starts of two tries.
    :param max_tries: how many tries before giving up (at least 1; 1 means no patience).
    :param sleep: ``sleep(seconds)``; ``time.sleep`` by default.
    """

    # Pyro4's Proxy.__setattr__ accepts only its own attribute names (anything else is taken
    # for a remote attribute, which needs a connection); these are ours. Class defaults as
    # well, because Proxy.__getattr__ would fetch remote metadata for a missing one (e.g. on
    # an instance made by unpickling, which skips __init__).
    _pyroPatientAttributes = frozenset(
        {"_pyroRetryInterval", "_pyroMaxTries", "_pyroSleep", "_pyroPatientUri",
         "_pyroNameServerFound"})
    _pyroRetryInterval: float = DEFAULT_RETRY_INTERVAL
    _pyroMaxTries: int = DEFAULT_MAX_TRIES
    _pyroSleep: Callable[[float], None] = staticmethod(time.sleep)  # type: ignore[assignment]
    _pyroPatientUri: Pyro4.URI | None = None  # the URI as given, before any binding
    _pyroNameServerFound: bool | None = None  # None: not asked yet

    def __init__(self, uri: str | Pyro4.URI, connected_socket: Any = None,
                 retry_interval: float = DEFAULT_RETRY_INTERVAL,
                 max_tries: int = DEFAULT_MAX_TRIES,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        if retry_interval < 0:
            raise ValueError("retry_interval must not be negative")
        self._pyroRetryInterval = retry_interval
        self._pyroMaxTries = max_tries
        self._pyroSleep = sleep
        super().__init__(uri, connected_socket)
        self._pyroPatientUri = Pyro4.URI(self._pyroUri)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in PyroPatientProxy._pyroPatientAttributes:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def __copy__(self) -> PyroPatientProxy:
        duplicate = super().__copy__()
        duplicate._pyroRetryInterval = self._pyroRetryInterval
        duplicate._pyroMaxTries = self._pyroMaxTries
        duplicate._pyroSleep = self._pyroSleep
        if self._pyroPatientUri is not None:
            duplicate._pyroPatientUri = Pyro4.URI(self._pyroPatientUri)
        duplicate._pyroNameServerFound = self._pyroNameServerFound  # log changes, not copies
        return duplicate

    def _pyroReconnect(self, tries: int | None = None) -> None:
        """Release the connection and connect again, patiently: ``tries`` tries (default
        ``_pyroMaxTries``), ``_pyroRetryInterval`` apart, waiting with ``_pyroSleep``."""
        self._pyroRelease()
        with self._Proxy__pyroConnLock:
            self._pyroPatientlyConnect(replaceUri=False, maxTries=tries or self._pyroMaxTries)

    def _Proxy__pyroCreateConnection(self, replaceUri: bool = False,
                                     connected_socket: Any = None) -> bool:
        # Pyro4 funnels every connection (first call, _pyroBind, metadata, reconnects) through
        # the name-mangled Proxy.__pyroCreateConnection; Python looks the mangled name up on
        # the instance's class, so this override catches them all.
        if connected_socket is not None:
            return super()._Proxy__pyroCreateConnection(replaceUri, connected_socket)
        with self._Proxy__pyroConnLock:
            if self._pyroConnection is not None:
                return False
            return self._pyroPatientlyConnect(replaceUri, self._pyroMaxTries)

    def _pyroPatientlyConnect(self, replaceUri: bool, maxTries: int) -> bool:
        """Connect, trying up to ``maxTries`` times; called with the connection lock held."""
        logical = self._pyroPatientUri or self._pyroUri
        began = time.monotonic()
        lastError: Pyro4.errors.PyroError | None = None
        for attempt in range(1, maxTries + 1):
            started = time.monotonic()
            try:
                return self._pyroConnectOnce(replaceUri, retrying=attempt > 1)
            except (Pyro4.errors.NamingError, Pyro4.errors.CommunicationError) as error:
                if _isPermanent(error):
                    raise
                lastError = error
            if attempt == 1 and maxTries > 1:
                _log.info("{uri} is not available yet ({error}); trying again every {interval}s"
                          " up to {tries} times", uri=str(logical), error=lastError,
                          interval=self._pyroRetryInterval, tries=maxTries)
            else:
                _log.debug("{uri}: try {attempt} of {tries} failed: {error}", uri=str(logical),
                           attempt=attempt, tries=maxTries, error=lastError)
            if attempt < maxTries:
                self._pyroSleep(max(0.0, self._pyroRetryInterval -
                                    (time.monotonic() - started)))
        assert lastError is not None
        kind = (Pyro4.errors.NamingError if isinstance(lastError, Pyro4.errors.NamingError)
                else Pyro4.errors.CommunicationError)
        direct = "" if self._pyroUri == logical else f" (last bound to {self._pyroUri})"
        message = (f"gave up on {logical}{direct} after {maxTries} tries in "
                   f"{time.monotonic() - began:.1f}s: {lastError}")
        _log.warn("{message}", message=message)
        raise kind(message) from lastError

    def _pyroConnectOnce(self, replaceUri: bool, retrying: bool) -> bool:
        """Resolve (through the name server, logging what happens to it), then let Pyro4's own
        code connect to the resolved URI; no second lookup."""
        previous: Pyro4.URI = self._pyroUri  # type: ignore[has-type]
        logical = self._pyroPatientUri or previous
        # After a failure, a proxy bound to an address it got from the name server asks the
        # name server again: the object may have moved.
        source = logical if retrying and logical.protocol != "PYRO" else previous
        target = self._pyroResolve(source)
        self._pyroUri = target  # Pyro4 resolves self._pyroUri; a PYRO: URI resolves to itself
        try:
            connected = super()._Proxy__pyroCreateConnection(replaceUri)
        except BaseException:
            self._pyroUri = previous
            raise
        if not replaceUri and previous.protocol != "PYRO":
            # Not bound: keep the logical URI, so that the next connection resolves again
            # (what Pyro4 does). A bound proxy keeps the fresh direct address.
            self._pyroUri = previous
        return connected

    def _pyroResolve(self, uri: Pyro4.URI) -> Pyro4.URI:
        """``Pyro4.core._resolve``, split so that we know whether the name server answered."""
        if uri.protocol == "PYRO":
            return uri
        try:
            nameserver = Pyro4.naming.locateNS(uri.host, uri.port, hmac_key=self._pyroHmacKey)
        except Pyro4.errors.NamingError:
            self._pyroNameServerLost(uri)
            raise
        if not self._pyroNameServerFound:
            _log.info("found the name server {ns} for {uri}", ns=str(nameserver._pyroUri),
                      uri=str(uri))
            self._pyroNameServerFound = True
        with nameserver:
            try:
                if uri.protocol == "PYRONAME":
                    return nameserver.lookup(uri.object)
                candidates = nameserver.list(metadata_all=uri.object)
            except Pyro4.errors.CommunicationError:
                self._pyroNameServerLost(uri)
                raise
        if not candidates:
            raise Pyro4.errors.NamingError(
                f"no registrations available with desired metadata properties {uri.object}")
        return Pyro4.URI(random.choice(list(candidates.values())))

    def _pyroNameServerLost(self, uri: Pyro4.URI) -> None:
        if self._pyroNameServerFound:
            _log.warn("lost the name server for {uri}", uri=str(uri))
        self._pyroNameServerFound = False
