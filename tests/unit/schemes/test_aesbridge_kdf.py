"""aesbridge_kdf: PBKDF2 against hashlib's own, and both caches' reuse, expiry, bounds and locking."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from sealgate.errors import BadKey
from sealgate.schemes import aesbridge_kdf
from sealgate.schemes.aesbridge_kdf import DecryptionKeys, EncryptionKeys, derive
from tests.unit.aesbridge_reference import reference_kdf

PASSPHRASE = b"throwaway test passphrase"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> Counter[bytes]:
    """Counts real derivations per salt (the caches call ``aesbridge_kdf.derive``)."""
    seen: Counter[bytes] = Counter()
    real: Callable[[bytes, bytes, int], bytes] = aesbridge_kdf.derive

    def counting(passphrase: bytes, salt: bytes, length: int) -> bytes:
        seen[salt] += 1
        return real(passphrase, salt, length)

    monkeypatch.setattr(aesbridge_kdf, "derive", counting)
    return seen


def held_bytes(obj: object) -> Iterator[bytes]:
    """Every bytes value reachable through an object's attributes and containers."""
    stack: list[object] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "__slots__"):
            stack.extend(getattr(item, name) for name in item.__slots__ if hasattr(item, name))
        elif hasattr(item, "__dict__"):
            stack.extend(vars(item).values())


# --- derive -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [32, 64])
def test_derive_is_pbkdf2_hmac_sha256_100k(length: int) -> None:
    salt = bytes(range(16))
    assert derive(PASSPHRASE, salt, length) == reference_kdf(PASSPHRASE, salt, length)


def test_derive_refuses_an_empty_passphrase() -> None:
    with pytest.raises(BadKey):
        derive(b"", bytes(16), 32)


def test_lengths_share_a_prefix_so_the_caches_key_by_length() -> None:
    # PBKDF2's first block does not depend on the length asked for: a GCM key is the CBC AES key of the
    # same salt. The encryption cache therefore draws a separate salt per length.
    salt = bytes(16)
    assert derive(PASSPHRASE, salt, 64)[:32] == derive(PASSPHRASE, salt, 32)


# --- EncryptionKeys -----------------------------------------------------------------------------------------


def test_take_returns_a_fresh_salt_and_its_key(derivations: Counter[bytes]) -> None:
    salt, key = EncryptionKeys().take(PASSPHRASE, 32)
    assert len(salt) == 16
    assert key == reference_kdf(PASSPHRASE, salt, 32)
    assert derivations == {salt: 1}


def test_take_reuses_the_salt_within_age_and_count(clock: FakeClock, derivations: Counter[bytes]) -> None:
    keys = EncryptionKeys(max_age=60, max_uses=100, clock=clock)
    first = keys.take(PASSPHRASE, 32)
    clock.now += 59.9
    assert [keys.take(PASSPHRASE, 32) for _ in range(5)] == [first] * 5
    assert sum(derivations.values()) == 1


def test_take_draws_a_new_salt_at_max_age(clock: FakeClock) -> None:
    keys = EncryptionKeys(max_age=60, clock=clock)
    salt, _ = keys.take(PASSPHRASE, 32)
    clock.now += 60
    new_salt, new_key = keys.take(PASSPHRASE, 32)
    assert new_salt != salt
    assert new_key == reference_kdf(PASSPHRASE, new_salt, 32)
    assert keys.take(PASSPHRASE, 32)[0] == new_salt


def test_take_draws_a_new_salt_after_max_uses(clock: FakeClock) -> None:
    keys = EncryptionKeys(max_uses=3, clock=clock)
    salts = [keys.take(PASSPHRASE, 32)[0] for _ in range(7)]
    assert salts[0] == salts[1] == salts[2]
    assert salts[3] == salts[4] == salts[5]
    assert len(set(salts)) == 3


def test_max_uses_1_gives_a_fresh_salt_every_time_like_the_reference(derivations: Counter[bytes]) -> None:
    keys = EncryptionKeys(max_uses=1)
    salts = [keys.take(PASSPHRASE, 32)[0] for _ in range(4)]
    assert len(set(salts)) == 4
    assert sum(derivations.values()) == 4


def test_take_keeps_one_salt_per_passphrase_and_length() -> None:
    keys = EncryptionKeys()
    gcm, cbc, other = keys.take(PASSPHRASE, 32), keys.take(PASSPHRASE, 64), keys.take(b"another one", 32)
    assert len({gcm[0], cbc[0], other[0]}) == 3
    assert cbc[1] == reference_kdf(PASSPHRASE, cbc[0], 64)
    assert other[1] == reference_kdf(b"another one", other[0], 32)
    assert keys.take(PASSPHRASE, 32) == gcm
    assert keys.take(PASSPHRASE, 64) == cbc


