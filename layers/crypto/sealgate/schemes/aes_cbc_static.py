"""Netcore's ``aes-cbc-static``: AES-256-CBC with a fixed key and a fixed IV, no MAC.

Byte layout::

    token = base64( AES-256-CBC( key[32], iv[16], PKCS7( plaintext ) ) )    x-eCode 11256
          |    hex( AES-256-CBC( key[32], iv[16], PKCS7( plaintext ) ) )    x-eCode 11257 (lowercase out,
                                                                            either case in)

    key = the bytes of the 32-character SECRET_KEY, iv = the bytes of the 16-character SECRET_IV; both are
    registered with Netcore once and never travel with the token.

Weaknesses, stated plainly: with a static IV and no MAC the scheme is **deterministic** (equal plaintexts give
equal tokens, and plaintexts sharing a 16-byte-aligned prefix give tokens sharing a prefix) and **malleable**
(there is no integrity: anyone can alter a token, and flipping IV-position bits of one block flips the same
bits of the next plaintext block). Sealgate uses it only because the partner requires it; never choose it for
anything else.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from sealgate.codec import as_bytes, b64decode, b64encode, hexdecode
from sealgate.errors import BadInput, BadKey, BadToken
from sealgate.schemes import _aes_cbc, base

__all__ = ["X_ECODE", "Encoding", "decrypt", "encrypt", "generate_key_iv"]

Encoding = Literal["base64", "hex"]

#: Netcore's ``x-eCode`` header value for each output encoding.
X_ECODE: Final[dict[str, str]] = {"base64": "11256", "hex": "11257"}

_KEY_SIZE = 32
_IV_SIZE = 16
_BLOCK_SIZE = 16
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def encrypt(
    plaintext: bytes | str, key: str | bytes, iv: str | bytes, *, encoding: Encoding = "base64"
) -> str:
    """Encrypt ``plaintext`` under the registered key and IV; the same input always gives the same token.

    Raises
    ------
    BadKey
        The key is not 32 bytes or the IV is not 16 bytes.
    BadInput
        ``encoding`` is neither ``"base64"`` nor ``"hex"``.
    """
    _check_encoding(encoding)
    ciphertext = _aes_cbc.encrypt(*_key_iv(key, iv), as_bytes(plaintext))
    return b64encode(ciphertext) if encoding == "base64" else ciphertext.hex()


def decrypt(token: str | bytes, key: str | bytes, iv: str | bytes, *, encoding: Encoding = "base64") -> bytes:
    """Decrypt a token; nothing authenticates it, so a wrong key usually (not always) gives BadPadding.

    Raises
    ------
    BadKey
        The key is not 32 bytes or the IV is not 16 bytes.
    BadInput
        ``encoding`` is neither ``"base64"`` nor ``"hex"``.
    BadToken
        The token is not base64/hex, or not a positive whole number of 16-byte blocks.
    BadPadding
        The PKCS7 padding is invalid (wrong key or IV, or altered token).
    """
    _check_encoding(encoding)
    aes_key, aes_iv = _key_iv(key, iv)
    ciphertext = b64decode(token) if encoding == "base64" else hexdecode(token)
    if not ciphertext or len(ciphertext) % _BLOCK_SIZE:
        raise BadToken("token is not whole AES blocks")
    return _aes_cbc.decrypt(aes_key, aes_iv, ciphertext)


def generate_key_iv() -> tuple[str, str]:
    """A fresh ``(SECRET_KEY, SECRET_IV)``: 32 and 16 characters from ASCII letters and digits."""
    key = "".join(secrets.choice(_ALPHABET) for _ in range(_KEY_SIZE))
    iv = "".join(secrets.choice(_ALPHABET) for _ in range(_IV_SIZE))
    return key, iv


def _check_encoding(encoding: str) -> None:
    if encoding not in X_ECODE:
        raise BadInput("encoding must be base64 or hex")


def _key_iv(key: str | bytes, iv: str | bytes) -> tuple[bytes, bytes]:
    aes_key, aes_iv = as_bytes(key), as_bytes(iv)
    if len(aes_key) != _KEY_SIZE:
        raise BadKey("key must be 32 bytes")
    if len(aes_iv) != _IV_SIZE:
        raise BadKey("iv must be 16 bytes")
    return aes_key, aes_iv


@dataclass(frozen=True)
class Options(base.Options):
    """``encoding``: how the ciphertext is written (Netcore x-eCode 11256 for base64, 11257 for hex)."""

    encoding: str = base.option("base64", help="token encoding (default base64)", choices=("base64", "hex"))


class _AesCbcStatic(base.Cipher[Options]):
    name = "aes-cbc-static"
    options_type = Options
    authenticated = False
    key_slots = (
        base.KeySlot("key", "file holding the 32-character key", generated="key"),
        base.KeySlot(
            "iv",
            "file holding the 16-character IV",
            encrypt_flag="--iv-file",
            decrypt_flag="--iv-file",
            generated="iv",
        ),
    )

    def encrypt(self, plaintext: bytes, keys: Mapping[str, str | bytes], options: Options) -> str:
        return encrypt(plaintext, keys["key"], keys["iv"], encoding=options.encoding)  # type: ignore[arg-type]

    def decrypt(self, token: str | bytes, keys: Mapping[str, str | bytes], options: Options) -> bytes:
        return decrypt(token, keys["key"], keys["iv"], encoding=options.encoding)  # type: ignore[arg-type]

    def keygen(self, options: Options) -> dict[str, str]:
        key, iv = generate_key_iv()
        return {"key": key, "iv": iv}

    def attribute(self, options: Options, name: str) -> str | None:
        return X_ECODE[options.encoding] if name == "x-eCode" else None


#: the registry's entry (:mod:`sealgate.schemes`)
CIPHER = _AesCbcStatic()
