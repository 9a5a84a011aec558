"""Apply a partner profile's protection to a JSON payload (and undo it, for the symmetric schemes).

What goes where, by the profile's ``protection.scheme``:

- ``infosimples-params``: payload is an object of parameters; each listed field ``f`` becomes ``enc_f``
  (AesBridge GCM, URL-safe); receipts hold the MD5 of each encrypted text.
- ``aes-cbc-static`` / ``aes-gcm`` / ``laravel-cbc``: the whole payload, as compact UTF-8 JSON, becomes one
  token placed at ``{wrap_field: token}``.
- ``jwe-card``: ``payload[card_field]`` loses ``number`` and ``cvv`` and gains ``encrypted_data`` (JWE).

Wire-format modules are imported only when their scheme is used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sealgate import strict_json
from sealgate.errors import AuthenticationFailed, BadInput, BadToken, UnsupportedOperation
from sealgate.profiles import Profile

BODY_FIELD = "<body>"
#: schemes whose tokens carry no MAC or tag: only the plaintext's shape tells a wrong key.
UNAUTHENTICATED_SCHEMES = frozenset({"aes-cbc-static"})


@dataclass(frozen=True)
class Protected:
    """A protected payload, the MD5 receipts (Infosimples only) and the names of what was protected."""

    payload: Any
    fields: tuple[str, ...]
    receipts: dict[str, str] = field(default_factory=dict)


def canonical_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON: the plaintext of the body-level schemes."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _object(payload: Any, what: str = "payload") -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BadInput(f"{what} must be a JSON object")
    return payload


def _body_encrypt(profile: Profile, secret: Mapping[str, str], plaintext: bytes) -> str:
    options = profile.protection
    scheme = profile.scheme
    if scheme == "aes-cbc-static":
        from sealgate.schemes import aes_cbc_static

        encoding = options.get("encoding", "base64")
        return aes_cbc_static.encrypt(
            plaintext, secret[options["key"]], secret[options["iv"]], encoding=encoding
        )
    if scheme == "aes-gcm":
        from sealgate.schemes import aes_gcm

        return aes_gcm.encrypt(plaintext, secret[options["key"]])
    from sealgate.schemes import laravel_cbc

    return laravel_cbc.encrypt(plaintext, laravel_cbc.parse_key(secret[options["key"]]))


def _body_decrypt(profile: Profile, secret: Mapping[str, str], token: str) -> bytes:
    options = profile.protection
    scheme = profile.scheme
    if scheme == "aes-cbc-static":
        from sealgate.schemes import aes_cbc_static

        encoding = options.get("encoding", "base64")
        return aes_cbc_static.decrypt(token, secret[options["key"]], secret[options["iv"]], encoding=encoding)
    if scheme == "aes-gcm":
        from sealgate.schemes import aes_gcm

        return aes_gcm.decrypt(token, secret[options["key"]])
    from sealgate.schemes import laravel_cbc

    return laravel_cbc.decrypt(token, laravel_cbc.parse_key(secret[options["key"]]))


def protect(profile: Profile, payload: Any, secret: Mapping[str, str]) -> Protected:
    """Protect ``payload`` for ``profile`` with the keys in ``secret`` (the partner's AWSCURRENT secret)."""
    options = profile.protection
    scheme = profile.scheme
    if scheme == "infosimples-params":
        from sealgate.layouts import enc_params

        params = _object(payload, "params")
        wanted = [name for name in options["fields"] if name in params]
        result = enc_params.protect(params, wanted, secret[options["key"]])
        return Protected(payload=result.params, fields=tuple(wanted), receipts=dict(result.receipts))
    if scheme == "jwe-card":
        from sealgate.schemes import jwe

        body = dict(_object(payload))
        card_field = str(options.get("card_field", "card"))
        card = _object(body.get(card_field), card_field)
        present = [f"{card_field}.{name}" for name in ("number", "cvv") if name in card]
        alg = str(options.get("alg", "RSA-OAEP-256"))
        body[card_field] = jwe.encrypt_card(card, secret[options["key"]], alg=alg)
        return Protected(payload=body, fields=tuple(present))
    token = _body_encrypt(profile, secret, canonical_json(payload))
    return Protected(payload={str(options["wrap_field"]): token}, fields=(BODY_FIELD,))


def reveal(profile: Profile, payload: Any, secret: Mapping[str, str]) -> tuple[Any, tuple[str, ...]]:
    """Undo :func:`protect` for the symmetric schemes; returns the payload and the names revealed."""
    options = profile.protection
    scheme = profile.scheme
    if scheme == "jwe-card":
        raise UnsupportedOperation(
            "card data is encrypted to the partner's public key; only the partner decrypts"
        )
    if scheme == "infosimples-params":
        from sealgate.layouts import enc_params

        params = _object(payload, "params")
        names = tuple(sorted(name.removeprefix("enc_") for name in params if name.startswith("enc_")))
        return enc_params.reveal(params, secret[options["key"]]), names
    wrapped = _object(payload)
    token = wrapped.get(str(options["wrap_field"]))
    if not isinstance(token, str) or not token:
        raise BadInput(f"payload must hold the token in {options['wrap_field']!r}")
    plaintext = _body_decrypt(profile, secret, token)
    try:
        return strict_json.loads(plaintext), (BODY_FIELD,)
    except strict_json.StrictJsonError:
        if scheme in UNAUTHENTICATED_SCHEMES:
            # Nothing authenticates static-IV CBC: a wrong key (e.g. the other version across a rotation) or an
            # altered token passes the padding check about once in 256 and yields garbage. Garbage is the only
            # sign, so it must fail authentication like bad padding does, and the next key version be tried.
            raise AuthenticationFailed("decrypted body is not JSON (wrong key or altered token)") from None
        raise BadToken("decrypted body is not UTF-8 JSON") from None
