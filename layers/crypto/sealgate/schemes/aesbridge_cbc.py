"""AesBridge AES-256-CBC + HMAC-SHA256 (``aes_bridge.encrypt_cbc``), encrypt-then-MAC.

Byte layout::

    token       = base64( salt[16] | iv[16] | ciphertext[16k] | mac[32] )       (k >= 1)
    key[64]     = PBKDF2-HMAC-SHA256( passphrase, salt, 100000, dklen=64 )      (see aesbridge_kdf)
    aes_key     = key[0:32]
    hmac_key    = key[32:64]
    ciphertext  = AES-256-CBC( aes_key, iv, PKCS7( plaintext ) )
    mac         = HMAC-SHA256( hmac_key, iv | ciphertext )                       (the salt is not MACed)

``base64`` is the standard alphabet with ``=`` padding, or URL-safe unpadded with ``urlsafe=True``;
decryption accepts both. The IV is fresh from ``os.urandom`` for every value; the salt comes from an
:class:`~sealgate.schemes.aesbridge_kdf.EncryptionKeys` lease. The MAC is checked in constant time before
anything is decrypted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from sealgate.codec import as_bytes, b64decode, b64encode
from sealgate.errors import BadToken, MacMismatch
from sealgate.schemes import _aes_cbc, _aesbridge, aesbridge_kdf, work
from sealgate.schemes.aesbridge_kdf import DecryptionKeys, EncryptionKeys

__all__ = ["decrypt", "decrypt_bin", "encrypt", "encrypt_bin"]

_SALT_SIZE = 16
_IV_SIZE = 16
_BLOCK_SIZE = 16
_MAC_SIZE = 32
_KEY_SIZE = 64
_AES_KEY_SIZE = 32
_HEADER_SIZE = _SALT_SIZE + _IV_SIZE
_MIN_SIZE = _HEADER_SIZE + _BLOCK_SIZE + _MAC_SIZE


def _mac(hmac_key: bytes, iv: bytes, ciphertext: bytes) -> hmac.HMAC:
    mac = hmac.HMAC(hmac_key, hashes.SHA256())
    mac.update(iv)
    mac.update(ciphertext)
    return mac


def encrypt_bin(
    plaintext: bytes | str, passphrase: bytes | str, *, keys: EncryptionKeys | None = None
) -> bytes:
    """``salt | iv | ciphertext | mac`` for ``plaintext`` (``str`` is UTF-8).

    Raises
    ------
    BadKey
        The passphrase is empty.
    """
    lease = aesbridge_kdf.DEFAULT_ENCRYPTION_KEYS if keys is None else keys
    salt, key = lease.take(as_bytes(passphrase), _KEY_SIZE)
    aes_key, hmac_key = key[:_AES_KEY_SIZE], key[_AES_KEY_SIZE:]
    iv = os.urandom(_IV_SIZE)
    ciphertext = _aes_cbc.encrypt(aes_key, iv, as_bytes(plaintext))
    return salt + iv + ciphertext + _mac(hmac_key, iv, ciphertext).finalize()


def encrypt(
    plaintext: bytes | str,
    passphrase: bytes | str,
    *,
    urlsafe: bool = False,
    keys: EncryptionKeys | None = None,
) -> str:
    """Base64 token for ``plaintext``: standard alphabet, or URL-safe unpadded if ``urlsafe``.

    Examples
    --------
    >>> decrypt(encrypt(b"payload", "throwaway passphrase"), "throwaway passphrase")
    b'payload'
    """
    return b64encode(encrypt_bin(plaintext, passphrase, keys=keys), urlsafe=urlsafe)


def _salt(token: object) -> bytes | None:
    return aesbridge_kdf.salt_of(token, _MIN_SIZE)


def decrypt_bin(data: bytes, passphrase: bytes | str, *, keys: DecryptionKeys | None = None) -> bytes:
    """Plaintext of a binary ``salt | iv | ciphertext | mac``.

    Raises
    ------
    BadToken
        The ciphertext is empty or not a whole number of 16-byte blocks.
    BadKey
        The passphrase is empty.
    MacMismatch
        Wrong passphrase, or the token was altered (checked before decrypting).
    BadPadding
        The MAC is good but the padding is not: the token was made with the right keys but is broken.
    TooMuchWork
        Inside :func:`~sealgate.schemes.work.opening`: the batch's tokens have more distinct salts than allowed.
    """
    data = bytes(data)
    ciphertext = data[_HEADER_SIZE:-_MAC_SIZE]
    if len(data) < _HEADER_SIZE + _MAC_SIZE or not ciphertext or len(ciphertext) % _BLOCK_SIZE:
        raise BadToken("ciphertext is empty or not a whole number of blocks")
    salt, iv, tag = data[:_SALT_SIZE], data[_SALT_SIZE:_HEADER_SIZE], data[-_MAC_SIZE:]
    work.check_derivations(_salt)  # the request's whole cost, before its first derivation
    cache = aesbridge_kdf.DEFAULT_DECRYPTION_KEYS if keys is None else keys
    key = cache.get(as_bytes(passphrase), salt, _KEY_SIZE)
    aes_key, hmac_key = key[:_AES_KEY_SIZE], key[_AES_KEY_SIZE:]
    try:
        _mac(hmac_key, iv, ciphertext).verify(tag)
    except InvalidSignature:
        raise MacMismatch() from None
    return _aes_cbc.decrypt(aes_key, iv, ciphertext)


def decrypt(token: str | bytes, passphrase: bytes | str, *, keys: DecryptionKeys | None = None) -> bytes:
    """Plaintext of a base64 token (standard or URL-safe alphabet, padded or not).

    Raises
    ------
    BadToken
        Not base64, or the ciphertext is empty or not a whole number of blocks.
    BadKey
        The passphrase is empty.
    MacMismatch
        Wrong passphrase, or the token was altered.
    BadPadding
        The MAC is good but the padding is not.
    """
    return decrypt_bin(b64decode(token), passphrase, keys=keys)


class _AesBridgeCbc(_aesbridge.PassphraseCipher):
    name = "aesbridge-cbc"

    def encrypt(self, plaintext: bytes, keys: Mapping[str, str | bytes], options: _aesbridge.Options) -> str:
        return encrypt(plaintext, keys["key"], urlsafe=options.urlsafe)

    def decrypt(
        self, token: str | bytes, keys: Mapping[str, str | bytes], options: _aesbridge.Options
    ) -> bytes:
        return decrypt(token, keys["key"])


#: the registry's entry (:mod:`sealgate.schemes`)
CIPHER = _AesBridgeCbc()
