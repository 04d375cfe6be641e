"""``module:attribute[=name]``: what ``serve`` serves, as ``Pyro4.Daemon.serveSimple`` takes it.

Parsing (:func:`parse_spec`) checks the syntax only; :func:`load` imports the module and
looks the attribute up. An attribute may be an object or a class: a class is registered as
Pyro4 registers classes (``@Pyro4.behavior`` decides how instances are made).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["LoadedObject", "ObjectSpec", "SpecError", "load", "parse_spec"]

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")


class SpecError(ValueError):
    """A SPEC that is not ``module:attribute[=name]``, or names nothing that exists."""


@dataclass(frozen=True)
class ObjectSpec:
    """One SPEC: where the object is, and the object id (also its name server name)."""

    module: str
    attribute: str
    name: str | None = None

    @property
    def target(self) -> str:
        return "%s:%s" % (self.module, self.attribute)

    def __str__(self) -> str:
        return self.target if self.name is None else "%s=%s" % (self.target, self.name)


@dataclass(frozen=True)
class LoadedObject:
    spec: ObjectSpec
    value: Any  # the object or class to register


def parse_spec(text: str) -> ObjectSpec:
    """``"mymod:thing=example.thing"`` → ``ObjectSpec("mymod", "thing", "example.thing")``."""
    target, equals, name = text.partition("=")
    module, colon, attribute = target.partition(":")
    if not (colon and _DOTTED.match(module) and _DOTTED.match(attribute)) or (
            equals and not name):
        raise SpecError("%r is not MODULE:ATTRIBUTE or MODULE:ATTRIBUTE=NAME" % (text,))
    return ObjectSpec(module, attribute, name or None)


def load(spec: ObjectSpec) -> LoadedObject:
    """Import the spec's module (from the current directory first, as ``python -m`` does)
    and find its attribute."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (exc.name == spec.module
                                       or spec.module.startswith(exc.name + ".")):
            raise SpecError("cannot import module %r (%s): no such module" % (
                spec.module, spec)) from exc
        raise SpecError("cannot import module %r (%s): %s" % (spec.module, spec, exc)) from exc
    except Exception as exc:  # the module's own code failed: say so, in one line
        raise SpecError("importing module %r (%s) raised %s: %s" % (
            spec.module, spec, type(exc).__name__, exc)) from exc
    value: Any = module
    for part in spec.attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError as exc:
            raise SpecError("module %r has no attribute %r (%s)" % (
                spec.module, spec.attribute, spec)) from exc
    return LoadedObject(spec, value)
