"""PayKun's ``encrypt()``: Laravel's Encrypter envelope (AES-256-CBC then HMAC-SHA256, encrypt-then-MAC).

Byte layout::

    token   = base64( json )
    json    = {"iv":"<iv_b64>","value":"<value_b64>","mac":"<mac_hex>"}     (PHP json_encode: no spaces,
                                                                            "/" written as "\\/")
    iv_b64  = base64( iv[16] )                                              (random per token)
    value_b64 = base64( AES-256-CBC( aes_key, iv, PKCS7( s:<n>:"<plaintext>"; ) ) )
    mac_hex = lowercase hex( HMAC-SHA256( hmac_key, iv_b64 || value_b64 ) )  (over the base64 texts)

    aes_key  = key NUL-padded or truncated to 32 bytes   (what PHP's openssl_encrypt does with the key)
    hmac_key = key, whole and untouched                  (what PHP's hash_hmac does)

``s:<n>:"...";`` is PHP's ``serialize()`` of a string, ``<n>`` its length in bytes.

Decryption is strict: the JSON must be an object with string ``iv``, ``value`` and ``mac`` (and at most an
empty ``tag``, which Laravel's CBC mode writes), nothing else; the IV must be 16 bytes; the MAC is compared in
constant time before anything is decrypted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealgate.codec import as_bytes, b64decode, b64encode
from sealgate.errors import BadKey, BadToken, MacMismatch
from sealgate.schemes import _aes_cbc, base

__all__ = ["decrypt", "encrypt", "parse_key", "php_serialize", "php_unserialize"]

_AES_KEY_SIZE = 32
_IV_SIZE = 16
_BLOCK_SIZE = 16
_APP_KEY_PREFIX = b"base64:"
_FIELDS = frozenset({"iv", "value", "mac"})
_OPTIONAL_FIELDS = frozenset({"tag"})
_SERIALIZED_HEAD = re.compile(rb"s:(0|[1-9][0-9]{0,18}):\"")


def parse_key(text: str | bytes) -> bytes:
    """Key bytes from a Laravel app key (``base64:...`` is decoded) or a raw secret (its UTF-8 bytes).

    Raises
    ------
    BadKey
        The key is empty, or ``base64:`` is followed by something that is not base64.
    """
    raw = as_bytes(text)
    if raw.startswith(_APP_KEY_PREFIX):
        try:
            raw = b64decode(raw[len(_APP_KEY_PREFIX) :], what="key")
        except BadToken:
            raise BadKey("app key after base64: is not base64") from None
    if not raw:
        raise BadKey("key is empty")
    return raw


def php_serialize(data: bytes) -> bytes:
    """PHP's ``serialize()`` of a string: ``s:<byte length>:"<bytes>";``."""
    return b's:%d:"' % len(data) + data + b'";'


def php_unserialize(data: bytes) -> bytes:
    """Inverse of :func:`php_serialize`; anything but exactly one serialized PHP string raises BadToken."""
    head = _SERIALIZED_HEAD.match(data)
    if head is None:
        raise BadToken("plaintext is not a serialized PHP string")
    start = head.end()
    end = start + int(head.group(1))
    if len(data) != end + 2 or data[end:] != b'";':
        raise BadToken("serialized PHP string has the wrong length")
    return data[start:end]


def encrypt(plaintext: str | bytes, key: bytes) -> str:
    """Seal ``plaintext`` the way PayKun's PHP ``encrypt()`` does, with a fresh random IV."""
    return _encrypt_with_iv(plaintext, key, os.urandom(_IV_SIZE))


def decrypt(token: str | bytes, key: bytes) -> bytes:
    """Open a PayKun/Laravel token and return the serialized string's bytes exactly.

    Raises
    ------
    BadKey
        The key is empty.
    BadToken
        The token is not base64 of the JSON object above, the IV is not 16 bytes, the ciphertext is not whole
        blocks, a non-empty ``tag`` is present (Laravel's GCM mode), or the plaintext is not a serialized
        PHP string.
    MacMismatch
        The MAC does not match (wrong key or altered token); nothing was decrypted.
    BadPadding
        The MAC matched but the PKCS7 padding is invalid.
    """
    _check_key(key)
    fields = _parse_envelope(b64decode(token))
    iv = b64decode(fields["iv"], what="iv")
    if len(iv) != _IV_SIZE:
        raise BadToken("iv is not 16 bytes")
    expected = _mac(key, fields["iv"], fields["value"]).encode("ascii")
    if not hmac.compare_digest(expected, fields["mac"].encode("ascii")):
        raise MacMismatch
    ciphertext = b64decode(fields["value"], what="value")
    if not ciphertext or len(ciphertext) % _BLOCK_SIZE:
        raise BadToken("value is not whole AES blocks")
    return php_unserialize(_aes_cbc.decrypt(_aes_key(key), iv, ciphertext))


