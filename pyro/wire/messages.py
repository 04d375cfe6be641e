"""The message layer's names from before the Pyro5 codec: the Pyro4 codec and the events.

The Pyro4 codec now lives in :mod:`pyro.wire.pyro4`, the generation-neutral message classes
in :mod:`pyro.wire.events`, the Pyro5 codec in :mod:`pyro.wire.pyro5`. This module keeps the
imports ``from pyro.wire.messages import PYRO4, Invoke, ...`` working.
"""

from __future__ import annotations

from .events import (
    REPLY_EXCEPTION,
    REPLY_RESULT,
    REPLY_STREAM,
    ConnectReply,
    ConnectRequest,
    Invoke,
    Request,
)
from .pyro4 import PYRO4, Pyro4Codec

__all__ = [
    "PYRO4",
    "ConnectReply",
    "ConnectRequest",
    "Invoke",
    "Pyro4Codec",
    "REPLY_EXCEPTION",
    "REPLY_RESULT",
    "REPLY_STREAM",
    "Request",
]
