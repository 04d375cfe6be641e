"""What a request may name: Pyro4's exposure rules, decided from the class before anything runs.

Pyro4 4.82 decides *after* evaluating: ``util.getAttribute`` does ``getattr(obj, name)`` and
only then checks ``_pyroExposed`` on the result, so calling an unexposed property's name as a
method runs its getter (or a descriptor's ``__get__``, or the servant's ``__getattr__``)
before the call is refused. ``util.get_exposed_property_value`` and
``set_exposed_property_value`` do ``getattr(obj.__class__, name)``, which runs a metaclass
property or a descriptor's ``__get__(None, cls)``, and with ``REQUIRE_EXPOSE=False`` they read
and write private properties. Here the same rules are applied to what the class *holds*
(looked up in its MRO without evaluating anything, as :func:`inspect.getattr_static` does),
and only what passes is evaluated:

* Private names (``util.is_private_attribute``: ``_x``, and the dunders Pyro4 lists) are
  refused always, with Pyro4's message.
* ``REQUIRE_EXPOSE=False``: a method call is Pyro4's own ``util.getAttribute`` (everything
  public is allowed, as in Pyro4).
* ``REQUIRE_EXPOSE=True``: what costs no servant code to evaluate (a function, a
  static/class method, a builtin, a slot, a plain value, an entry of the instance's
  ``__dict__``) is evaluated and checked by Pyro4's rule (``_pyroExposed`` on the result).
  A property or other data descriptor is evaluated only when exposed (Pyro4's rule for
  properties, as in ``util.get_exposed_members``: ``fget or fset or fdel`` carries
  ``_pyroExposed``); a descriptor of another kind only when it (or the function it wraps) is
  marked; a name the class does not hold only when the instance's ``__dict__`` has it, never
  by the servant's ``__getattr__`` (nor by a ``__getattribute__`` of its own making it up;
  such a ``__getattribute__`` still runs for what passes, as it does for every attribute).
  Refusals carry Pyro4's message: "attempt to access unexposed attribute '<name>'".
* ``__getattr__`` / ``__setattr__`` requests reach only properties (Pyro4's
  ``get_exposed_property_value`` / ``set_exposed_property_value`` rules, same messages),
  found in the class itself.

Decisions depend only on the class and the name (plus the setting), so they are cached, for
names the class holds (a peer cannot grow the cache by naming things that are not there).
The cache is never invalidated: like Pyro4's cache of ``get_exposed_members``, it assumes a
servant class keeps its members; call :func:`forget` after changing one at run time.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from Pyro4 import util
from Pyro4.configuration import config

__all__ = ["forget", "property_getter", "property_setter", "remote_method"]

_MISSING = object()
_type_mro = type.__dict__["__mro__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_name = type.__dict__["__name__"].__get__
_object_getattribute = object.__getattribute__

#: Descriptor types whose ``__get__`` is the interpreter's own: evaluating runs no servant code.
_BUILTIN_DESCRIPTORS = frozenset({
    types.FunctionType, types.BuiltinFunctionType, types.WrapperDescriptorType,
    types.MethodWrapperType, types.MethodDescriptorType, types.ClassMethodDescriptorType,
    types.MemberDescriptorType, types.GetSetDescriptorType, types.MethodType,
})

# Method rules: how to resolve a name the class holds.
_EVALUATE = 0  # getattr and Pyro4's check of the result: evaluating runs nothing unexposed
_REFUSE = 1  # an unexposed property (or other data descriptor): nothing may evaluate it
_INSTANCE_ONLY = 2  # only an entry in the instance's __dict__ may be used, nothing else
_EVALUATE_NO_FALLBACK = 3  # as _EVALUATE, without the servant's __getattr__ as a fallback

#: (class, name) -> rule, for REQUIRE_EXPOSE=True; (class, name, only_exposed, setting) ->
#: accessor function (or refusal message) for attribute requests. Bounded: when full, it
#: starts over (classes are few; this only guards against something creating them forever).
_method_rules: dict[tuple[type, str], int] = {}
_property_rules: dict[tuple[type, str, bool, bool], Any] = {}
_CACHE_LIMIT = 4096

_UNEXPOSED = "attempt to access unexposed attribute '%s'"
_UNEXPOSED_PROPERTY = "attempt to access unexposed or unknown remote attribute '%s'"


def forget() -> None:
    """Drop every cached decision (after changing a servant class's members at run time)."""
    _method_rules.clear()
    _property_rules.clear()


def _lookup(cls: type, name: str) -> Any:
    """What ``cls`` (or a class in its MRO) holds under ``name``, evaluating nothing."""
    for klass in _type_mro(cls):
        found = _type_dict(klass).get(name, _MISSING)
        if found is not _MISSING:
            return found
    return _MISSING


def _own(thing: Any) -> dict[str, Any]:
    """``thing``'s own ``__dict__`` (empty if it has none), read without running its code."""
    try:
        own = _object_getattribute(thing, "__dict__")
    except AttributeError:
        return {}
    return own if isinstance(own, dict) else {}


def _marked(thing: Any) -> bool:
    """``thing`` carries Pyro4's ``_pyroExposed`` marker (read without running its code)."""
    own = _own(thing)
    if "_pyroExposed" in own:
        return bool(own["_pyroExposed"])
    found = _lookup(type(thing), "_pyroExposed")  # (an exposed class's instances have it)
    return found is not _MISSING and bool(found)


def _wraps_marked(descriptor: Any) -> bool:
    """A descriptor of its own kind is exposed if it is marked, or if the function it wraps
    is (``@singledispatchmethod`` over ``@expose``, say: Pyro4 evaluates it, and the function
    it returns carries the wrapped function's marker)."""
    if _marked(descriptor):
        return True
    own = _own(descriptor)
    return any(own.get(name) is not None and _marked(own[name])
               for name in ("__wrapped__", "__func__", "func"))


def _accessors(descriptor: Any) -> tuple[Any, Any, Any]:
    """``(fget, fset, fdel)`` of a property-like data descriptor (Nones for another kind)."""
    if isinstance(descriptor, property):
        return descriptor.fget, descriptor.fset, descriptor.fdel
    own = _own(descriptor)  # property-like classes (types.DynamicClassAttribute) keep them here
    return own.get("fget"), own.get("fset"), own.get("fdel")


def _is_data_descriptor(thing: Any) -> bool:
    kind = type(thing)
    return _lookup(kind, "__set__") is not _MISSING or _lookup(kind, "__delete__") is not _MISSING


def _runs_no_code(thing: Any) -> bool:
    """Evaluating ``thing`` as an instance attribute runs no servant code."""
    kind = type(thing)
    if kind in _BUILTIN_DESCRIPTORS:
        return True
    if kind is staticmethod or kind is classmethod:
        return _runs_no_code(thing.__func__)  # a classmethod may wrap another descriptor
    return _lookup(kind, "__get__") is _MISSING  # a plain value (or a class): no __get__


def _method_rule(cls: type, name: str) -> int:
    """How ``remote_method`` resolves ``name`` on instances of ``cls`` (REQUIRE_EXPOSE on)."""
    # Attributes the class does not hold may still be made up: by __getattr__ (after the
    # normal lookup fails), or by a __getattribute__ of the servant's own.
    fallback = _lookup(cls, "__getattr__") is not _MISSING
    dynamic = fallback or _lookup(cls, "__getattribute__") is not _object_getattribute
    attr = _lookup(cls, name)
    if attr is _MISSING:
        return _INSTANCE_ONLY if dynamic else _EVALUATE
    if _is_data_descriptor(attr):  # wins over the instance's __dict__
        if type(attr) in _BUILTIN_DESCRIPTORS:  # a slot, or a C type's attribute
            exposed = True
        else:
            fget, fset, fdel = _accessors(attr)
            func = fget or fset or fdel
            exposed = _marked(attr) or (func is not None and _marked(func))
        if not exposed:
            return _REFUSE
    elif not _runs_no_code(attr) and not _wraps_marked(attr):
        return _INSTANCE_ONLY  # unless the instance's __dict__ shadows it, it stays shut
    return _EVALUATE_NO_FALLBACK if fallback else _EVALUATE


def remote_method(obj: Any, name: Any, require_expose: bool | None = None) -> Any:
    """``util.getAttribute(obj, name)``, except that nothing unexposed is evaluated: what a
    plain, oneway or batched call named ``name`` may run; else Pyro4's AttributeError.
    ``require_expose``: the setting to apply (None: ``Pyro4.config.REQUIRE_EXPOSE``, read
    now; Pyro5's rules are those of ``True``)."""
    if type(name) is not str:
        if not isinstance(name, str):
            return util.getAttribute(obj, name)  # not a name at all: Pyro4's own error
        name = str.__str__(name)  # a str subclass: its plain value, no methods of its own
    if not (config.REQUIRE_EXPOSE if require_expose is None else require_expose):
        return util.getAttribute(obj, name)  # Pyro4's: everything public is allowed
    rule = _method_rules.get((type(obj), name))
    if rule == _EVALUATE:  # the hot path: an exposed method, decided before
        value = getattr(obj, name)
    else:
        value = _resolve(obj, name, rule)
    if getattr(value, "_pyroExposed", False):  # Pyro4's rule, on what was evaluated
        return value
    raise AttributeError(_UNEXPOSED % name)


def _resolve(obj: Any, name: str, rule: int | None) -> Any:
    """``remote_method``'s evaluation when the rule is not the plain one (or not known yet)."""
    cls = type(obj)
    if rule is None:
        if util.is_private_attribute(name):
            raise AttributeError("attempt to access private attribute '%s'" % name)
        rule = _method_rule(cls, name)
        if _lookup(cls, name) is not _MISSING:  # only names the class holds are kept
            if len(_method_rules) >= _CACHE_LIMIT:
                _method_rules.clear()
            _method_rules[(cls, name)] = rule
    if rule == _INSTANCE_ONLY:
        if name not in _own(obj):
            raise AttributeError(_UNEXPOSED % name)
        rule = _EVALUATE_NO_FALLBACK
    elif rule == _REFUSE:
        raise AttributeError(_UNEXPOSED % name)
    if rule == _EVALUATE_NO_FALLBACK:  # the class's own lookup, without __getattr__ after it
        return _lookup(cls, "__getattribute__")(obj, name)
    return getattr(obj, name)


def _property_rule(cls: type, name: str, only_exposed: bool, setting: bool) -> Any:
    """The getter (or setter) a ``__getattr__`` (``__setattr__``) request of ``name`` may run
    on instances of ``cls``, or the message refusing it."""
    attr = _lookup(cls, name)
    if attr is _MISSING:
        if _lookup(type(cls), name) is _MISSING and _lookup(type(cls), "__getattr__") is _MISSING:
            # what Pyro4's getattr(obj.__class__, name) says
            return "type object '%.50s' has no attribute '%s'" % (_type_name(cls), name)
        return _UNEXPOSED_PROPERTY % name  # Pyro4 would evaluate the metaclass's, then refuse
    if not _is_data_descriptor(attr):
        return _UNEXPOSED_PROPERTY % name
    fget, fset, fdel = _accessors(attr)
    if setting:  # Pyro4: the setter is exposed if the property is (fget or fset or fdel)
        func = fget or fset or fdel
        if fset is not None and getattr(func, "_pyroExposed", not only_exposed):
            return fset
    elif fget is not None and getattr(fget, "_pyroExposed", not only_exposed):
        return fget
    return _UNEXPOSED_PROPERTY % name


def _not_a_name(name: Any) -> TypeError:
    """The TypeError Pyro4's ``getattr(obj.__class__, name)`` meets for a name that is no string.

    Python words it differently from version to version (3.10: "getattr(): attribute name must
    be string"), so it is asked: builtin ``object`` runs no lookup, let alone user code.
    """
    try:
        getattr(object, name)
    except TypeError as exc:
        return exc
    return TypeError("attribute name must be string, not '%s'" % type(name).__name__)


def _property_accessor(obj: Any, name: Any, only_exposed: bool, setting: bool) -> Any:
    if type(name) is not str:
        if not isinstance(name, str):
            raise _not_a_name(name)
        name = str.__str__(name)  # a str subclass: its plain value, no methods of its own
    if util.is_private_attribute(name):
        raise AttributeError(_UNEXPOSED_PROPERTY % name)  # also with REQUIRE_EXPOSE off
    cls = type(obj)
    key = (cls, name, bool(only_exposed), setting)
    rule = _property_rules.get(key)
    if rule is None:
        rule = _property_rule(cls, name, bool(only_exposed), setting)
        if _lookup(cls, name) is not _MISSING:
            if len(_property_rules) >= _CACHE_LIMIT:
                _property_rules.clear()
            _property_rules[key] = rule
    if type(rule) is str:
        raise AttributeError(rule)
    return rule


def property_getter(obj: Any, name: Any, only_exposed: bool = True) -> Callable[[Any], Any]:
    """The getter ``util.get_exposed_property_value(obj, name, only_exposed)`` would call,
    found without evaluating anything; call it with ``obj``. Else Pyro4's error."""
    return _property_accessor(obj, name, only_exposed, False)  # type: ignore[no-any-return]


def property_setter(obj: Any, name: Any, only_exposed: bool = True) -> Callable[[Any, Any], Any]:
    """The setter ``util.set_exposed_property_value(obj, name, value, only_exposed)`` would
    call, found without evaluating anything; call it with ``obj, value``. Else Pyro4's error."""
    return _property_accessor(obj, name, only_exposed, True)  # type: ignore[no-any-return]
