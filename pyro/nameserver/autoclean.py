"""``NS_AUTOCLEAN`` on the reactor: registrations whose servers are gone are removed.

Pyro4 4.82's ``AutoCleaner`` is a thread that wakes every 2 seconds (``loop_delay``) and,
once ``NS_AUTOCLEAN`` seconds have passed since its last round, tries a plain TCP connection
(no Pyro handshake, timeout ``COMMTIMEOUT or 5``) to the host and port of every registered
URI, one after the other, except those named ``Pyro.Daemon`` and ``Pyro.NameServer``. A
connection that fails marks the name unreachable *since then*; a name still unreachable
``max_unreachable_time`` (20) seconds later is removed (and logged at INFO); a connection
that succeeds clears the mark. Metadata plays no part. ``NS_AUTOCLEAN`` below
``min_autoclean_value`` (3) is a ``ValueError``, unless ``override_autoclean_min`` is set
("only for unit test purposes").

:class:`AutoCleaner` keeps those rules, on the reactor instead of in a thread:

- a round every ``interval`` seconds on a ``LoopingCall`` (a round that is still running when
  the next is due delays it, as Pyro4's loop does);
- "answering" means the same thing: a TCP (or UNIX socket) connection to the URI's location
  is accepted within ``COMMTIMEOUT or 5`` seconds, opened with Twisted's endpoints and closed
  at once. It is deliberately not a Pyro ping: a daemon that requires an HMAC key the name
  server does not have, or that vets handshakes, still answers, as it does for Pyro4;
- ``Pyro4.naming.AutoCleaner``'s class attributes ``max_unreachable_time``,
  ``min_autoclean_value`` and ``override_autoclean_min`` are read when Pyro4 reads them, so
  code (and Pyro4's own tests) that tune them see the same effect; ``COMMTIMEOUT`` is read per
  round.

Where Pyro4 is wrong, this is not (see the notes in :class:`AutoCleaner`): the checks of one
round run concurrently (at most ``concurrency`` at once), a name is removed only if it still
points to the URI that did not answer, a name that went away or changed its URI loses its
unreachable mark, and registrations Pyro4's thread cannot probe (UNIX socket URIs, on which
its thread dies, ending all cleaning) are probed or skipped.
"""

from __future__ import annotations

from typing import Any

import Pyro4.naming
from Pyro4 import constants, errors
from Pyro4.configuration import config
from Pyro4.core import URI
from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    UNIXClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._reactor import default_reactor

__all__ = ["AutoCleaner", "check_autoclean", "connection_probe"]

log = Logger(namespace="pyro.nameserver")

#: Names the cleaner never checks (Pyro4's list).
PROTECTED_NAMES = frozenset({constants.DAEMON_NAME, constants.NAMESERVER_NAME})


def check_autoclean(interval: float) -> None:
    """Refuse an ``NS_AUTOCLEAN`` interval Pyro4 refuses: ``ValueError`` below
    ``Pyro4.naming.AutoCleaner.min_autoclean_value`` (3), unless its
    ``override_autoclean_min`` is set. Zero or less means "no cleaning" and passes."""
    pyro4 = Pyro4.naming.AutoCleaner
    if interval > 0 and not pyro4.override_autoclean_min and interval < pyro4.min_autoclean_value:
        raise ValueError("NS_AUTOCLEAN cannot be smaller than " + str(pyro4.min_autoclean_value))


class _Probe(Protocol):
    """Connected: hang up at once, and tell when the connection is gone."""

    def __init__(self) -> None:
        self.gone: defer.Deferred[None] = defer.Deferred(self._abort)

    def _abort(self, _: Any) -> None:
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.gone.called:
            self.gone.callback(None)


def _endpoint(reactor: Any, uri: URI, timeout: float) -> Any:
    if uri.sockname:
        return UNIXClientEndpoint(reactor, uri.sockname, timeout=timeout)
    if isIPv6Address(uri.host):
        return TCP6ClientEndpoint(reactor, uri.host, uri.port, timeout=timeout)
    if isIPAddress(uri.host):
        return TCP4ClientEndpoint(reactor, uri.host, uri.port, timeout=timeout)
    return HostnameEndpoint(reactor, uri.host, uri.port, timeout=timeout)


