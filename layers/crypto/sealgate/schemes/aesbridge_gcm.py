"""AesBridge AES-256-GCM (``aes_bridge.encrypt``/``encrypt_gcm``): the format Infosimples requires.

Byte layout::

    token      = base64( salt[16] | nonce[12] | ciphertext[n] | tag[16] )      (n = len(plaintext))
    key[32]    = PBKDF2-HMAC-SHA256( passphrase, salt, 100000 )                  (see aesbridge_kdf)
    ciphertext | tag = AES-256-GCM( key, nonce, plaintext ), no associated data

``base64`` is the standard alphabet with ``=`` padding; Infosimples wants the URL-safe alphabet without
padding (``urlsafe=True``). Decryption accepts both. The nonce is fresh from ``os.urandom`` for every
value; the salt comes from an :class:`~sealgate.schemes.aesbridge_kdf.EncryptionKeys` lease (see its docstring).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealgate.codec import as_bytes, b64decode, b64encode
from sealgate.errors import BadToken, TagMismatch
from sealgate.schemes import _aesbridge, aesbridge_kdf, work
from sealgate.schemes.aesbridge_kdf import DecryptionKeys, EncryptionKeys

__all__ = ["decrypt", "decrypt_bin", "encrypt", "encrypt_bin"]

_SALT_SIZE = 16
_NONCE_SIZE = 12
_TAG_SIZE = 16
_KEY_SIZE = 32
_HEADER_SIZE = _SALT_SIZE + _NONCE_SIZE
_MIN_SIZE = _HEADER_SIZE + _TAG_SIZE


def encrypt_bin(
    plaintext: bytes | str, passphrase: bytes | str, *, keys: EncryptionKeys | None = None
) -> bytes:
    """``salt | nonce | ciphertext | tag`` for ``plaintext`` (``str`` is UTF-8).

    Raises
    ------
    BadKey
        The passphrase is empty.
    """
    lease = aesbridge_kdf.DEFAULT_ENCRYPTION_KEYS if keys is None else keys
    salt, key = lease.take(as_bytes(passphrase), _KEY_SIZE)
    nonce = os.urandom(_NONCE_SIZE)
    return salt + nonce + AESGCM(key).encrypt(nonce, as_bytes(plaintext), None)


def encrypt(
    plaintext: bytes | str,
    passphrase: bytes | str,
    *,
    urlsafe: bool = False,
    keys: EncryptionKeys | None = None,
) -> str:
    """Base64 token for ``plaintext``: standard alphabet, or URL-safe unpadded (Infosimples) if ``urlsafe``.

    Examples
    --------
    >>> token = encrypt("12345678909", "throwaway passphrase", urlsafe=True)
    >>> decrypt(token, "throwaway passphrase")
    b'12345678909'
    """
    return b64encode(encrypt_bin(plaintext, passphrase, keys=keys), urlsafe=urlsafe)


def _salt(token: object) -> bytes | None:
    return aesbridge_kdf.salt_of(token, _MIN_SIZE)


def decrypt_bin(data: bytes, passphrase: bytes | str, *, keys: DecryptionKeys | None = None) -> bytes:
    """Plaintext of a binary ``salt | nonce | ciphertext | tag``.

    Raises
    ------
    BadToken
        Shorter than the 44 bytes of salt, nonce and tag.
    BadKey
        The passphrase is empty.
    TagMismatch
        Wrong passphrase, or the token was altered.
    TooMuchWork
        Inside :func:`~sealgate.schemes.work.opening`: the batch's tokens have more distinct salts than allowed.
    """
    data = bytes(data)
    if len(data) < _MIN_SIZE:
        raise BadToken("token is shorter than salt, nonce and tag")
    salt, nonce, sealed = data[:_SALT_SIZE], data[_SALT_SIZE:_HEADER_SIZE], data[_HEADER_SIZE:]
    work.check_derivations(_salt)  # the request's whole cost, before its first derivation
    cache = aesbridge_kdf.DEFAULT_DECRYPTION_KEYS if keys is None else keys
    key = cache.get(as_bytes(passphrase), salt, _KEY_SIZE)
    try:
        return AESGCM(key).decrypt(nonce, sealed, None)
    except InvalidTag:
        raise TagMismatch() from None


def decrypt(token: str | bytes, passphrase: bytes | str, *, keys: DecryptionKeys | None = None) -> bytes:
    """Plaintext of a base64 token (standard or URL-safe alphabet, padded or not).

    Raises
    ------
    BadToken
        Not base64, or too short.
    BadKey
        The passphrase is empty.
    TagMismatch
        Wrong passphrase, or the token was altered.
    """
    return decrypt_bin(b64decode(token), passphrase, keys=keys)


class _AesBridgeGcm(_aesbridge.PassphraseCipher):
    name = "aesbridge-gcm"

    def encrypt(self, plaintext: bytes, keys: Mapping[str, str | bytes], options: _aesbridge.Options) -> str:
        return encrypt(plaintext, keys["key"], urlsafe=options.urlsafe)

    def decrypt(
        self, token: str | bytes, keys: Mapping[str, str | bytes], options: _aesbridge.Options
    ) -> bytes:
        return decrypt(token, keys["key"])


#: the registry's entry (:mod:`sealgate.schemes`)
CIPHER = _AesBridgeGcm()
