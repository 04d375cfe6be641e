"""Item streams: iterators and generators returned by servants, served item by item.

Pyro4 keeps open streams in ``daemon.streaming_responses``, a dict of
``stream_id -> (client, created, linger_since, iterator)`` that its ``DaemonObject``
(``get_next_stream_item`` / ``close_stream``) reads and writes directly. We keep exactly that
layout so Pyro4's own ``DaemonObject`` works unchanged, and add the housekeeping Pyro4's
request loop does: a stream dies ``ITER_STREAM_LIFETIME`` seconds after it was created, and
``ITER_STREAM_LINGER`` seconds after its client went away (0: at once). Time is the reactor's,
so tests drive it with ``task.Clock``; the timer runs only while streams are open.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from Pyro4 import errors
from Pyro4.configuration import config
from twisted.internet.task import LoopingCall

_LAZY_DICT_ITERATORS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
HOUSEKEEPING_INTERVAL = 1.0


#: Result types that are no iterator, answered without the ABC checks below (~0.4 us of a
#: small call: ``isinstance`` against ``Iterator`` goes through ``ABCMeta.__instancecheck__``).
_NOT_STREAMS: frozenset[type] = frozenset({int, float, str, bytes, bool, type(None), dict, list,
                                           tuple, set, frozenset, complex})


def is_stream(value: Any) -> bool:
    """Would Pyro4 stream this result instead of serializing it? (Async iterators too.)"""
    if type(value) in _NOT_STREAMS:
        return False
    return isinstance(value, (Iterator, AsyncIterator)) or inspect.isgenerator(value)


class ItemStreams:
    """The open item streams of one server, with Pyro4's lifetime and linger rules."""

    def __init__(self, clock: Any):
        self._clock = clock
        self.responses: dict[str, tuple[Any, float, float, Any]] = {}
        # the settings of streams opened for a generation other than Pyro4 (Pyro5's
        # ``ITER_STREAM_LIFETIME`` and ``ITER_STREAM_LINGER``): stream id -> its config
        self._configs: dict[str, Any] = {}
        self._housekeeper: LoopingCall | None = None

    def open(self, iterator: Any, client: Any, settings: Any = None) -> str | None:
        """Register ``iterator`` for ``client``; the stream id, or None when streaming is off.

        ``settings``: the config of the client's generation (``Pyro5.config`` for a Pyro5
        client), whose ``ITER_STREAMING`` is read now and whose lifetime and linger time
        apply to this stream; None: ``Pyro4.config``."""
        settings = config if settings is None else settings
        if not settings.ITER_STREAMING:
            return None
        if type(iterator) in _LAZY_DICT_ITERATORS:
            raise errors.PyroError(
                "won't serialize or stream lazy dict iterators, convert to list yourself"
            )
        stream_id = str(uuid.uuid4())
        self.responses[stream_id] = (client, self._clock().seconds(), 0, iterator)
        if settings is not config:
            self._configs[stream_id] = settings
        self._start_housekeeping()
        return stream_id

    def client_gone(self, client: Any) -> None:
        """The client disconnected: let its streams linger, or drop them now."""
        now = self._clock().seconds()
        for stream_id, (owner, created, _, iterator) in list(self.responses.items()):
            if owner is client:
                if self._configs.get(stream_id, config).ITER_STREAM_LINGER > 0:
                    self.responses[stream_id] = (None, created, now, iterator)
                else:
                    del self.responses[stream_id]

    def expire(self) -> None:
        """Drop streams past their lifetime or linger time (Pyro4's housekeeping rules)."""
        now = self._clock().seconds()
        for stale in [key for key in self._configs if key not in self.responses]:
            del self._configs[stale]  # (ended by the Pyro.Daemon object)
        for stream_id, (_, created, linger_since, _) in list(self.responses.items()):
            settings = self._configs.get(stream_id, config)
            lifetime, linger = settings.ITER_STREAM_LIFETIME, settings.ITER_STREAM_LINGER
            too_old = 0 < lifetime < now - created
            lingered = linger > 0 and linger_since and now - linger_since > linger
            if too_old or lingered:
                del self.responses[stream_id]
        if not self.responses:
            self._configs.clear()
            self.stop()

    def clear(self) -> None:
        self.responses.clear()
        self._configs.clear()
        self.stop()

    def stop(self) -> None:
        if self._housekeeper is not None and self._housekeeper.running:
            self._housekeeper.stop()
        self._housekeeper = None

    def _start_housekeeping(self) -> None:
        if self._housekeeper is None:
            self._housekeeper = LoopingCall(self.expire)
            self._housekeeper.clock = self._clock()
            self._housekeeper.start(HOUSEKEEPING_INTERVAL, now=False)
