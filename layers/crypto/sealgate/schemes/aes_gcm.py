"""Netcore's ``aes-gcm`` (x-eCode 11258): AES-256-GCM with a random nonce per token.

Byte layout::

    token = base64( nonce[12] | ciphertext[len(plaintext)] | tag[16] )
    key   = base64 text of 32 random bytes (the registered secret), decoded to the AES-256 key

No associated data. The tag authenticates nonce-bound ciphertext: any altered bit, or a wrong key, raises
:class:`~sealgate.errors.TagMismatch`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealgate.codec import as_bytes, b64decode, b64encode
from sealgate.errors import BadKey, BadToken, TagMismatch
from sealgate.schemes import base

__all__ = ["X_ECODE", "decrypt", "encrypt", "generate_key"]

#: Netcore's ``x-eCode`` header value for this scheme.
X_ECODE: Final = "11258"

_KEY_SIZE = 32
_NONCE_SIZE = 12
_TAG_SIZE = 16


def encrypt(plaintext: str | bytes, key: str | bytes) -> str:
    """Seal ``plaintext`` with a fresh random nonce.

    Raises
    ------
    BadKey
        The key is not base64 of exactly 32 bytes.
    """
    cipher = AESGCM(_parse_key(key))
    nonce = os.urandom(_NONCE_SIZE)
    return b64encode(nonce + cipher.encrypt(nonce, as_bytes(plaintext), None))


def decrypt(token: str | bytes, key: str | bytes) -> bytes:
    """Open a token.

    Raises
    ------
    BadKey
        The key is not base64 of exactly 32 bytes.
    BadToken
        The token is not base64, or shorter than a nonce and a tag.
    TagMismatch
        The tag does not match (wrong key or altered token).
    """
    cipher = AESGCM(_parse_key(key))
    raw = b64decode(token)
    if len(raw) < _NONCE_SIZE + _TAG_SIZE:
        raise BadToken("token is shorter than a nonce and a tag")
    try:
        return cipher.decrypt(raw[:_NONCE_SIZE], raw[_NONCE_SIZE:], None)
    except InvalidTag:
        raise TagMismatch from None


def generate_key() -> str:
    """A fresh key: base64 of 32 random bytes."""
    return b64encode(secrets.token_bytes(_KEY_SIZE))


def _parse_key(key: str | bytes) -> bytes:
    try:
        raw = b64decode(key, what="key")
    except BadToken:
        raise BadKey("key is not base64") from None
    if len(raw) != _KEY_SIZE:
        raise BadKey("key must be base64 of 32 bytes")
    return raw


@dataclass(frozen=True)
class Options(base.Options):
    """No options: one form."""


class _AesGcm(base.Cipher[Options]):
    name = "aes-gcm"
    options_type = Options
    authenticated = True
    key_slots = (base.KeySlot("key", "file holding the base64 key"),)

    def encrypt(self, plaintext: bytes, keys: Mapping[str, str | bytes], options: Options) -> str:
        return encrypt(plaintext, keys["key"])

    def decrypt(self, token: str | bytes, keys: Mapping[str, str | bytes], options: Options) -> bytes:
        return decrypt(token, keys["key"])

    def keygen(self, options: Options) -> dict[str, str]:
        return {"key": generate_key()}

    def attribute(self, options: Options, name: str) -> str | None:
        return X_ECODE if name == "x-eCode" else None


#: the registry's entry (:mod:`sealgate.schemes`)
CIPHER = _AesGcm()
