"""aesbridge_gcm: layout, round trips, refusals (every bit flip, truncation, wrong or empty passphrase)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.errors import BadKey, BadToken, TagMismatch
from sealgate.schemes import aesbridge_gcm
from sealgate.schemes.aesbridge_kdf import DecryptionKeys, EncryptionKeys
from tests.unit.aesbridge_reference import flip_each_bit, open_gcm, seal_gcm

PASSPHRASE = "throwaway gcm passphrase ção"
SECRET = PASSPHRASE.encode()

# Each example derives up to two keys (~30 ms each): keep the example count small.
passphrases = st.one_of(st.text(min_size=1, max_size=40), st.binary(min_size=1, max_size=40))


def test_layout_is_salt_nonce_ciphertext_tag() -> None:
    plaintext = b"DATA_EXAMPLE"
    data = base64.b64decode(aesbridge_gcm.encrypt(plaintext, PASSPHRASE), validate=True)
    assert len(data) == 16 + 12 + len(plaintext) + 16
    assert open_gcm(data, SECRET) == plaintext


def test_encrypt_bin_is_the_decoded_token() -> None:
    data = aesbridge_gcm.encrypt_bin("olá", PASSPHRASE)
    assert open_gcm(data, SECRET) == "olá".encode()


def test_decrypt_reads_a_token_built_from_the_spec() -> None:
    data = seal_gcm(b"\x00binary\xff", SECRET, salt=bytes(range(16)), nonce=bytes(12))
    assert aesbridge_gcm.decrypt_bin(data, PASSPHRASE) == b"\x00binary\xff"
    assert aesbridge_gcm.decrypt(base64.b64encode(data), PASSPHRASE) == b"\x00binary\xff"
    assert aesbridge_gcm.decrypt(base64.b64encode(data).decode(), SECRET) == b"\x00binary\xff"


def test_empty_plaintext_is_44_bytes() -> None:
    data = aesbridge_gcm.encrypt_bin(b"", PASSPHRASE)
    assert len(data) == 44
    assert aesbridge_gcm.decrypt_bin(data, PASSPHRASE) == b""


@settings(max_examples=15, deadline=None)
@given(plaintext=st.binary(max_size=300), passphrase=passphrases, urlsafe=st.booleans())
def test_round_trip(plaintext: bytes, passphrase: str | bytes, urlsafe: bool) -> None:
    token = aesbridge_gcm.encrypt(plaintext, passphrase, urlsafe=urlsafe)
    assert aesbridge_gcm.decrypt(token, passphrase) == plaintext
    assert open_gcm(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), _utf8(passphrase)) == plaintext


def _utf8(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def test_urlsafe_form_has_no_plus_slash_or_padding() -> None:
    # Lengths 0..11 cover every padding remainder; 36 random bytes and more make "+" and "/" likely.
    plaintexts = [bytes(range(n)) for n in range(12)] * 4
    tokens = [aesbridge_gcm.encrypt(plaintext, PASSPHRASE, urlsafe=True) for plaintext in plaintexts]
    assert not any(set(token) & set("+/=") for token in tokens)
    assert any(set(token) & set("-_") for token in tokens)
    for plaintext, token in zip(plaintexts, tokens, strict=True):
        assert aesbridge_gcm.decrypt(token, PASSPHRASE) == plaintext


def test_decrypt_accepts_both_alphabets_padded_or_not() -> None:
    data = seal_gcm(b"x" * 5, SECRET, salt=b"\xfb" * 16, nonce=b"\xff" * 12)  # "+" and "/" in base64
    standard = base64.b64encode(data).decode()
    assert "+" in standard or "/" in standard
    assert standard.endswith("=")
    urlsafe = base64.urlsafe_b64encode(data).decode()
    for token in (standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")):
        assert aesbridge_gcm.decrypt(token, PASSPHRASE) == b"x" * 5


def test_every_single_bit_flip_is_refused() -> None:
    data = aesbridge_gcm.encrypt_bin(b"", PASSPHRASE)
    cache = DecryptionKeys()
    for altered in flip_each_bit(data):
        with pytest.raises(TagMismatch):
            aesbridge_gcm.decrypt_bin(altered, PASSPHRASE, keys=cache)


def test_bit_flips_in_the_ciphertext_of_a_longer_token_are_refused() -> None:
    data = aesbridge_gcm.encrypt_bin(bytes(range(48)), PASSPHRASE)
    for altered in flip_each_bit(data)[28 * 8 :]:
        with pytest.raises(TagMismatch):
            aesbridge_gcm.decrypt_bin(altered, PASSPHRASE)


def test_every_truncation_below_44_bytes_is_a_bad_token() -> None:
    data = aesbridge_gcm.encrypt_bin(b"", PASSPHRASE)
    for size in range(44):
        with pytest.raises(BadToken):
            aesbridge_gcm.decrypt_bin(data[:size], PASSPHRASE)
        with pytest.raises(BadToken):
            aesbridge_gcm.decrypt(base64.b64encode(data[:size]), PASSPHRASE)


def test_truncation_of_a_longer_token_is_refused() -> None:
    data = aesbridge_gcm.encrypt_bin(b"payload", PASSPHRASE)
    with pytest.raises(TagMismatch):
        aesbridge_gcm.decrypt_bin(data[:-1], PASSPHRASE)


def test_wrong_passphrase_is_a_tag_mismatch() -> None:
    token = aesbridge_gcm.encrypt(b"payload", PASSPHRASE)
    with pytest.raises(TagMismatch) as caught:
        aesbridge_gcm.decrypt(token, PASSPHRASE + "!")
    assert PASSPHRASE not in str(caught.value)


@pytest.mark.parametrize("token", ["not base64!", "a", "YW Jj", "YWJj+-"])
def test_non_base64_is_a_bad_token(token: str) -> None:
    with pytest.raises(BadToken):
        aesbridge_gcm.decrypt(token, PASSPHRASE)


def test_empty_passphrase_is_a_bad_key() -> None:
    with pytest.raises(BadKey):
        aesbridge_gcm.encrypt(b"payload", "")
    token = aesbridge_gcm.encrypt(b"payload", PASSPHRASE)
    with pytest.raises(BadKey):
        aesbridge_gcm.decrypt(token, b"")


def test_default_lease_reuses_the_salt_but_never_the_nonce() -> None:
    keys = EncryptionKeys()
    tokens = [aesbridge_gcm.encrypt_bin(b"same", PASSPHRASE, keys=keys) for _ in range(20)]
    assert len({token[:16] for token in tokens}) == 1
    assert len({token[16:28] for token in tokens}) == 20
    assert all(open_gcm(token, SECRET) == b"same" for token in tokens)


def test_max_uses_1_salts_every_value_afresh() -> None:
    keys = EncryptionKeys(max_uses=1)
    tokens = [aesbridge_gcm.encrypt_bin(b"same", PASSPHRASE, keys=keys) for _ in range(3)]
    assert len({token[:16] for token in tokens}) == 3