def test_take_holds_a_bounded_number_of_passphrases_least_recently_used_first() -> None:
    keys = EncryptionKeys(max_passphrases=2)
    a, b = keys.take(b"pass-a", 32), keys.take(b"pass-b", 32)
    keys.take(b"pass-a", 32)  # a is now the most recent
    keys.take(b"pass-c", 32)  # evicts b
    assert keys.take(b"pass-a", 32) == a
    assert keys.take(b"pass-b", 32)[0] != b[0]


def test_take_never_holds_the_passphrase() -> None:
    keys = EncryptionKeys()
    keys.take(PASSPHRASE, 32)
    held = list(held_bytes(keys))
    assert hashlib.sha256(PASSPHRASE).digest() in held  # the walk does reach the entries
    assert all(PASSPHRASE not in value for value in held)


def test_take_refuses_an_empty_passphrase() -> None:
    with pytest.raises(BadKey):
        EncryptionKeys().take(b"", 32)


@pytest.mark.parametrize(
    "options",
    [
        {"max_uses": 0},
        {"max_uses": 2**32 + 1},
        {"max_age": 0},
        {"max_age": float("nan")},
        {"max_passphrases": 0},
    ],
)
def test_encryption_keys_refuse_unsafe_bounds(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        EncryptionKeys(**options)  # type: ignore[arg-type]


def test_take_is_thread_safe_and_never_exceeds_max_uses() -> None:
    keys = EncryptionKeys(max_uses=10)
    results: list[tuple[bytes, bytes]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(25):
            taken = keys.take(PASSPHRASE, 32)
            with lock:
                results.append(taken)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 200
    uses = Counter(salt for salt, _ in results)
    assert max(uses.values()) <= 10
    pairs = dict(results)
    assert len(pairs) == len(uses)  # one key per salt
    salt, key = next(iter(pairs.items()))
    assert key == reference_kdf(PASSPHRASE, salt, 32)


def test_clear_forgets_the_salts() -> None:
    keys = EncryptionKeys()
    salt, _ = keys.take(PASSPHRASE, 32)
    keys.clear()
    assert keys.take(PASSPHRASE, 32)[0] != salt


# --- DecryptionKeys -----------------------------------------------------------------------------------------


def test_get_derives_once_per_passphrase_salt_and_length(derivations: Counter[bytes]) -> None:
    keys, salt = DecryptionKeys(), bytes(range(16))
    assert keys.get(PASSPHRASE, salt, 32) == reference_kdf(PASSPHRASE, salt, 32)
    assert keys.get(PASSPHRASE, salt, 32) == reference_kdf(PASSPHRASE, salt, 32)
    assert derivations[salt] == 1
    assert keys.get(PASSPHRASE, salt, 64) == reference_kdf(PASSPHRASE, salt, 64)
    assert keys.get(b"another one", salt, 32) == reference_kdf(b"another one", salt, 32)
    assert derivations[salt] == 3


def test_get_evicts_the_least_recently_used(derivations: Counter[bytes]) -> None:
    keys = DecryptionKeys(maxsize=2)
    a, b, c = (bytes([n]) * 16 for n in (1, 2, 3))
    keys.get(PASSPHRASE, a, 32)
    keys.get(PASSPHRASE, b, 32)
    keys.get(PASSPHRASE, a, 32)  # a is now the most recent
    keys.get(PASSPHRASE, c, 32)  # evicts b
    keys.get(PASSPHRASE, a, 32)
    keys.get(PASSPHRASE, b, 32)
    assert derivations == {a: 1, b: 2, c: 1}


def test_get_never_holds_the_passphrase() -> None:
    keys = DecryptionKeys()
    keys.get(PASSPHRASE, bytes(16), 32)
    held = list(held_bytes(keys))
    assert hashlib.sha256(PASSPHRASE).digest() in held
    assert all(PASSPHRASE not in value for value in held)


def test_get_refuses_an_empty_passphrase() -> None:
    with pytest.raises(BadKey):
        DecryptionKeys().get(b"", bytes(16), 32)


def test_decryption_keys_refuse_an_empty_cache() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        DecryptionKeys(maxsize=0)


def test_module_defaults_exist() -> None:
    assert isinstance(aesbridge_kdf.DEFAULT_ENCRYPTION_KEYS, EncryptionKeys)
    assert isinstance(aesbridge_kdf.DEFAULT_DECRYPTION_KEYS, DecryptionKeys)
