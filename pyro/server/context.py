"""Per-call facts for servants: Pyro4's ``current_context``, kept true across ``await``.

Pyro4 keeps call facts (client, sequence number, correlation id, annotations...) in
``Pyro4.current_context``, a thread-local. Its daemon fills it before each call, in the thread
that runs the call. A Twisted server runs many calls interleaved in one thread, so a servant
coroutine that ``await``-s would see the *latest* call's facts when it resumes. This module
keeps one :class:`CallContext` per call and re-installs it every time that call's code runs:
before the servant is called, in a worker thread, and before each step of a coroutine.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Generator
from typing import Any

from Pyro4.core import current_context

from ..wire.pyro4 import PYRO4

_UUID = uuid.UUID
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
_new_object = object.__new__
_set_attribute = object.__setattr__
# The server's own generator, not the random module's: servants own that one (one that
# seeds it for reproducible runs must get its numbers, as under Pyro's daemons, whose uuid4
# reads os.urandom). Seeded from os.urandom, and again in a forked child.
_generator = random.Random()
_random_bits = _generator.getrandbits
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_generator.seed)
#: a version-4 UUID's fixed bits: version 4 (bits 76-79), RFC 4122 variant (bits 62-63)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_correlation_id() -> uuid.UUID:
    """A random version-4 UUID, as ``uuid.uuid4()`` makes, for a call whose client sent none.

    Both Pyro daemons give every call one. ``uuid4()`` costs ~1.4 us and a ``getrandom``
    system call, one of the three a small call made (with ``recv`` and ``send``); a
    correlation id is a tag, not a secret, so a Mersenne Twister of the server's own serves
    (seeded from ``os.urandom``), and the UUID is built as ``UUID(int=...)`` builds it,
    without re-checking its own bits: ~0.7 us.
    """
    u = _new_object(_UUID)
    _set_attribute(u, "int", _random_bits(128) & _UUID4_CLEAR | _UUID4_SET)
    _set_attribute(u, "is_safe", _SAFE_UNKNOWN)
    return u


def context_class(codec: Any) -> type[CallContext]:
    """The call-context class for a client of ``codec``'s generation: Pyro4's, or the one
    registered for it (Pyro5's, :class:`pyro.server.pyro5.CallContext5`, which fills
    ``Pyro5.api.current_context`` too, registers itself when that module is imported: the
    factory imports it before the first Pyro5 client is served)."""
    return _CONTEXT_CLASSES[codec]


def register_context_class(codec: Any, cls: type[CallContext]) -> None:
    """Serve the clients of ``codec`` with call contexts of class ``cls``."""
    _CONTEXT_CLASSES[codec] = cls


class CallContext:
    """A snapshot of ``Pyro4.current_context`` for one call (``to_global()`` format)."""

    __slots__ = ("values", "_saved")

    def __init__(self, values: dict[str, Any]):
        self.values = values
        self._saved: tuple[Any, Any, Any] = ({}, None, {})

    @classmethod
    def for_message(cls, connection: Any, msg: Any, handshake: bool = False) -> CallContext:
        """The facts Pyro4's daemon records for an incoming message.

        Like Pyro4's daemon, a handshake does not record the client's address: that keeps
        idle connections from paying for an address tuple they never use. The correlation
        id is the client's (a ``CORR`` annotation in Pyro4, the header in Pyro5), else new.
        """
        corr = connection.codec.correlation_id(msg)
        return cls(
            {
                "client": connection,
                "client_sock_addr": None if handshake else connection.peer_address,
                "seq": msg.seq,
                "msg_flags": msg.flags,
                "serializer_id": msg.serializer_id,
                "annotations": msg.annotations,
                "response_annotations": {},
                "correlation_id": (new_correlation_id() if corr is None
                                   else uuid.UUID(bytes=corr)),
            }
        )

    def install(self) -> None:
        """Make these facts what ``Pyro4.current_context`` shows in this thread.

        What a client in this thread had set there (annotations, correlation id) and the
        response annotations of its last call are kept for :meth:`capture` to put back.
        """
        facts = current_context.__dict__  # (this thread's: it is a threading.local)
        self._saved = (facts["annotations"], facts["correlation_id"],
                       facts["response_annotations"])
        # what ``current_context.from_global(self.values)`` does (it sets exactly these
        # keys), in one C call rather than eight attribute stores: ~0.3 us a call
        facts.update(self.values)

    @property
    def response_annotations(self) -> dict[str, bytes]:
        """The annotations to send back: the servant's, plus the correlation id."""
        annotations = dict(self.values["response_annotations"])
        annotations["CORR"] = self.values["correlation_id"].bytes
        return annotations

    def capture(self) -> None:
        """Take back what the servant changed (it may replace ``response_annotations``), then
        give the thread back the client facts it had before :meth:`install`.

        The reactor thread runs much besides servant code; a Pyro4 or ``pyro.client`` proxy
        used there (a timer, a callback) reads ``current_context`` to decide what annotations
        and correlation id to send: its own, never those of whichever request was served last.
        (Pyro4's servers leave the served call's facts in place: their threads run nothing
        else.) The connection is dropped too; the rest are plain numbers.
        """
        facts = current_context.__dict__
        self.values["response_annotations"] = facts["response_annotations"]
        facts["annotations"], facts["correlation_id"], facts["response_annotations"] = self._saved
        facts["client"] = facts["client_sock_addr"] = None

    def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``function`` with these facts installed (in whatever thread this runs)."""
        self.install()
        try:
            return function(*args, **kwargs)
        finally:
            self.capture()

    def drive(self, coroutine: Any) -> Generator[Any, Any, Any]:
        """A generator that steps ``coroutine``, installing these facts before every step.

        Twisted's ``ensureDeferred`` accepts generators as well as coroutines and sends each
        result back in, so this wrapper is transparent to the servant: ``await`` of a
        Deferred works as usual, and cancellation arrives as a thrown exception.
        """
        send_value: Any = None
        error: BaseException | None = None
        while True:
            self.install()
            try:
                if error is not None:
                    yielded = coroutine.throw(error)
                else:
                    yielded = coroutine.send(send_value)
            except StopIteration as stop:
                return stop.value
            finally:
                self.capture()
            try:
                send_value, error = (yield yielded), None
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # delivered into the coroutine on the next step
                send_value, error = None, exc


_CONTEXT_CLASSES: dict[Any, type[CallContext]] = {PYRO4: CallContext}
