"""What the server does differently for Pyro5 clients, beyond what their messages mean.

The codec (:mod:`pyro.wire`) reads and writes Pyro5's frames; the dispatcher serves both
generations with the same code. What is left is here, imported only once Pyro5 is needed
(the package is optional):

* :class:`CallContext5`: a Pyro5 call fills ``Pyro5.api.current_context`` (a thread-local
  of its own) as well as ``Pyro4.current_context``, kept right across ``await`` as for
  Pyro4 calls, so a servant written for either generation sees the call it serves;
* :func:`for_pyro5`: Pyro4's exceptions (raised by the dispatcher, or by servants written
  for Pyro4) travel as Pyro5's of the same name and words, which Pyro5 clients can rebuild
  (``Pyro4.errors.*`` is no class a Pyro5 serializer accepts);
* autoproxies: a registered object returned to a Pyro5 client travels as a
  ``Pyro5.api.Proxy`` (:func:`register_autoproxy`, :func:`proxy_for`), to a Pyro4 client as
  a ``Pyro4.Proxy`` as before. Serpent keeps one class registry for both generations, so
  its hook looks at who is serializing: Pyro5's serializers or Pyro4's (the nearest of
  their frames on the stack; the reply of either codec, and a client's call arguments).
  Other URIs and proxies of either generation (``uriFor``'s, a proxy to another server)
  reach each client as its own generation's: :mod:`pyro.server.references`, installed
  with this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import Pyro4.core
import Pyro4.errors
import Pyro5.client
import Pyro5.core
import Pyro5.errors
import serpent
from Pyro4 import util
from Pyro5 import serializers
from Pyro5.callcontext import current_context as current_context5

from ..wire.pyro5 import PYRO5
from . import references
from .context import CallContext, register_context_class
from .context import current_context as current_context4
from .references import serializing_generation

__all__ = ["CallContext5", "for_pyro4", "for_pyro5", "proxy_for", "register_autoproxy", "result",
           "serializer_names"]


def serializer_names() -> list[str]:
    """The serializers a Pyro5 client may use: all Pyro5 has (none can run code; Pyro5 has
    no ``SERIALIZERS_ACCEPTED``). msgpack is among them when it is installed."""
    return list(serializers.serializers)


class CallContext5(CallContext):
    """A Pyro5 call's facts, in ``Pyro5.api.current_context`` and ``Pyro4.current_context``.

    Both get the same values, and the same ``response_annotations`` dict: a servant may add
    to it through either, or replace it in either (the replaced one wins).
    """

    __slots__ = ("_saved5",)

    def __init__(self, values: dict[str, Any]):
        super().__init__(values)
        self._saved5: tuple[Any, Any, Any] = ({}, None, {})

    def install(self) -> None:
        super().install()
        facts = current_context5.__dict__  # (as CallContext.install: from_global, faster)
        self._saved5 = (facts["annotations"], facts["correlation_id"],
                        facts["response_annotations"])
        facts.update(self.values)

    def capture(self) -> None:
        facts = current_context5.__dict__
        replaced = facts["response_annotations"]
        if replaced is not self.values["response_annotations"]:
            current_context4.response_annotations = replaced  # what super() takes back
        facts["annotations"], facts["correlation_id"], facts["response_annotations"] = (
            self._saved5)
        facts["client"] = facts["client_sock_addr"] = None
        super().capture()


register_context_class(PYRO5, CallContext5)


# -- exceptions ---------------------------------------------------------------------------------

def for_pyro5(exc: BaseException) -> BaseException:
    """``exc`` as a Pyro5 client can receive it: a ``Pyro4.errors`` exception becomes the
    ``Pyro5.errors`` one of the same name (else ``PyroError``), with the same arguments and
    attributes (``_pyroTraceback`` included); anything else is left as it is."""
    return _translated(exc, Pyro4.errors, Pyro5.errors)


def for_pyro4(exc: BaseException) -> BaseException:
    """The other way round: a ``Pyro5.errors`` exception (raised by a servant written for
    Pyro5) as the ``Pyro4.errors`` one of the same name, which a Pyro4 client can rebuild."""
    return _translated(exc, Pyro5.errors, Pyro4.errors)


def _translated(exc: BaseException, source: Any, target: Any) -> BaseException:
    """An exception of module ``source`` as ``target``'s class of the nearest name in its
    MRO (else ``target.PyroError``), same arguments and attributes; others as they are."""
    kind = type(exc)
    if kind.__module__ != source.__name__:
        return exc
    for klass in kind.__mro__:
        counterpart = getattr(target, klass.__name__, None)
        if isinstance(counterpart, type) and issubclass(counterpart, target.PyroError):
            break
    else:
        counterpart = target.PyroError
    translated = counterpart(*exc.args)
    translated.__dict__.update(vars(exc))
    return translated  # type: ignore[no-any-return]


# -- autoproxies --------------------------------------------------------------------------------

def result(codec: Any, msg: Any, serializer: Any, value: Any, batch: bool,
           annotations: Mapping[str, bytes]) -> Any:
    """``codec.result(...)`` for a Pyro5 client; a batch's failure (its exception wrapper)
    carries a Pyro5 error."""
    if batch:
        for item in value:
            if isinstance(item, Pyro5.core._ExceptionWrapper):
                item.exception = for_pyro5(item.exception)
    return codec.result(msg, serializer, value, batch, annotations, None)


def _serializing_for_pyro5() -> bool:
    """Whether the serpent serialization under way is Pyro5's (else Pyro4's, or neither's:
    serpent used directly, whose autoproxies stay Pyro4's as before)."""
    return serializing_generation() == 5


