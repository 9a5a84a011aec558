"""A card's ``number`` and ``cvv`` become one ``encrypted_data`` token (dLocal, RFC 7516 JWE).

Bytes::

    plaintext            = compact UTF-8 JSON {"number": ..., "cvv": ...}   (cvv only if present)
    payload[card_field]  = the card less number and cvv, plus {"encrypted_data": cipher(plaintext)}

The rules (strings only, number required, no ``encrypted_data`` already) are dLocal's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sealgate.errors import BadInput
from sealgate.schemes import base

CARD_FIELDS = ("number", "cvv")


def seal_card(card: Mapping[str, object], seal: Callable[[bytes], str]) -> dict[str, object]:
    """Copy of ``card`` with ``number`` and ``cvv`` replaced by ``encrypted_data`` = ``seal(JSON)``.

    Raises
    ------
    BadInput
        ``number`` missing or empty, ``number``/``cvv`` not a string, or ``encrypted_data`` already set.
        Messages name the field, never its value.
    """
    if "encrypted_data" in card:
        raise BadInput("card already has encrypted_data")
    secret: dict[str, str] = {}
    for field in CARD_FIELDS:
        value = card.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadInput(f"card field {field!r} must be a string")
        if not value:
            raise BadInput(f"card field {field!r} is empty")
        secret[field] = value
    if "number" not in secret:
        raise BadInput("card field 'number' is missing")
    plaintext = json.dumps(secret, separators=(",", ":")).encode("utf-8")
    sealed = {name: value for name, value in card.items() if name not in CARD_FIELDS}
    sealed["encrypted_data"] = seal(plaintext)
    return sealed


def open_card(card: Mapping[str, object], unseal: Callable[[str], bytes]) -> dict[str, object]:
    """Inverse of :func:`seal_card`: ``encrypted_data`` replaced by ``number`` (and ``cvv``).

    Raises
    ------
    BadInput
        ``encrypted_data`` missing or not a string, ``number``/``cvv`` also present in clear, or the
        plaintext is not a card object (``number`` string, optional ``cvv`` string, nothing else).
    """
    token = card.get("encrypted_data")
    if not isinstance(token, str):
        raise BadInput("card field 'encrypted_data' is missing or not a string")
    if any(field in card for field in CARD_FIELDS):
        raise BadInput("card has both encrypted_data and clear card fields")
    plaintext = unseal(token)
    try:
        secret = json.loads(plaintext)
    except ValueError:
        raise BadInput("encrypted_data does not hold a JSON card object") from None
    if (
        not isinstance(secret, dict)
        or not isinstance(secret.get("number"), str)
        or not set(secret) <= set(CARD_FIELDS)
        or not all(isinstance(value, str) for value in secret.values())
    ):
        raise BadInput("encrypted_data does not hold a card object with number and optional cvv")
    opened = {name: value for name, value in card.items() if name != "encrypted_data"}
    opened.update(secret)
    return opened


@dataclass(frozen=True)
class Options(base.Options):
    """``card_field``: the payload field holding the card object."""

    card_field: str = base.option("card", help="payload field holding the card")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object")
    return value


class _Card(base.Layout[Options]):
    name = "card"
    options_type = Options

    def protect(self, payload: Any, seal: Callable[[bytes], str], options: Options) -> base.Protected:
        body = dict(_object(payload, "payload"))
        card = _object(body.get(options.card_field), options.card_field)
        present = tuple(f"{options.card_field}.{name}" for name in CARD_FIELDS if name in card)
        body[options.card_field] = seal_card(card, seal)
        return base.Protected(payload=body, fields=present)

    def reveal(
        self, payload: Any, unseal: Callable[[str], bytes], options: Options, *, authenticated: bool
    ) -> tuple[Any, tuple[str, ...]]:
        body = dict(_object(payload, "payload"))
        card = _object(body.get(options.card_field), options.card_field)
        body[options.card_field] = open_card(card, unseal)
        names = tuple(
            f"{options.card_field}.{name}" for name in CARD_FIELDS if name in body[options.card_field]
        )
        return body, names


#: the registry's entry (:mod:`sealgate.schemes`)
LAYOUT = _Card()
