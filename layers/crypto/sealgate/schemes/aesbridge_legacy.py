"""AesBridge legacy format (``aes_bridge.encrypt_legacy``, `openssl enc -aes-256-cbc -md md5`): decrypt only.

Byte layout::

    token      = base64( "Salted__" | salt[8] | ciphertext[16k] )               (k >= 1)
    D1 = MD5( passphrase | salt )
    D2 = MD5( D1 | passphrase | salt )
    D3 = MD5( D2 | passphrase | salt )
    key[32]    = D1 | D2                                  (OpenSSL EVP_BytesToKey, MD5, one iteration)
    iv[16]     = D3
    ciphertext = AES-256-CBC( key, iv, PKCS7( plaintext ) )

**This format is unauthenticated.** Nothing binds the ciphertext to the passphrase: an altered token (or a
wrong passphrase) may decrypt to garbage without any error. Only the padding check can notice, and only
for changes that reach the final padding bytes; a wrong passphrase still passes it about once in 256
tries, and a change to any earlier block is never noticed. The key derivation is a single MD5 pass,
cheap to brute-force. The format exists here to read old tokens; Sealgate never writes it (use
:mod:`sealgate.schemes.aesbridge_gcm`).

Unlike the reference, which returns ``b''`` for a token without the ``Salted__`` header, this module refuses
it (:class:`~sealgate.errors.BadToken`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from sealgate.codec import as_bytes, b64decode
from sealgate.errors import BadKey, BadToken, UnsupportedOperation
from sealgate.schemes import _aes_cbc, _aesbridge, base

__all__ = ["decrypt"]

_MAGIC = b"Salted__"
_SALT_SIZE = 8
_HEADER_SIZE = len(_MAGIC) + _SALT_SIZE
_BLOCK_SIZE = 16


def _evp_bytes_to_key(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    # cryptography exposes no EVP_BytesToKey (it is deprecated in OpenSSL), and this format needs
    # exactly 48 bytes = three MD5 blocks, so the three steps are written out rather than looped.
    # MD5 here is the format's, not a choice: the format is broken with or without it (see module doc).
    d1 = hashlib.md5(passphrase + salt).digest()  # noqa: S324
    d2 = hashlib.md5(d1 + passphrase + salt).digest()  # noqa: S324
    d3 = hashlib.md5(d2 + passphrase + salt).digest()  # noqa: S324
    return d1 + d2, d3


def decrypt(token: str | bytes, passphrase: bytes | str) -> bytes:
    """Plaintext of a legacy ``Salted__`` token (base64, either alphabet). Unauthenticated: see module doc.

    Raises
    ------
    BadToken
        Not base64, no ``Salted__`` header, or the ciphertext is empty or not a whole number of blocks.
    BadKey
        The passphrase is empty.
    BadPadding
        The padding is invalid (wrong passphrase or altered token; most alterations go unnoticed).
    """
    data = b64decode(token)
    if not data.startswith(_MAGIC):
        raise BadToken("token lacks the Salted__ header")
    ciphertext = data[_HEADER_SIZE:]
    if not ciphertext or len(ciphertext) % _BLOCK_SIZE:
        raise BadToken("ciphertext is empty or not a whole number of blocks")
    secret = as_bytes(passphrase)
    if not secret:
        raise BadKey("passphrase is empty")
    key, iv = _evp_bytes_to_key(secret, data[len(_MAGIC) : _HEADER_SIZE])
    return _aes_cbc.decrypt(key, iv, ciphertext)


@dataclass(frozen=True)
class Options(base.Options):
    """No options: the legacy format has one form."""


class _AesBridgeLegacy(base.Cipher[Options]):
    name = "aesbridge-legacy"
    options_type = Options
    authenticated = False
    can_encrypt = False
    key_slots = (_aesbridge.PASSPHRASE,)

    def encrypt(self, plaintext: bytes, keys: Mapping[str, str | bytes], options: Options) -> str:
        raise UnsupportedOperation("aesbridge-legacy is decrypt only")

    def decrypt(self, token: str | bytes, keys: Mapping[str, str | bytes], options: Options) -> bytes:
        return decrypt(token, keys["key"])

    def keygen(self, options: Options) -> dict[str, str]:
        return _aesbridge.new_passphrase()


#: the registry's entry (:mod:`sealgate.schemes`)
CIPHER = _AesBridgeLegacy()
