"""URIs and proxies of either Pyro generation, as each client's generation can receive them.

A servant may return (or nest in a result, a batch's results, a stream's items) URIs and
proxies of either generation: ``self._pyroDaemon.uriFor(x)`` and ``register(x)`` give a
``Pyro4.core.URI``, a servant written for Pyro5 builds a ``Pyro5.api.URI``, and a servant
may hold a proxy of either kind to some other server. A client rebuilds only its own
generation's classes (a Pyro5 client fails with ``SerializeError: unsupported serialized
class: Pyro4.core.URI``), so each travels as its counterpart:

* a URI as the client generation's URI of the same text (``Pyro5.core.URI(str(uri4))``);
* a proxy as the client generation's proxy for the same URI, with the same methods, oneway
  methods, attributes, handshake and serializer (``pickle``, ``dill``, ``cloudpickle``, which
  Pyro5 lacks, become None: the client's default). Pyro4's HMAC key is dropped (Pyro5 has none). The
  proxy then speaks the client's generation, so its server must serve that one too (ours
  serves both); a Pyro5 client cannot reach a Pyro4 daemon through any proxy.

Registered objects (autoproxies) are :mod:`pyro.server.pyro5`'s business. What a client
sends keeps the client's generation: the servant gets what that client's serializer
decodes. Per serializer, how the counterpart is written:

* json, marshal and msgpack, of both generations: each generation's ``SerializerBase`` has a
  class-to-dict registry of its own (Pyro4's for Pyro4's serializers, Pyro5's for Pyro5's);
  each learns the other generation's URI and proxy classes, as the counterpart's dict.
  (Marshal, in both, writes only a top-level object so: a URI nested in a list is refused
  by Pyro's marshal serializer whatever its generation, as in Pyro's own daemons.)
* serpent: one class registry for both generations. Its hook for the four classes asks
  which generation is serializing (:func:`serializing_generation`) and writes that one's
  dict; under neither (serpent used directly), a class's own generation's.
* Pyro4's pickle, dill and cloudpickle: ``copyreg``, shared by every pickler in the process;
  the reducer of Pyro5's two classes writes Pyro4's counterpart only under a Pyro4
  serializer, else pickles them as always.

Ordinary replies cost what they did: serpent's hooks replace registrations Pyro has for
these classes already, a class-to-dict registry is read only for objects the serializer
cannot write natively, and ``copyreg``'s table is a dict looked up by type.
"""

from __future__ import annotations

import copyreg
import os
import sys
from typing import Any

import Pyro4.core
import Pyro4.util
import Pyro5.client
import Pyro5.core
import Pyro5.serializers
import serpent

__all__ = ["install", "serializing_generation", "to_pyro4", "to_pyro5"]

_PYRO5_FILES = os.path.dirname(os.path.abspath(Pyro5.core.__file__)) + os.sep
_PYRO4_FILES = os.path.dirname(os.path.abspath(Pyro4.core.__file__)) + os.sep

URI4, PROXY4 = Pyro4.core.URI, Pyro4.core.Proxy
URI5, PROXY5 = Pyro5.core.URI, Pyro5.client.Proxy


def serializing_generation() -> int | None:
    """Which generation's serializer is at work: 4 or 5 (whose frame is nearest on the
    stack: Pyro4's ``util`` or Pyro5's ``serializers``), or None when neither is. Serpent's
    frames, the pickler's, and ours, are neither."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_PYRO5_FILES):
            return 5
        if filename.startswith(_PYRO4_FILES):
            return 4
        frame = frame.f_back
    return None


# -- counterparts ------------------------------------------------------------------------

def to_pyro4(value: Any) -> Any:
    """A Pyro5 URI or proxy as Pyro4's (anything else as it is)."""
    if isinstance(value, URI5):
        return URI4(str(value))
    if isinstance(value, PROXY5):
        uri, oneway, methods, attrs, handshake, serializer = value.__getstate__()
        proxy = object.__new__(PROXY4)
        proxy.__setstate__((URI4(uri), set(oneway), set(methods), set(attrs), None, None,
                            handshake, None, serializer))
        return proxy
    return value


def to_pyro5(value: Any) -> Any:
    """A Pyro4 URI or proxy as Pyro5's (anything else as it is)."""
    if isinstance(value, URI4):
        return URI5(str(value))
    if isinstance(value, PROXY4):
        serializer = value._pyroSerializer
        if serializer not in Pyro5.serializers.serializers:
            serializer = None
        proxy = object.__new__(PROXY5)
        proxy.__setstate__((str(value._pyroUri), tuple(value._pyroOneway),
                            tuple(value._pyroMethods), tuple(value._pyroAttrs),
                            value._pyroHandshake, serializer))
        return proxy
    return value


# -- how each serializer writes them -----------------------------------------------------

def _as_pyro4_dict(value: Any) -> dict[str, Any]:
    return Pyro4.core.serialize_core_object_to_dict(to_pyro4(value))  # type: ignore[no-any-return]


def _as_pyro5_dict(value: Any) -> dict[str, Any]:
    return Pyro5.serializers.serialize_pyro_object_to_dict(to_pyro5(value))  # type: ignore[no-any-return]


def _serpent_hook(obj: Any, serializer: Any, stream: Any, level: int) -> None:
    """Serpent's hook for both generations' URI and proxy classes: the dict of the
    generation serializing (Pyro's own hooks write the class-to-dict registry's dict)."""
    generation = serializing_generation()
    if generation is None:
        generation = 4 if isinstance(obj, (URI4, PROXY4)) else 5
    base = Pyro4.util.SerializerBase if generation == 4 else Pyro5.serializers.SerializerBase
    serializer.ser_builtins_dict(base.class_to_dict(obj), stream, level)


def _pickled(value: Any) -> Any:
    """``copyreg``'s reducer of Pyro5's URI and proxy: Pyro4's counterpart under a Pyro4
    serializer (pickle, dill, cloudpickle), else what pickle does without the reducer."""
    if serializing_generation() != 4:
        return value.__reduce_ex__(2)
    counterpart = to_pyro4(value)
    if isinstance(counterpart, URI4):
        return URI4, (str(counterpart),)
    return PROXY4, (str(counterpart._pyroUri),), counterpart.__getstate__()


_installed = False


def install() -> None:
    """Register the hooks (once; later calls do nothing)."""
    global _installed
    if _installed:
        return
    for kind in (URI5, PROXY5):
        Pyro4.util.SerializerBase.register_class_to_dict(kind, _as_pyro4_dict, serpent_too=False)
        copyreg.pickle(kind, _pickled)
    for kind in (URI4, PROXY4):
        Pyro5.serializers.SerializerBase.register_class_to_dict(kind, _as_pyro5_dict,
                                                                serpent_too=False)
    for kind in (URI4, PROXY4, URI5, PROXY5):
        serpent.register_class(kind, _serpent_hook)
    _installed = True
