"""AES-CBC with PKCS7 padding, shared by the CBC wire formats (``aesbridge_cbc``, ``aesbridge_legacy``,
``laravel_cbc``, ``aes_cbc_static``).

Bare block-cipher work only: no MAC, no encoding. Callers check key and IV lengths and ciphertext framing
first; a padding failure raises :class:`~sealgate.errors.BadPadding`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sealgate.errors import BadPadding

BLOCK_SIZE = 16


def encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """AES-CBC(key, iv, PKCS7(plaintext))."""
    padder = padding.PKCS7(BLOCK_SIZE * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Inverse of :func:`encrypt`; ``ciphertext`` must be whole blocks. Bad padding raises BadPadding."""
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(BLOCK_SIZE * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise BadPadding from None