def connection_probe(uri: URI, timeout: float, reactor: Any = None) -> defer.Deferred[None]:
    """Fires (with ``None``) if a connection to ``uri``'s location is accepted within
    ``timeout`` seconds, and fails otherwise; the connection is closed at once (the Deferred
    fires once it is gone). Plain TCP even when ``Pyro4.config.SSL`` is set, as Pyro4's
    cleaner connects; a UNIX socket URI connects to its socket."""
    reactor = default_reactor(reactor)
    probe = _Probe()
    d: defer.Deferred[Any] = _endpoint(reactor, uri, timeout).connect(
        Factory.forProtocol(lambda: probe))
    d.addCallback(lambda _: probe.gone)
    d.addTimeout(timeout, reactor)  # name resolution too (the endpoints bound only connecting)
    return d


class AutoCleaner:
    """Removes the registrations of ``nameserver`` whose servers no longer accept connections.

    :param nameserver: a ``Pyro4.naming.NameServer`` (its ``list``, ``lookup``, ``remove``
        and ``lock`` are used, in the reactor thread).
    :param interval: seconds between rounds (``NS_AUTOCLEAN``); below 3 is a ``ValueError``
        (see :func:`check_autoclean`).
    :param reactor: connects the probes (default: the global reactor, when needed).
    :param clock: runs the rounds and tells the time (default: ``reactor``). Tests pass a
        ``task.Clock`` here and keep real connections.
    :param probe: ``probe(uri, timeout) -> Deferred`` that fails when ``uri`` does not
        answer (default: :func:`connection_probe` on ``reactor``).
    :param max_unreachable_time: seconds a name must stay unreachable before it is removed;
        default ``Pyro4.naming.AutoCleaner.max_unreachable_time`` (20), read every round.
    :param concurrency: at most this many probes at once.

    :ivar unreachable: ``{name: (uri, since)}`` for the names that did not answer, ``since``
        in the clock's seconds (when the first failed check ended, as in Pyro4).
    :ivar removed: how many registrations it removed so far.

    Differences from Pyro4's thread, each one a fix: Pyro4 probes one name after the other
    (a thousand dead servers on a silent network take 5000 seconds per round), removes by
    name whatever the name points to by then, keeps the marks of names that went away (a
    name registered again later and found down is removed at its first failed check), and
    dies on the first registration whose URI has no host and port (a ``./u:`` UNIX socket URI
    or a ``PYRONAME:`` alias without a location: ``socket.connect`` raises ``TypeError``,
    which nothing catches), after which nothing is cleaned. Here a UNIX socket URI is probed
    on its socket and a location-less ``PYRONAME:``/``PYROMETA:`` alias is skipped (nothing
    to connect to); an alias with a location is probed at that location, as Pyro4 does.
    """

    def __init__(self, nameserver: Any, interval: float, reactor: Any = None,
                 clock: Any = None, probe: Any = None,
                 max_unreachable_time: float | None = None, concurrency: int = 32) -> None:
        if interval <= 0:
            raise ValueError("the autoclean interval must be positive, not %r" % (interval,))
        check_autoclean(interval)
        self.nameserver = nameserver
        self.interval = interval
        self._reactor = reactor
        self._clock = clock
        self._probe = probe
        self._max_unreachable_time = max_unreachable_time
        self._semaphore = defer.DeferredSemaphore(concurrency)
        self.unreachable: dict[str, tuple[str, float]] = {}
        self.removed = 0
        self.rounds = 0
        self._loop: LoopingCall | None = None
        self._round: defer.Deferred[None] | None = None
        self._round_waiters: list[defer.Deferred[None]] = []

    @property
    def clock(self) -> Any:
        return self._clock if self._clock is not None else default_reactor(self._reactor)

    @property
    def max_unreachable_time(self) -> float:
        if self._max_unreachable_time is not None:
            return self._max_unreachable_time
        return float(Pyro4.naming.AutoCleaner.max_unreachable_time)

    @property
    def running(self) -> bool:
        """Whether the timer runs (from :meth:`start` to :meth:`stop`)."""
        return self._loop is not None and self._loop.running

    @property
    def current_round(self) -> defer.Deferred[None] | None:
        """A Deferred for the end of the round in progress (``None`` between rounds)."""
        if self._round is None:
            return None
        waiter: defer.Deferred[None] = defer.Deferred()
        self._round_waiters.append(waiter)
        return waiter

    def start(self) -> None:
        """Start the timer: the first round runs ``interval`` seconds from now."""
        if self.running:
            return
        self._loop = LoopingCall(self._timed_round)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=False).addErrback(
            lambda f: log.failure("autoclean stopped by an error", f))
        log.debug("autoclean enabled: every {interval} s", interval=self.interval)

    def stop(self) -> None:
        """Stop the timer and abandon the round in progress (its probes are cancelled)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._round is not None:
            self._round.cancel()

    def _timed_round(self) -> defer.Deferred[None]:
        return self.clean()

    def clean(self) -> defer.Deferred[None]:
        """Run one round now (or join the one in progress); never fails (errors are logged)."""
        if self._round is not None:
            return self.current_round  # type: ignore[return-value]
        self._round = defer.Deferred.fromCoroutine(self._clean())

        def over(result: Any) -> None:
            self._round = None
            if isinstance(result, Failure) and not result.check(defer.CancelledError):
                log.failure("autoclean: the round failed", result)
            waiters, self._round_waiters = self._round_waiters, []
            for waiter in waiters:
                waiter.callback(None)

        self._round.addBoth(over)
        return self.current_round  # type: ignore[return-value]

    async def _clean(self) -> None:
        registrations = self.nameserver.list()
        for name in [name for name, (uri, _) in self.unreachable.items()
                     if registrations.get(name) != uri]:
            del self.unreachable[name]  # gone, or registered anew: a fresh start
        timeout = config.COMMTIMEOUT or 5
        checks = [self._semaphore.run(self._checked, name, uri, timeout)
                  for name, uri in sorted(registrations.items()) if name not in PROTECTED_NAMES]
        try:
            await defer.gatherResults(checks, consumeErrors=True)
        except defer.FirstError as error:  # (a check fails only when it was cancelled)
            error.subFailure.raiseException()
        self.rounds += 1
        if self.unreachable:
            log.debug("autoclean: {unreachable}/{count} names currently unreachable",
                      unreachable=len(self.unreachable), count=self.nameserver.count())

    def _checked(self, name: str, uri: str, timeout: float) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._check(name, uri, timeout))

    async def _check(self, name: str, uri: str, timeout: float) -> None:
        try:
            target = URI(uri)
        except errors.PyroError:
            log.warn("autoclean: {name} has an invalid uri {uri!r}; not checked", name=name,
                     uri=uri)
            return
        if not target.sockname and (target.host is None or target.port is None):
            return  # PYRONAME:/PYROMETA: without a location: nothing to connect to
        try:
            if self._probe is not None:
                await self._probe(target, timeout)
            else:
                await connection_probe(target, timeout, self._reactor)
        except defer.CancelledError:
            raise
        except Exception as exc:
            self._unreachable(name, uri, exc)
        else:
            self.unreachable.pop(name, None)

    def _unreachable(self, name: str, uri: str, exc: BaseException) -> None:
        now = self.clock.seconds()
        known = self.unreachable.get(name)
        if known is None or known[0] != uri:
            self.unreachable[name] = known = (uri, now)
            log.debug("autoclean: {name} is unreachable ({uri}: {error})", name=name, uri=uri,
                      error=str(exc) or type(exc).__name__)
        if now - known[1] < self.max_unreachable_time:
            return
        del self.unreachable[name]
        with self.nameserver.lock:  # removed only if it still points where nothing answers
            try:
                current = str(self.nameserver.lookup(name))
            except errors.NamingError:
                return
            if current != str(URI(uri)):
                return
            self.nameserver.remove(name)
        self.removed += 1
        log.info("autoclean: unregistering {name}; cannot connect uri {uri} for {seconds:.0f} "
                 "sec", name=name, uri=uri, seconds=now - known[1])  # Pyro4's words
