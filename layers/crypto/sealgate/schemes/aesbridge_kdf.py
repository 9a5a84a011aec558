"""AesBridge key derivation: PBKDF2-HMAC-SHA256, 100 000 iterations, and the caches that amortise it.

Byte layout::

    key[length] = PBKDF2-HMAC-SHA256( passphrase, salt[16], iterations=100000, dklen=length )
    length      = 32 (GCM: AES-256 key)  or  64 (CBC: AES-256 key | HMAC-SHA256 key)

One derivation costs ~30 ms per 32 bytes: the reference implementation pays it for every value it
encrypts or decrypts. :class:`EncryptionKeys` reuses one random salt (and its key) for a while;
:class:`DecryptionKeys` remembers the keys of salts already seen. Neither stores the passphrase: entries
are keyed by its SHA-256 fingerprint.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from sealgate.codec import b64decode
from sealgate.errors import BadKey, SealgateError

__all__ = [
    "DEFAULT_DECRYPTION_KEYS",
    "DEFAULT_ENCRYPTION_KEYS",
    "ITERATIONS",
    "SALT_SIZE",
    "DecryptionKeys",
    "EncryptionKeys",
    "derive",
    "salt_of",
]

ITERATIONS = 100_000
SALT_SIZE = 16
# NIST SP 800-38D, 8.3: at most 2^32 invocations of GCM with random 96-bit IVs under one key.
_MAX_USES_PER_KEY = 2**32


def derive(passphrase: bytes, salt: bytes, length: int) -> bytes:
    """PBKDF2-HMAC-SHA256 of ``passphrase`` and ``salt``, 100 000 iterations, ``length`` bytes.

    Raises
    ------
    BadKey
        The passphrase is empty.
    """
    if not passphrase:
        raise BadKey("passphrase is empty")
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=length, salt=salt, iterations=ITERATIONS)
    return kdf.derive(passphrase)


def salt_of(token: object, min_size: int) -> bytes | None:
    """The salt a base64 token's key derivation uses (its first 16 bytes), or None when the token is not
    base64 of at least ``min_size`` bytes (refused when opened, before anything is derived).

    What :func:`sealgate.schemes.work.check_derivations` counts: one derivation per distinct salt.
    """
    if not isinstance(token, str | bytes):
        return None
    try:
        data = b64decode(token)
    except SealgateError:
        return None
    return data[:SALT_SIZE] if len(data) >= min_size else None


def _fingerprint(passphrase: bytes) -> bytes:
    if not passphrase:
        raise BadKey("passphrase is empty")
    return hashlib.sha256(passphrase).digest()


@dataclass(slots=True)
class _Lease:
    salt: bytes
    key: bytes
    born: float
    uses: int


class EncryptionKeys:
    """One random salt and its derived key per (passphrase, length), reused for a bounded time and count.

    ``take`` returns the current ``(salt, key)`` until it is ``max_age`` seconds old or has been handed
    out ``max_uses`` times, then draws a new 16-byte salt from ``os.urandom`` and derives its key.
    ``max_uses=1`` reproduces the reference implementation (a fresh salt for every value).

    Why reuse is safe: the salt only separates keys; confidentiality and integrity of each value rest on
    the per-value randomness, which the formats still draw fresh for every value: a 96-bit nonce (GCM)
    or a 128-bit IV (CBC). NIST SP 800-38D bounds random 96-bit nonces to 2^32 messages per key; the
    default ``max_uses`` of 2^20 is far inside that bound (``max_uses`` above 2^32 is refused). The
    output is byte-for-byte the same format, so every AesBridge decryptor accepts it. What reuse does
    reveal is that two values were sealed under the same key (they share a salt), as any keyed scheme
    does.

    The passphrase is never stored: entries are keyed by its SHA-256 fingerprint, and at most
    ``max_passphrases`` passphrases are held (least recently used evicted first). Thread-safe; the
    derivation runs outside the lock.
    """

    def __init__(
        self,
        *,
        max_age: float = 300.0,
        max_uses: int = 2**20,
        clock: Callable[[], float] = time.monotonic,
        max_passphrases: int = 64,
    ) -> None:
        if not max_age > 0:
            raise ValueError("max_age must be positive")
        if not 1 <= max_uses <= _MAX_USES_PER_KEY:
            raise ValueError("max_uses must be between 1 and 2**32")
        if max_passphrases < 1:
            raise ValueError("max_passphrases must be at least 1")
        self._max_age = max_age
        self._max_uses = max_uses
        self._clock = clock
        self._max_entries = max_passphrases
        self._leases: OrderedDict[tuple[bytes, int], _Lease] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EncryptionKeys(max_age={self._max_age!r}, max_uses={self._max_uses!r})"

    def take(self, passphrase: bytes, length: int) -> tuple[bytes, bytes]:
        """``(salt[16], derived_key[length])`` for one value; counts as one use of the salt.

        Raises
        ------
        BadKey
            The passphrase is empty.
        """
        entry = (_fingerprint(passphrase), length)
        with self._lock:
            lease = self._leases.get(entry)
            if lease is not None and self._fresh(lease):
                lease.uses += 1
                self._leases.move_to_end(entry)
                return lease.salt, lease.key
        salt = os.urandom(SALT_SIZE)
        key = derive(passphrase, salt, length)
        with self._lock:
            self._leases[entry] = _Lease(salt=salt, key=key, born=self._clock(), uses=1)
            self._leases.move_to_end(entry)
            while len(self._leases) > self._max_entries:
                self._leases.popitem(last=False)
        return salt, key

    def clear(self) -> None:
        """Forget every salt and key."""
        with self._lock:
            self._leases.clear()

    def _fresh(self, lease: _Lease) -> bool:
        return lease.uses < self._max_uses and self._clock() - lease.born < self._max_age


class DecryptionKeys:
    """Bounded LRU of derived keys, keyed by (SHA-256 fingerprint of passphrase, salt, length).

    A token's salt is chosen by whoever made it, so the cache only saves work for salts seen before
    (every value of an :class:`EncryptionKeys` lease); it never stores the passphrase. Thread-safe; the
    derivation runs outside the lock.
    """

    def __init__(self, *, maxsize: int = 256) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._keys: OrderedDict[tuple[bytes, bytes, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DecryptionKeys(maxsize={self._maxsize!r})"

    def get(self, passphrase: bytes, salt: bytes, length: int) -> bytes:
        """The key derived from ``passphrase`` and ``salt``, from the cache when possible.

        Raises
        ------
        BadKey
            The passphrase is empty.
        """
        entry = (_fingerprint(passphrase), bytes(salt), length)
        with self._lock:
            key = self._keys.get(entry)
            if key is not None:
                self._keys.move_to_end(entry)
                return key
        key = derive(passphrase, salt, length)
        with self._lock:
            self._keys[entry] = key
            self._keys.move_to_end(entry)
            while len(self._keys) > self._maxsize:
                self._keys.popitem(last=False)
        return key

    def clear(self) -> None:
        """Forget every key."""
        with self._lock:
            self._keys.clear()


DEFAULT_ENCRYPTION_KEYS = EncryptionKeys()
DEFAULT_DECRYPTION_KEYS = DecryptionKeys()
