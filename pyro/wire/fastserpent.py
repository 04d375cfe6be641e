"""A fast path for decoding serpent, the serializer almost every Pyro4 (and Pyro5) client uses.

``serpent.loads`` hands the whole payload to ``ast.literal_eval``: a ``compile()`` of the
text into a syntax tree, then a walk over the tree. For the small calls that make up most
Pyro4 traffic that is about two thirds of a server's Python work per request (~18 us of
~30 us for ``add(1, 2)``). Serpent's output is a very small subset of Python literal syntax,
so this module reads that subset directly: one regular expression splits the text into
tokens, and a loop with an explicit stack builds the value.

The rule that keeps this safe: :func:`loads` either returns *exactly* what ``serpent.loads``
would return for the same bytes, or ``NOT_FAST``, and then the caller uses serpent itself
(which also produces the authoritative error for bad input). Anything outside the subset
falls back: sets, complex numbers, escapes in strings, control characters, whitespace other
than spaces, comments, deep nesting, long integers, another serpent header. Nothing is ever
evaluated; the property tests in ``tests/wire/test_fastserpent.py`` compare both decoders on
serpent's own output for arbitrary data and on arbitrary text.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, Final

from Pyro4.util import SerpentSerializer

__all__ = ["HEADER", "NOT_FAST", "deserialize_call", "deserialize_data", "loads", "plain_call",
           "register_serpent_serializer", "serialize_scalar"]

#: The header Python's serpent writes (``# serpent utf-8 python3.2`` and a newline).
HEADER: Final = b"# serpent utf-8 python3.2\n"

#: What :func:`loads` returns when the input is outside the fast subset.
NOT_FAST: Final[Any] = object()

# The serpent serializer classes whose loads() is serpent.loads then recreate_classes():
# Pyro4's, and Pyro5's once its codec is imported (register_serpent_serializer).
_FAST_TYPES: set[type] = {SerpentSerializer}

#: Python's tokenizer refuses more than 200 nested brackets; stay well below it.
MAX_DEPTH: Final = 100

# Tokens, in the order they are tried. Strings: no backslash (no escapes to interpret), no
# control characters (Python's rules for those inside literals are subtle). Floats before
# ints. Integers of at most 18 digits: a longer run splits into two integer tokens, which
# the grammar then refuses, so long integers fall back (and Python's int-size limits stay
# serpent's business). Anything the pattern does not match leaves a gap, detected by length.
_SCALAR = (r"""'[^'\\\x00-\x1f\x7f]*'|"[^"\\\x00-\x1f\x7f]*"|-?\d+\.\d+(?:e[-+]?\d+)?"""
           r"|-?\d+e[-+]?\d+|-?(?:0|[1-9]\d{0,17})|True|False|None")
_TOKENS = re.compile(_SCALAR + r"|[()\[\]{},:]| +")

_CONSTANTS: Final = {"True": True, "False": False, "None": None}
_OPENER_FOR: Final = {")": "(", "]": "[", "}": "{"}


class _NotFast(Exception):
    """Internal: the text is outside the subset (or is not valid at all)."""


def loads(data: bytes) -> Any:
    """Decode serpent bytes like ``serpent.loads``, or return :data:`NOT_FAST`."""
    text = _text(data)
    return NOT_FAST if text is None else _decode(text)


def _text(data: bytes) -> str | None:
    """The text after serpent's header (None: another header, or no UTF-8)."""
    if not data.startswith(HEADER):
        return None
    try:
        return data[len(HEADER):].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _decode(text: str) -> Any:
    """One value of the fast subset, or NOT_FAST."""
    tokens = _TOKENS.findall(text)
    if sum(map(len, tokens)) != len(text):
        return NOT_FAST  # a character no token matches: outside the subset
    try:
        return _build(tokens)
    except (_NotFast, TypeError, ValueError):
        # TypeError: an unhashable dict key; serpent raises its own error for that
        return NOT_FAST


# The envelope serpent writes around most calls: ('object','method',<vargs>,{}), names that
# are plain string tokens (the same rule as _TOKENS' strings) and no keyword arguments.
_CALL_ENVELOPE = re.compile(
    r"""\('([^'\\\x00-\x1f\x7f]*)','([^'\\\x00-\x1f\x7f]*)',(.*),\{\}\)""", re.DOTALL)


