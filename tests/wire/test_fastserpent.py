"""The serpent fast path must agree with serpent itself, or step aside.

Differential tests: every input is decoded by both ``pyro.fastserpent.loads`` and
``serpent.loads``; where the fast path answers, the answers must be identical (types
included: a tuple is not a list, ``1`` is not ``1.0`` or ``True``); where serpent refuses the
input, the fast path must refuse it too.
"""

from __future__ import annotations

import ast
import math
import zlib
from typing import Any

import Pyro4.util
import pytest
import serpent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyro.wire import fastserpent
from pyro.wire.fastserpent import HEADER, NOT_FAST

SERPENT = Pyro4.util.get_serializer("serpent")


def same(a: Any, b: Any) -> bool:
    """Equal, with equal types all the way down (and -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (a != a and b != b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) and same(k, next(j for j in b if j == k))
                                          for k in a)
    return a == b


def decode_both(data: bytes) -> tuple[Any, Any]:
    try:
        slow: Any = serpent.loads(data)
    except Exception as exc:  # noqa: BLE001 - any refusal counts
        slow = exc
    return fastserpent.loads(data), slow


def check(data: bytes) -> Any:
    fast, slow = decode_both(data)
    if fast is NOT_FAST:
        return NOT_FAST
    assert not isinstance(slow, Exception), f"fast path accepted what serpent refuses: {data!r}"
    assert same(fast, slow), f"{data!r}: fast {fast!r} != serpent {slow!r}"
    return fast


scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text() | st.binary(max_size=20)
)
# serpent accepts only bool, bytes, str, numbers and tuples as dict keys and set members
hashable_scalars = st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
hashable = hashable_scalars | st.tuples(hashable_scalars, hashable_scalars)
values = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=5) | st.lists(inner, max_size=5).map(tuple)
                   | st.dictionaries(hashable, inner, max_size=5) | st.sets(hashable, max_size=3)),
    max_leaves=25,
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_serpent_output_decodes_the_same(value: Any) -> None:
    check(serpent.dumps(value, module_in_classname=True))


@settings(max_examples=300)
@given(st.text(), st.text(), st.lists(scalars, max_size=4).map(tuple),
       st.dictionaries(st.text(max_size=8), scalars, max_size=3))
def test_pyro_call_payloads_decode_the_same(obj: str, method: str, vargs: tuple[Any, ...],
                                            kwargs: dict[str, Any]) -> None:
    data, _ = SERPENT.serializeCall(obj, method, vargs, kwargs, compress=False)
    fast = fastserpent.deserialize_call(SERPENT, data)
    assert same(tuple(fast), tuple(SERPENT.deserializeCall(data)))


# Text built from the characters that matter to the grammar: brackets, separators, quotes,
# escapes, signs, exponents, keywords, whitespace, control characters.
grammar_soup = st.text(alphabet="()[]{},:'\"\\-+.e0123456789TrueFalsNonjx \t\n\r\x00\x0c\x7f\x85\u2028\ufeffé", max_size=30)


# Serpent parses what we leave to it with ast.literal_eval, and Python's compiler warns about
# invalid escapes and number literals in random text: warnings about the input, not the code.
@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@settings(max_examples=3000)
@given(grammar_soup)
def test_arbitrary_text_is_decoded_the_same_or_left_to_serpent(text: str) -> None:
    check(HEADER + text.encode("utf-8"))


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_arbitrary_bytes_are_decoded_the_same_or_left_to_serpent(tail: bytes) -> None:
    check(HEADER + tail)


@pytest.mark.parametrize("text", [
    "('obj_1','add',(1,2),{})", "('x','m',(),{'a':[1,2.5,-3,None,True,False]})",
    "{'data': 'YWI=', 'encoding': 'base64'}", "(1,)", "()", "[]", "{}", "[1,]", "{1:2,}",
    "-0.0", "1e30000", "-1e30000", "0", "-0", "123456789012345678", "'x\"y'", '"x\'y"', "'é€😀'",
    "(((1)))", "{1:'a',1.0:'b'}", "{True:1,1:2}",
])
def test_the_usual_shapes_take_the_fast_path(text: str) -> None:
    assert check(HEADER + text.encode("utf-8")) is not NOT_FAST


@pytest.mark.parametrize("text", [
    "{1,2}", "(1+2j)", "'a\\nb'", "'a''b'", "1234567890123456789", "b'x'", " 1", "1 ", "(1,)#x",
    "01", "1.", ".5", "1E5", "+1", "- 1", "inf", "{1}", "{1:}", "(,)", "[1,,2]", "(1:2)",
    "{[1]:2}", "'\t'", "(1,2]", ")", "(", "", "True1", "(1)(2)",
    "[" * 150 + "]" * 150, "[" * 250 + "]" * 250,
])
def test_everything_else_is_left_to_serpent(text: str) -> None:
    assert check(HEADER + text.encode("utf-8")) is NOT_FAST


def test_other_headers_are_left_to_serpent() -> None:
    assert fastserpent.loads(b"# serpent utf-8 python2.6\n(1,2)") is NOT_FAST
    assert fastserpent.loads(b"(1,2)") is NOT_FAST


def test_class_dicts_are_rebuilt_by_pyro4s_serializer() -> None:
    error = ValueError("boom")
    data, _ = SERPENT.serializeCall("obj", "m", (error, [{"nested": error}]), {"e": error}, False)
    _, _, vargs, kwargs = fastserpent.deserialize_call(SERPENT, data)
    assert type(vargs[0]) is ValueError and vargs[0].args == ("boom",)
    assert type(vargs[1][0]["nested"]) is ValueError
    assert type(kwargs["e"]) is ValueError
    result = fastserpent.deserialize_data(SERPENT, SERPENT.serializeData({"x": (error,)})[0])
    assert type(result["x"][0]) is ValueError


class Point:
    def __init__(self, x: int, y: int):
        self.x, self.y = x, y


def test_registered_class_hooks_still_run() -> None:
    name = __name__ + ".Point"
    Pyro4.util.SerializerBase.register_class_to_dict(
        Point, lambda p: {"__class__": name, "x": p.x, "y": p.y})
    Pyro4.util.SerializerBase.register_dict_to_class(name, lambda _, d: Point(d["x"], d["y"]))
    try:
        data, _ = SERPENT.serializeData([Point(1, 2)], False)
        (point,) = fastserpent.deserialize_data(SERPENT, data)
        assert isinstance(point, Point) and (point.x, point.y) == (1, 2)
    finally:
        Pyro4.util.SerializerBase.unregister_class_to_dict(Point)
        Pyro4.util.SerializerBase.unregister_dict_to_class(name)


def test_compressed_payloads() -> None:
    data, _ = SERPENT.serializeCall("obj", "m", ("x" * 1000,), {}, False)
    assert fastserpent.deserialize_call(SERPENT, zlib.compress(data), compressed=True) == (
        "obj", "m", ("x" * 1000,), {})
    with pytest.raises(zlib.error):
        fastserpent.deserialize_call(SERPENT, b"not zlib", compressed=True)


def test_other_serializers_use_their_own_path() -> None:
    json = Pyro4.util.get_serializer("json")
    data, _ = json.serializeCall("obj", "m", (1, 2), {"k": "v"}, False)
    assert fastserpent.deserialize_call(json, data) == ("obj", "m", [1, 2], {"k": "v"})

    class MySerpent(Pyro4.util.SerpentSerializer):
        def loads(self, data: bytes) -> Any:
            return "my own"

    assert fastserpent.deserialize_data(MySerpent(), serpent.dumps(1)) == "my own"


def test_garbage_call_data_raises_like_serpent() -> None:
    with pytest.raises(Exception) as fast:
        fastserpent.deserialize_call(SERPENT, HEADER + b"(1,")
    with pytest.raises(Exception) as slow:
        SERPENT.deserializeCall(HEADER + b"(1,")
    assert type(fast.value) is type(slow.value)


def _pyro5_serpent() -> Any:
    pytest.importorskip("Pyro5")
    from Pyro5 import serializers

    import pyro.wire.pyro5  # noqa: F401 - registers Pyro5's serpent serializer class

    return serializers.serializers["serpent"]


@settings(max_examples=300)
@given(st.none() | st.booleans() | st.integers() | st.text() | st.floats() | st.binary(max_size=8)
       | st.lists(st.integers(), max_size=3))
def test_scalar_results_are_written_as_serpent_writes_them(value: Any) -> None:
    for serializer in (SERPENT, _pyro5_serpent()):
        fast = fastserpent.serialize_scalar(serializer, value)
        if type(value) in (type(None), bool, int, str):
            assert fast == serializer.dumps(value)
        else:
            assert fast is None  # (floats, bytes, containers: serpent's own code)


def test_scalar_fast_path_only_for_the_registered_serpent_classes() -> None:
    class MySerpent(Pyro4.util.SerpentSerializer):
        def dumps(self, data: Any) -> bytes:
            return b"my own"

    assert fastserpent.serialize_scalar(MySerpent(), 1) is None
    assert fastserpent.serialize_scalar(Pyro4.util.get_serializer("json"), 1) is None


@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@settings(max_examples=2000)
@given(grammar_soup, st.sampled_from(["('o','m',%s,{})", "('o','m',%s,{}),{})", "('o','m',%s)",
                                       "('o','m',%s,{'k':1})", "('é','',%s,{})"]))
def test_call_envelopes_decode_as_serpent_or_fall_back(vargs: str, envelope: str) -> None:
    """The call envelope's shortcut (the arguments alone through the tokenizer) decodes
    exactly what serpent does, or leaves the payload to the general path."""
    data = HEADER + (envelope % vargs).encode("utf-8")
    fast = fastserpent._loads_call(data)
    if fast is NOT_FAST:
        assert check(data) is NOT_FAST
        return
    slow = serpent.loads(data)
    assert same(fast, slow), f"{data!r}: fast {fast!r} != serpent {slow!r}"


@pytest.mark.parametrize("args", [
    "()", "(1,)", "(1,2)", "(1,2,)", "(-1,'a,b',2.5,-3e5,None,True,False,\"it's\",'')",
    "('é€😀',123456789012345678)",
])
def test_scalar_arguments_are_read_without_the_tokenizer(args: str) -> None:
    flat = fastserpent._flat_args(args)
    assert flat is not None and same(flat, ast.literal_eval(args))


@pytest.mark.parametrize("args", [
    "(1)", "(1,[2])", "( 1,)", "(1, 2)", "(1,,2)", "(,)", "(01,)", "('a''b',)", "(1234567890123456789,)",
    "('a\\nb',)", "(1,)(2,)", "(1+2j,)",
])
def test_other_arguments_take_the_general_path(args: str) -> None:
    assert fastserpent._flat_args(args) is None
