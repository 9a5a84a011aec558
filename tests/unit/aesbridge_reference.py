"""The AesBridge layouts written out from the spec with hashlib and raw primitives, for the unit tests.

Independent of ``sealgate.aesbridge_*``: PBKDF2 comes from ``hashlib``, the HMAC from the standard library,
and the byte offsets are spelled out here, so a wrong offset in the module under test does not cancel out.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def reference_kdf(passphrase: bytes, salt: bytes, length: int) -> bytes:
    """PBKDF2-HMAC-SHA256, 100 000 iterations, by hashlib."""
    return hashlib.pbkdf2_hmac("sha256", passphrase, salt, 100_000, length)


def open_gcm(data: bytes, passphrase: bytes) -> bytes:
    """Plaintext of ``salt[16] | nonce[12] | ciphertext | tag[16]``."""
    key = reference_kdf(passphrase, data[0:16], 32)
    return AESGCM(key).decrypt(data[16:28], data[28:], None)


def seal_gcm(plaintext: bytes, passphrase: bytes, salt: bytes, nonce: bytes) -> bytes:
    """``salt | nonce | ciphertext | tag`` with the given salt and nonce."""
    key = reference_kdf(passphrase, salt, 32)
    return salt + nonce + AESGCM(key).encrypt(nonce, plaintext, None)


def open_cbc(data: bytes, passphrase: bytes) -> bytes:
    """Plaintext of ``salt[16] | iv[16] | ciphertext | mac[32]``, MAC checked first."""
    keys = reference_kdf(passphrase, data[0:16], 64)
    iv, ciphertext, mac = data[16:32], data[32:-32], data[-32:]
    expected = hmac.new(keys[32:64], iv + ciphertext, hashlib.sha256).digest()
    assert hmac.compare_digest(mac, expected), "reference: MAC does not match"
    decryptor = Cipher(algorithms.AES(keys[0:32]), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def seal_cbc_raw(padded: bytes, passphrase: bytes, salt: bytes, iv: bytes) -> bytes:
    """``salt | iv | ciphertext | mac`` of already padded (or deliberately mispadded) blocks."""
    keys = reference_kdf(passphrase, salt, 64)
    encryptor = Cipher(algorithms.AES(keys[0:32]), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return salt + iv + ciphertext + hmac.new(keys[32:64], iv + ciphertext, hashlib.sha256).digest()


def flip_each_bit(data: bytes) -> list[bytes]:
    """Every copy of ``data`` with exactly one bit flipped."""
    flipped = []
    for index in range(len(data)):
        for bit in range(8):
            copy = bytearray(data)
            copy[index] ^= 1 << bit
            flipped.append(bytes(copy))
    return flipped


def seal_legacy_raw(padded: bytes, passphrase: bytes, salt: bytes) -> bytes:
    """``"Salted__" | salt[8] | ciphertext`` of already padded blocks, key and IV by EVP_BytesToKey.

    EVP_BytesToKey written as OpenSSL's documentation states it (a loop of D_i = MD5(D_(i-1) | pass | salt)),
    not as the module under test writes it.
    """
    derived, block = b"", b""
    while len(derived) < 48:
        block = hashlib.md5(block + passphrase + salt).digest()
        derived += block
    encryptor = Cipher(algorithms.AES(derived[:32]), modes.CBC(derived[32:48])).encryptor()
    return b"Salted__" + salt + encryptor.update(padded) + encryptor.finalize()