# A call's arguments when they are scalars only, as serpent writes them: ``()``, ``(x,)``,
# ``(x,y)``: the usual case, read by one match and one split, without the tokenizer's stack.
# The scalars are _TOKENS' own (strings, floats, integers, constants); ``(x)`` is no tuple.
_SCALARS = re.compile(_SCALAR)
_FLAT_ARGS = re.compile(r"\(\)|\((?:(?:%s),)+(?:%s)?\)" % (_SCALAR, _SCALAR))


def _flat_args(text: str) -> tuple[Any, ...] | None:
    """The tuple ``text`` writes, if it is a tuple of scalars (else None)."""
    if _FLAT_ARGS.fullmatch(text) is None:
        return None
    convert = _CONVERT
    return tuple([convert[token[0]](token) for token in _SCALARS.findall(text)])


def _loads_call(data: bytes) -> Any:
    """:func:`loads` for a call's payload: the usual envelope is matched at once, and only
    the arguments between go through the tokenizer (~4 us less for ``add(1, 2)``).

    The same value as ``loads`` (or NOT_FAST): a Python tuple display with three fixed
    elements and ``<vargs>`` in between, where ``<vargs>`` must decode as one value by
    itself (else the whole text takes the general path).
    """
    text = _text(data)
    if text is None:
        return NOT_FAST
    envelope = _CALL_ENVELOPE.fullmatch(text)
    if envelope is not None:
        vargs = _flat_args(envelope[3])
        if vargs is not None:
            return envelope[1], envelope[2], vargs, {}
        vargs = _decode(envelope[3])
        if vargs is not NOT_FAST:
            return envelope[1], envelope[2], vargs, {}
    return _decode(text)


def plain_call(serializer: Any, data: bytes) -> tuple[str, str, tuple[Any, ...]] | None:
    """``(object_id, method, vargs)`` of the most common call: serpent's envelope with
    scalar arguments only and no keyword arguments (``('obj','add',(1,2),{})``), read
    for a registered serpent serializer; else None. Nothing in it can be a class dict, so
    this is what :func:`deserialize_call` returns for it, and the caller may take the
    general path for anything else."""
    if type(serializer) not in _FAST_TYPES or not data.startswith(HEADER):
        return None
    try:
        text = data[_HEADER_SIZE:].decode("utf-8")
    except UnicodeDecodeError:
        return None
    envelope = _CALL_ENVELOPE.fullmatch(text)
    if envelope is None:
        return None
    vargs = _flat_args(envelope[3])
    if vargs is None:
        return None
    return envelope[1], envelope[2], vargs


_HEADER_SIZE: Final = len(HEADER)


def register_serpent_serializer(cls: type) -> None:
    """Let the fast path decode for ``cls``, a serializer class whose ``loads`` is
    ``recreate_classes(serpent.loads(data))`` and ``loadsCall`` the same for a 4-tuple
    (Pyro5's ``SerpentSerializer`` is one). Subclasses are not included: they may differ."""
    _FAST_TYPES.add(cls)


def deserialize_call(serializer: Any, data: bytes, compressed: bool = False) -> Any:
    """``serializer.deserializeCall(data, compressed)``, faster for Pyro4's serpent serializer.

    Pyro4's serializer turns ``{"__class__": ...}`` dicts back into objects where it knows
    how; that step runs only when such a dict is present, so custom class hooks
    (``SerializerBase.register_dict_to_class``) keep working. Other serializers, and
    subclasses of Pyro4's serpent serializer, take their own path.
    """
    if compressed:
        data = zlib.decompress(data)
    if type(serializer) in _FAST_TYPES:
        value = _loads_call(data)
        if type(value) is tuple and len(value) == 4:
            object_id, method, vargs, kwargs = value
            if has_class_dicts(vargs) or has_class_dicts(kwargs):
                vargs = serializer.recreate_classes(vargs)
                kwargs = serializer.recreate_classes(kwargs)
            return object_id, method, vargs, kwargs
    return serializer.loadsCall(data)


def deserialize_data(serializer: Any, data: bytes, compressed: bool = False) -> Any:
    """``serializer.deserializeData(data, compressed)``, faster for Pyro4's serpent serializer."""
    if compressed:
        data = zlib.decompress(data)
    if type(serializer) in _FAST_TYPES:
        value = loads(data)
        if value is not NOT_FAST:
            return serializer.recreate_classes(value) if has_class_dicts(value) else value
    return serializer.loads(data)