def _encrypt_with_iv(plaintext: str | bytes, key: bytes, iv: bytes) -> str:
    """:func:`encrypt` with a chosen IV: only for byte-for-byte comparison with PHP in the tests."""
    _check_key(key)
    if len(iv) != _IV_SIZE:
        raise BadKey("iv is not 16 bytes")
    iv_b64 = b64encode(iv)
    value_b64 = b64encode(_aes_cbc.encrypt(_aes_key(key), iv, php_serialize(as_bytes(plaintext))))
    envelope = {"iv": iv_b64, "value": value_b64, "mac": _mac(key, iv_b64, value_b64)}
    # PHP's json_encode escapes "/" by default; matching it keeps our tokens byte-identical to PHP's.
    text = json.dumps(envelope, separators=(",", ":")).replace("/", "\\/")
    return b64encode(text.encode("ascii"))


def _check_key(key: bytes) -> None:
    if not key:
        raise BadKey("key is empty")


def _aes_key(key: bytes) -> bytes:
    # openssl_encrypt NUL-pads a short key and ignores the bytes past 32 of a long one.
    return key[:_AES_KEY_SIZE].ljust(_AES_KEY_SIZE, b"\0")


def _mac(key: bytes, iv_b64: str, value_b64: str) -> str:
    return hmac.new(key, (iv_b64 + value_b64).encode("utf-8"), hashlib.sha256).hexdigest()


def _parse_envelope(document: bytes) -> dict[str, str]:
    """The JSON object's fields, all strings; anything else raises BadToken."""
    try:
        parsed: Any = json.loads(
            document.decode("utf-8"), object_pairs_hook=_unique_pairs, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadToken("token is not a JSON envelope") from None
    if not isinstance(parsed, dict):
        raise BadToken("token is not a JSON object")
    keys = set(parsed)
    if not keys >= _FIELDS or not keys <= _FIELDS | _OPTIONAL_FIELDS:
        raise BadToken("envelope must hold exactly iv, value and mac")
    if not all(isinstance(value, str) and value.isascii() for value in parsed.values()):
        raise BadToken("envelope fields must be ASCII strings")
    if parsed.get("tag", ""):
        raise BadToken("envelope has a GCM tag; only the CBC envelope is accepted")
    return {name: parsed[name] for name in _FIELDS}


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _no_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


@dataclass(frozen=True)
class Options(base.Options):
    """No options: the envelope has one form."""


class _LaravelCbc(base.Cipher[Options]):
    name = "laravel-cbc"
    options_type = Options
    authenticated = True
    key_slots = (base.KeySlot("key", "file holding the key (raw, or 'base64:...' app key)"),)

    def prepare(self, keys: Mapping[str, str | bytes], *, decrypting: bool) -> Mapping[str, bytes]:
        return {"key": parse_key(keys["key"])}

    def encrypt(self, plaintext: bytes, keys: Mapping[str, str | bytes], options: Options) -> str:
        return encrypt(plaintext, _prepared(keys))

    def decrypt(self, token: str | bytes, keys: Mapping[str, str | bytes], options: Options) -> bytes:
        return decrypt(token, _prepared(keys))

    def keygen(self, options: Options) -> dict[str, str]:
        return {"key": "base64:" + b64encode(secrets.token_bytes(32))}


#: the registry's entry (:mod:`sealgate.schemes`)
CIPHER = _LaravelCbc()


def _prepared(keys: Mapping[str, str | bytes]) -> bytes:
    key = keys["key"]
    if not isinstance(key, bytes):  # pragma: no cover - prepare() makes bytes; text was never parsed
        raise TypeError("laravel-cbc keys must come from prepare()")
    return key