def proxy_for(daemon: Any, objectOrId: Any, nat: bool = True) -> Pyro5.client.Proxy:
    """A ``Pyro5.api.Proxy`` of an object registered on ``daemon`` (our factory), with the
    metadata a Pyro5 client gets for it (Pyro5's rules: only what is exposed)."""
    uri = daemon.uriFor(objectOrId, nat)
    obj = daemon.pyro5_faces.get(uri.object) or daemon.objectsById.get(uri.object)
    if obj is None:
        raise Pyro5.errors.DaemonError("object isn't registered in this daemon")
    proxy = Pyro5.client.Proxy(str(uri))
    proxy._pyroGetMetadata(known_metadata=util.get_exposed_members(obj, only_exposed=True))
    return proxy


def _to_pyro5_proxy(obj: Any) -> Any:
    """The Pyro5 proxy a registered object travels as (anything else stays itself)."""
    daemon = getattr(obj, "_pyroDaemon", None)
    if daemon is not None and hasattr(daemon, "pyro5_proxy_for"):
        return daemon.pyro5_proxy_for(obj)
    return obj


def _class_to_dict(previous: Any) -> Any:
    """Pyro5's marshal serializer has no type replacements: it writes registered objects
    through a class-to-dict converter, this one, which writes the proxy instead. (Pyro5's
    own daemon sends marshal clients the object's attributes, and sets its ``_pyroDaemon``
    to None while at it, which would end its autoproxies for everybody.) An object that is
    no longer registered goes to the converter the class had before (``previous``), else
    is written as Pyro5 writes an object of no registered class."""
    def as_dict(obj: Any) -> dict[str, Any]:
        replaced = _to_pyro5_proxy(obj)
        if replaced is not obj:
            return serializers.serialize_pyro_object_to_dict(replaced)  # type: ignore[no-any-return]
        if previous is not None:
            return previous(obj)  # type: ignore[no-any-return]
        value = dict(vars(obj))
        value["__class__"] = type(obj).__module__ + "." + type(obj).__name__
        return value

    as_dict._pyro_autoproxy = True  # type: ignore[attr-defined]
    return as_dict


def _serpent_hook(obj: Any, serializer: Any, stream: Any, level: int) -> None:
    """Serpent's class hook for a registered type, shared by both generations' serializers:
    the proxy of the generation the current reply is for."""
    if _serializing_for_pyro5():
        replaced = _to_pyro5_proxy(obj)
    else:
        replaced = Pyro4.core.pyroObjectToAutoProxy(obj)  # Pyro4's own (AUTOPROXY, read now)
    if replaced is obj:
        serializer.ser_default_class(obj, stream, level)
    else:
        serializer._serialize(replaced, stream, level)


def register_autoproxy(obj_or_class: Any) -> None:
    """Have Pyro5's serializers write instances of this object's class (or of this class)
    as Pyro5 proxies, as ``Pyro5.server.Daemon.register`` has them do."""
    kind = obj_or_class if inspect.isclass(obj_or_class) else type(obj_or_class)
    for name, serializer in serializers.serializers.items():
        if name != "serpent":
            serializer.register_type_replacement(kind, _to_pyro5_proxy)
    registry = getattr(serializers.SerializerBase,
                       "_SerializerBase__custom_class_to_dict_registry", {})
    previous = registry.get(kind)
    if not getattr(previous, "_pyro_autoproxy", False):
        serializers.SerializerBase.register_class_to_dict(kind, _class_to_dict(previous),
                                                          serpent_too=False)
    serpent.register_class(kind, _serpent_hook)


references.install()  # URIs and proxies of either generation, to both generations' clients
