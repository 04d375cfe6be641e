"""Names that survive a name server restart: :func:`keep_registered`.

A Pyro4 server registers its objects once, when it starts; a name server restarted with
in-memory storage has forgotten them, and ``NS_AUTOCLEAN`` (or another program) may remove
or replace them. :func:`keep_registered` registers a name, then checks it every ``interval``
seconds on the reactor's clock with a ``lookup``, and registers it again when the name server
no longer has it or has it pointing elsewhere. While no name server can be reached it retries
with backoff (logged once, as a warning, and again when it is back). Each check finds the name server afresh, as ``Pyro4.locateNS()`` would
(:func:`pyro.client.locate_ns`), so one that came back elsewhere is found too; the connection
is closed between checks (a Pyro4 name server with the thread server gives each open
connection a worker thread, and holding one per kept name would use up its pool).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from Pyro4 import errors
from Pyro4.core import URI
from twisted.application.internet import backoffPolicy
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._reactor import default_reactor

__all__ = ["DEFAULT_INTERVAL", "KeptRegistration", "keep_registered"]

#: Seconds between two checks of a kept name: how long a name server restarted without it
#: may go without it (``python -m pyro serve --ns --ns-interval``).
DEFAULT_INTERVAL = 10.0

log = Logger(namespace="pyro.nameserver")


class KeptRegistration:
    """A name kept registered with a name server until :meth:`stop` (see :func:`keep_registered`).

    :param locate: ``locate() -> Deferred`` of a connected name server proxy (methods
        ``lookup``, ``register``, ``remove`` returning Deferreds, and ``close()``), e.g.
        ``lambda: pyro.client.locate_ns(...)``; called for every check.
    :param clock: the clock the checks and retries run on.

    :ivar registrations: how many times it registered the name (the first time included).
    :ivar ns_uri: the URI of the name server that has the name, as of the last check that
        reached one and found it there (``None`` before, and while another holds it).
    """

    def __init__(self, name: str, uri: str | URI, locate: Callable[[], defer.Deferred[Any]],
                 clock: Any, interval: float = DEFAULT_INTERVAL,
                 backoff: Callable[[int], float] | None = None,
                 metadata: Iterable[str] | None = None, safe: bool = False) -> None:
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        if isinstance(metadata, str):
            raise TypeError("metadata should not be a str, but another iterable (set, list, etc)")
        if interval <= 0:
            raise ValueError("interval must be positive, not %r" % (interval,))
        self.name = name
        self.uri = uri if isinstance(uri, URI) else URI(uri)  # (an invalid one fails here)
        self.metadata = set(metadata) if metadata else None
        self.safe = safe
        self.interval = interval
        self._locate = locate
        self._clock = clock
        self._backoff = backoff or backoffPolicy(initialDelay=0.5, factor=1.5,
                                                 maxDelay=interval)
        self.registrations = 0
        self.ns_uri: URI | None = None
        self._first: URI | None = None
        self._waiters: list[tuple[defer.Deferred[URI], bool]] = []  # (waiter, fail_fast)
        self._tried = False  # the first check is over
        self._first_error: Exception | None = None  # why the first check did not register
        self._failures = 0  # checks failed in a row
        self._warned: str | None = None  # the failure last logged as a warning
        self._conflict: str | None = None
        self._may_hold = False  # a register() was sent: stop() must look
        self._run: defer.Deferred[None] | None = None
        self._firing = False  # the loop is calling the waiters (which may call stop())
        self._stopped: defer.Deferred[None] | None = None

    def start(self) -> None:
        """Register now, then keep checking (:func:`keep_registered` calls it)."""
        if self._run is None and self._stopped is None:
            self._run = defer.Deferred.fromCoroutine(self._keep())

    def when_registered(self, fail_fast: bool = False) -> defer.Deferred[URI]:
        """Fires with the name server's URI once the name has been registered (at once if it
        has been); fails with ``CancelledError`` if :meth:`stop` comes first. A new Deferred
        for every call.

        With ``fail_fast``, the first check decides: if it cannot register the name (no name
        server, a refusal, or with ``safe`` a name that another URI holds), the Deferred
        fails with why (a Pyro4 error), instead of the warning being logged; the keeper goes
        on trying all the same (:meth:`stop` it to give up). For a program that must not
        start without its name, as ``serve --ns``.
        """
        if self._first is not None:
            return defer.succeed(self._first)
        if self._stopped is not None:
            return defer.fail(defer.CancelledError("stopped before the name was registered"))
        if fail_fast and self._first_error is not None:
            return defer.fail(self._first_error)
        waiter: defer.Deferred[URI] = defer.Deferred()
        self._waiters.append((waiter, fail_fast))
        return waiter

    def stop(self) -> defer.Deferred[None]:
        """Stop checking and remove the name (if it still points to our URI); fires when done.

        A name server that cannot be reached, or fails, is logged, not reported: the
        Deferred fires with ``None`` in every case. Calling it again returns the same result.
        """
        if self._stopped is not None:
            return self._stopped
        run, self._run = self._run, None
        waiters, self._waiters = self._waiters, []
        for waiter, _ in waiters:
            waiter.errback(defer.CancelledError("stopped before the name was registered"))
        done: defer.Deferred[None] = defer.succeed(None)
        if run is not None:
            if not self._firing:  # (else the loop is running, not waiting: it sees _stopped)
                run.cancel()
            done = run.addErrback(lambda f: f.trap(defer.CancelledError) and None)
        self._stopped = done.addCallback(
            lambda _: defer.Deferred.fromCoroutine(self._remove()))
        return self._stopped

    # -- the loop -------------------------------------------------------------------------

    async def _keep(self) -> None:
        while True:
            try:
                await self._check()
            except defer.CancelledError:
                raise
            except Exception as exc:
                self._failures += 1
                delay = self._backoff(self._failures)
                self.ns_uri = None
                if not self._fail_fast(exc):
                    self._warn(exc, delay)
            else:
                self._failures = 0
                self._warned = None
                delay = self.interval
                if self._first is None:  # safe=True, and another URI holds the name
                    self._fail_fast(errors.NamingError("%s is registered to %s" % (
                        self.name, self._conflict)))
            self._tried = True
            if self._stopped is not None:  # by a waiter's callback
                return
            await task.deferLater(self._clock, delay, lambda: None)

    def _fail_fast(self, error: Exception) -> bool:
        """After the first check: give ``error`` to the ``fail_fast`` waiters; any?"""
        if self._tried:
            return False
        self._first_error = error
        failing = [waiter for waiter, fail_fast in self._waiters if fail_fast]
        self._waiters = [(waiter, False) for waiter, fail_fast in self._waiters if not fail_fast]
        self._fire(failing, Failure(error))
        return bool(failing)

    def _fire(self, waiters: list[defer.Deferred[URI]], result: Any) -> None:
        """Fire ``waiters``; a callback may call :meth:`stop` while the loop runs."""
        self._firing = True
        try:
            for waiter in waiters:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)
        finally:
            self._firing = False

    def _warn(self, error: Exception, delay: float) -> None:
        """A warning for the first failure in a row (and when the reason changes); debug
        for the retries after it: an outage is one event, not one line every few seconds."""
        text = _describe(error)
        first = text != self._warned
        self._warned = text
        emit = log.warn if first else log.debug
        emit("keeping {name} registered: {error}; next try in {delay:.1f} s",
             name=self.name, error=text, delay=delay)

    async def _check(self) -> None:
        ns = await self._locate()
        if self._failures:
            log.info("keeping {name} registered: the name server answers again",
                     name=self.name)
        try:
            try:
                found = await ns.lookup(self.name)
            except errors.NamingError:
                found = None
            if found is not None and str(found) == str(self.uri):
                if self._first is None:
                    log.info("found {name} registered as {uri} in the name server {ns}",
                             name=self.name, uri=str(self.uri), ns=_ns_text(ns))
                self._held(ns)
                return
            if found is not None and self.safe:
                self._taken(str(found))
                return
            self._may_hold = True
            try:
                await ns.register(self.name, self.uri, safe=self.safe, metadata=self.metadata)
            except errors.NamingError as exc:
                if self.safe and "already registered" in str(exc):  # taken since the lookup
                    self._taken("another uri")
                    return
                raise
            self.registrations += 1
            if self.registrations == 1:
                log.info("registered {name} as {uri} in the name server {ns}",
                         name=self.name, uri=str(self.uri), ns=_ns_text(ns))
            elif found is None:
                log.info("registered {name} again: the name server did not have it",
                         name=self.name)
            else:
                log.warn("registered {name} again: it pointed to {other}", name=self.name,
                         other=str(found))
            self._held(ns)
        finally:
            await ns.close()

    def _held(self, ns: Any) -> None:
        self._conflict = None
        self._may_hold = True
        self.ns_uri = URI(ns.uri) if getattr(ns, "uri", None) is not None else None
        if self._first is None:
            self._first = self.ns_uri or self.uri
            waiters, self._waiters = self._waiters, []
            self._fire([waiter for waiter, _ in waiters], self._first)

    def _taken(self, other: str) -> None:
        self.ns_uri = None
        if self._conflict != other:  # once per holder, not every interval
            log.warn("cannot register {name}: it is registered to {other} (safe=True: left "
                     "alone; taken when it is free)", name=self.name, other=other)
        self._conflict = other

    async def _remove(self) -> None:
        if not self._may_hold:
            return
        try:
            ns = await self._locate()
        except Exception as exc:
            log.warn("could not remove {name}: {error}", name=self.name, error=_describe(exc))
            return
        try:
            found = await ns.lookup(self.name)
            if str(found) == str(self.uri):
                await ns.remove(self.name)
                log.info("removed {name} from the name server", name=self.name)
            else:
                log.info("left {name} in the name server: it points to {other} now",
                         name=self.name, other=str(found))
        except errors.NamingError:
            pass  # not there any more
        except Exception as exc:
            log.warn("could not remove {name}: {error}", name=self.name, error=_describe(exc))
        finally:
            await ns.close()


def _ns_text(ns: Any) -> str:
    uri = getattr(ns, "uri", None)
    return str(uri) if uri is not None else "(unknown URI)"


def _describe(exc: BaseException) -> str:
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    cause = exc.__cause__
    if cause is None or (str(cause) and str(cause) in str(exc)):  # (said already)
        return text
    return text + " (%s)" % _describe(cause)


def keep_registered(name: str, uri: str | URI, *, ns_host: str | None = None,
                    ns_port: int | None = None, hmac_key: bytes | str | None = None,
                    metadata: Iterable[str] | None = None, safe: bool = False,
                    reactor: Any = None, interval: float = DEFAULT_INTERVAL,
                    backoff: Callable[[int], float] | None = None, timeout: float = 10.0,
                    broadcast: bool = True) -> KeptRegistration:
    """Register ``name`` for ``uri`` with the name server and keep it registered until
    ``stop()``: a :class:`KeptRegistration`.

    The name server is found for every check as ``Pyro4.locateNS(ns_host, ns_port,
    broadcast, hmac_key)`` finds it (:func:`pyro.client.locate_ns`: ``NS_HOST`` if it looks
    local, then a broadcast query, then ``NS_HOST:NS_PORT``). Every ``interval`` seconds the
    name is looked up and registered again (with ``metadata``) if the name server has lost it
    or has it pointing elsewhere; only the URI is compared, not the metadata (Pyro4's
    ``DbmStorage`` drops metadata, so comparing it would re-register forever). With
    ``safe=True`` (``register(..., safe=True)``), a name that another URI holds is left alone
    (and logged) and taken when it is free. While no name server answers, the next try
    comes after ``backoff(failed_tries)`` seconds (default: Twisted's ``backoffPolicy``,
    0.75 s growing by half each time up to ``interval``, plus up to a second of random jitter,
    so that servers that lost the same name server do not all come back at once); the first
    failure in a row is a warning, the retries after it are debug lines. Every call to the
    name server has ``timeout`` seconds.

    ``when_registered()`` fires once the name is registered; ``stop()`` stops, removes the name
    if it still points to ``uri``, and fires when done. Nothing here raises later: failures
    are logged (twisted.logger, namespace ``pyro.nameserver``) and retried.
    """
    from ..client import locate_ns

    clock = default_reactor(reactor)

    def locate() -> defer.Deferred[Any]:
        return locate_ns(ns_host, ns_port, broadcast=broadcast, reactor=reactor,
                         hmac_key=hmac_key, timeout=timeout)

    kept = KeptRegistration(name, uri, locate, clock, interval=interval, backoff=backoff,
                            metadata=metadata, safe=safe)
    kept.start()
    return kept
