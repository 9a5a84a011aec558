"""sealgate.strict_json: JSON as RFC 8259 has it; whatever it accepts writes back as valid UTF-8 JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate import strict_json
from sealgate.strict_json import MAX_DEPTH, StrictJsonError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # hypothesis text has no surrogates
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@given(json_values, st.booleans())
def test_every_json_value_reads_back_as_itself(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)

    assert strict_json.loads(text) == value
    assert strict_json.loads(text.encode("utf-8")) == value


@settings(max_examples=300)
@given(st.text(st.characters(codec=None, exclude_categories=())))
def test_what_is_accepted_writes_back_as_utf8_json(text: str) -> None:
    try:
        value = strict_json.loads(text)
    except StrictJsonError:
        return
    written = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert json.loads(written) == value


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "[Infinity]",
        '{"a":-Infinity}',
        "1e999",
        "[-1e400]",
        '"\\ud800"',
        '{"\\udfff":1}',
        '["a\\udc00b"]',
        "1" * 4301,
        nested(MAX_DEPTH + 1),
        nested(100_000),
        "",
        "{",
        "[1,]",
        "\x00",
    ],
)
def test_refuses_what_python_reads_but_json_is_not(text: str) -> None:
    with pytest.raises(StrictJsonError):
        strict_json.loads(text)


def test_refuses_text_that_is_not_utf8() -> None:
    with pytest.raises(StrictJsonError):
        strict_json.loads(b'"\xff"')
    with pytest.raises(StrictJsonError):
        strict_json.loads('"\ud800"')  # a raw lone surrogate, not an escape


def test_accepts_what_is_json_at_the_edges() -> None:
    assert strict_json.loads('"\\ud83d\\ude00"') == "\U0001f600"  # a surrogate pair is one character
    assert strict_json.loads("1e-999") == 0.0
    assert strict_json.loads("1" * 4300) == int("1" * 4300)
    assert strict_json.loads(nested(MAX_DEPTH)) is not None
    assert math.copysign(1.0, strict_json.loads("-0.0")) == -1.0


def test_error_is_a_value_error_that_does_not_hold_the_text() -> None:
    secret = '{"card":"4000056655665556","x":NaN}'
    with pytest.raises(ValueError) as caught:
        strict_json.loads(secret)
    assert "4000056655665556" not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    "text",
    [
        '{"amount":1,"amount":100}',
        '{"a":1,"b":2,"a":1}',  # the same value twice is still two members
        '{"payload":{"card":{"cvv":"123","cvv":"999"}}}',
        '[{"a":1},{"b":2,"b":3}]',
        '{"items":[1,{"x":[{"id":"p","id":"q"}]}]}',
        '{"a":1,"\\u0061":2}',  # equal once unescaped
        '{"\\u00e9":1,"\u00e9":2}',
        '{"\\ud83d\\ude00":1,"\U0001f600":2}',
        '{"":1,"":2}',
    ],
)
def test_refuses_an_object_that_names_a_key_twice(text: str) -> None:
    with pytest.raises(StrictJsonError, match="duplicate key"):
        strict_json.loads(text)
    with pytest.raises(StrictJsonError, match="duplicate key"):
        strict_json.loads(text.encode("utf-8"))


def test_keys_that_differ_only_in_case_or_across_objects_are_not_duplicates() -> None:
    assert strict_json.loads('{"a":1,"A":2}') == {"a": 1, "A": 2}
    assert strict_json.loads('[{"a":1},{"a":2}]') == [{"a": 1}, {"a": 2}]
    assert strict_json.loads('{"a":{"a":{"a":1}}}') == {"a": {"a": {"a": 1}}}


def test_a_duplicate_key_refusal_names_neither_key_nor_value() -> None:
    text = '{"payload":{"card_4000056655665556":"123-45-6789","card_4000056655665556":"x"}}'
    with pytest.raises(StrictJsonError) as caught:
        strict_json.loads(text)
    assert str(caught.value) == "an object has a duplicate key"
    assert caught.value.__cause__ is None