#: The types serpent writes as ``repr(value)`` before it looks at anything else (its
#: ``_repr_types``; no class registration applies to them), only these exact types.
_REPR_TYPES: Final = frozenset({str, int, bool, type(None)})


def serialize_scalar(serializer: Any, value: Any) -> bytes | None:
    """What ``serializer.dumps(value)`` returns, for a value serpent writes as ``repr()``;
    else None (the caller serializes as usual).

    A servant's result is most often a number, a string, a bool or None, for which serpent
    writes its header and ``repr(value)``, but only after copying its class registry and
    setting up a serializer object (~1.5 us of a small call's ~35). Only for the serpent
    serializer classes registered here (not their subclasses).
    """
    if type(value) in _REPR_TYPES and type(serializer) in _FAST_TYPES:
        return HEADER + repr(value).encode("utf-8")
    return None


def has_class_dicts(value: Any) -> bool:
    """Whether a decoded value holds a ``{"__class__": ...}`` dict Pyro4 would rebuild."""
    kind = type(value)
    if kind is dict:
        if "__class__" in value:
            return True
        value = value.values()
    elif kind is not list and kind is not tuple:
        return False
    containers = _CONTAINERS  # (scalars are answered without a call each)
    return any(type(item) in containers and has_class_dicts(item) for item in value)


_CONTAINERS: Final = frozenset({dict, list, tuple})


def _number(token: str) -> int | float:
    return float(token) if "." in token or "e" in token else int(token)


_VALUE, _OPEN, _COMMA, _COLON, _CLOSE, _SPACE = range(6)
# what a token is, by its first character, and how to turn a value token into its value
_KIND: Final = {
    "'": _VALUE, '"': _VALUE, "-": _VALUE, "T": _VALUE, "F": _VALUE, "N": _VALUE,
    **{digit: _VALUE for digit in "0123456789"},
    "(": _OPEN, "[": _OPEN, "{": _OPEN, ",": _COMMA, ":": _COLON,
    ")": _CLOSE, "]": _CLOSE, "}": _CLOSE, " ": _SPACE,
}
_CONVERT: Final = {
    "'": lambda token: token[1:-1], '"': lambda token: token[1:-1], "-": _number,
    "T": _CONSTANTS.__getitem__, "F": _CONSTANTS.__getitem__, "N": _CONSTANTS.__getitem__,
    **{digit: _number for digit in "0123456789"},
}


def _build(tokens: list[str]) -> Any:
    # A frame is [opener, items, saw_comma]; for a dict, items alternate key and value.
    stack: list[list[Any]] = []
    value: Any = None
    have_value = False
    kinds = _KIND
    for token in tokens:
        first = token[0]
        kind = kinds[first]
        if kind == _VALUE:
            if have_value:
                raise _NotFast  # 'a''b' is implicit concatenation in Python: not ours
            value, have_value = _CONVERT[first](token), True
        elif kind == _COMMA:
            if not have_value or not stack:
                raise _NotFast
            frame = stack[-1]
            items = frame[1]
            if frame[0] == "{" and len(items) % 2 == 0:
                raise _NotFast  # a comma after a key: a set, or garbage
            items.append(value)
            frame[2], have_value = True, False
        elif kind == _OPEN:
            if have_value or len(stack) >= MAX_DEPTH:
                raise _NotFast
            stack.append([first, [], False])
        elif kind == _CLOSE:
            if not stack:
                raise _NotFast
            opener, items, saw_comma = stack.pop()
            if opener != _OPENER_FOR[first]:
                raise _NotFast
            if have_value:
                items.append(value)
            if opener == "(":
                if len(items) == 1 and not saw_comma:
                    value = items[0]  # (x) is just x in Python
                else:
                    value = tuple(items)
            elif opener == "[":
                value = items
            else:
                if len(items) % 2:
                    raise _NotFast  # {x} is a set, {x:} garbage
                value = dict(zip(items[::2], items[1::2], strict=True))
            have_value = True
        elif kind == _COLON:
            if not have_value or not stack:
                raise _NotFast
            frame = stack[-1]
            items = frame[1]
            if frame[0] != "{" or len(items) % 2:
                raise _NotFast
            items.append(value)
            have_value = False
        elif not stack:
            raise _NotFast  # spaces: only between tokens inside brackets, as serpent writes them
    if stack or not have_value:
        raise _NotFast
    return value
