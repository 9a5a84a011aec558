"""aesbridge_gcm against the reference ``aes_bridge`` (encrypt/encrypt_gcm), both directions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.errors import TagMismatch
from sealgate.schemes import aesbridge_gcm
from sealgate.schemes.aesbridge_kdf import EncryptionKeys
from tests.interop.aesbridge_oracle import Vector, infosimples_form, load_oracle, standard_form, vectors

pytestmark = pytest.mark.interop

PASSPHRASE = "throwaway interop passphrase — ção 🔑"
PLAINTEXTS = [b"", b"DATA_EXAMPLE", "123.456.789-09 São Paulo".encode(), bytes(range(256))]
passphrases = st.one_of(st.text(min_size=1, max_size=30), st.binary(min_size=1, max_size=30))


@pytest.fixture(scope="module")
def aes_bridge(oracle_module: Callable[[str, str], object]) -> Any:
    return load_oracle(oracle_module)


@pytest.mark.parametrize("vector", vectors("gcm"), ids=lambda v: v.label)
def test_reference_vectors_decrypt(vector: Vector) -> None:
    assert aesbridge_gcm.decrypt(vector.token, vector.passphrase) == vector.plaintext


@pytest.mark.parametrize("vector", vectors("gcm_infosimples"), ids=lambda v: v.label)
def test_reference_vectors_in_infosimples_form_decrypt(vector: Vector) -> None:
    assert not set(vector.token) & set("+/=")
    assert aesbridge_gcm.decrypt(vector.token, vector.passphrase) == vector.plaintext


@pytest.mark.parametrize("plaintext", PLAINTEXTS)
def test_oracle_encrypts_we_decrypt(aes_bridge: Any, plaintext: bytes) -> None:
    token = aes_bridge.encrypt_gcm(plaintext, PASSPHRASE)
    assert aesbridge_gcm.decrypt(token, PASSPHRASE) == plaintext
    assert aesbridge_gcm.decrypt(infosimples_form(aes_bridge.encrypt(plaintext, PASSPHRASE)), PASSPHRASE) == (
        plaintext
    )
    assert (
        aesbridge_gcm.decrypt_bin(aes_bridge.encrypt_gcm_bin(plaintext, PASSPHRASE), PASSPHRASE) == plaintext
    )


@pytest.mark.parametrize("plaintext", PLAINTEXTS)
def test_we_encrypt_oracle_decrypts(aes_bridge: Any, plaintext: bytes) -> None:
    assert aes_bridge.decrypt_gcm(aesbridge_gcm.encrypt(plaintext, PASSPHRASE), PASSPHRASE) == plaintext
    assert (
        aes_bridge.decrypt_gcm_bin(aesbridge_gcm.encrypt_bin(plaintext, PASSPHRASE), PASSPHRASE) == plaintext
    )
    urlsafe = aesbridge_gcm.encrypt(plaintext, PASSPHRASE, urlsafe=True)
    assert aes_bridge.decrypt(standard_form(urlsafe), PASSPHRASE) == plaintext


def test_oracle_reads_text_plaintext_as_utf8(aes_bridge: Any) -> None:
    assert (
        aes_bridge.decrypt(aesbridge_gcm.encrypt("olá, ção", PASSPHRASE), PASSPHRASE) == "olá, ção".encode()
    )


def test_values_sharing_a_leased_salt_all_decrypt_with_the_oracle(aes_bridge: Any) -> None:
    keys = EncryptionKeys()
    tokens = [aesbridge_gcm.encrypt_bin(bytes([n]) * n, PASSPHRASE, keys=keys) for n in range(8)]
    assert len({token[:16] for token in tokens}) == 1
    assert [aes_bridge.decrypt_gcm_bin(token, PASSPHRASE) for token in tokens] == [
        bytes([n]) * n for n in range(8)
    ]


def test_we_refuse_an_altered_oracle_token(aes_bridge: Any) -> None:
    data = bytearray(aes_bridge.encrypt_gcm_bin(b"payload", PASSPHRASE))
    data[30] ^= 0x80
    with pytest.raises(TagMismatch):
        aesbridge_gcm.decrypt_bin(bytes(data), PASSPHRASE)


@settings(max_examples=10, deadline=None)
@given(plaintext=st.binary(max_size=200), passphrase=passphrases)
def test_both_directions_for_arbitrary_values(
    aes_bridge: Any, plaintext: bytes, passphrase: str | bytes
) -> None:
    assert aes_bridge.decrypt_gcm(aesbridge_gcm.encrypt(plaintext, passphrase), passphrase) == plaintext
    assert aesbridge_gcm.decrypt(aes_bridge.encrypt_gcm(plaintext, passphrase), passphrase) == plaintext
