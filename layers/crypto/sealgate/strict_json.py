"""JSON text read as RFC 8259 defines it, so that whatever is accepted can be written back as valid UTF-8 JSON.

Python's ``json.loads`` accepts more than JSON, and each extra fails later, far from the input (a 500 while
encrypting, signing or answering, or a body no partner can parse):

- ``NaN``, ``Infinity``, ``-Infinity``, and numbers too large for a float (``1e999`` reads as ``inf``): written
  back as ``NaN``/``Infinity``, which is not JSON;
- ``"\\ud800"``: an escape that makes a lone surrogate, which has no UTF-8 encoding;
- integers longer than ``sys.get_int_max_str_digits()`` (4300 digits): ``ValueError``, not ``JSONDecodeError``;
- nesting deep enough to exhaust the recursion limit when written back from a deeper stack;
- an object that names a key twice (``{"amount": 1, "amount": 100}``, or ``"a"`` and ``"\\u0061"``): RFC 8259
  leaves its meaning to the reader, Python keeps the last value and other readers the first, so a check made
  on one reading could pass a different value on.

:func:`loads` refuses all of them with :class:`StrictJsonError` (a ``ValueError``), whose message never
contains the text.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, NoReturn

#: deeper than any partner payload; far below the interpreter's recursion limit on 3.11 and 3.13.
MAX_DEPTH: Final = 64


class StrictJsonError(ValueError):
    """The text is not strict JSON (the message says which rule, never the text)."""


def _refuse_constant(_name: str) -> NoReturn:
    raise StrictJsonError("NaN and Infinity are not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJsonError("number is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members as a dict, refused if a key comes twice (compared after unescaping)."""
    members = dict(pairs)
    if len(members) != len(pairs):
        raise StrictJsonError("an object has a duplicate key")
    return members


def _check(value: Any) -> None:
    """Every string (keys included) encodes to UTF-8, and nothing nests deeper than :data:`MAX_DEPTH`."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise StrictJsonError("text holds a lone surrogate") from None
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise StrictJsonError("nested too deeply")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def loads(data: bytes | str) -> Any:
    """The value of the JSON text ``data`` (UTF-8 when bytes); :class:`StrictJsonError` if it is not strict JSON."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys
        )
    except StrictJsonError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: JSONDecodeError, too many digits
        raise StrictJsonError("not JSON") from None
    _check(value)
    return value
