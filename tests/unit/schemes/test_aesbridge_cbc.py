"""aesbridge_cbc: layout, round trips, MAC before padding, every bit flip, truncation, block alignment."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.errors import BadKey, BadPadding, BadToken, MacMismatch
from sealgate.schemes import aesbridge_cbc
from sealgate.schemes.aesbridge_kdf import DecryptionKeys, EncryptionKeys
from tests.unit.aesbridge_reference import flip_each_bit, open_cbc, seal_cbc_raw

PASSPHRASE = "throwaway cbc passphrase ção"
SECRET = PASSPHRASE.encode()
SALT, IV = bytes(range(16)), bytes(range(16, 32))

# Each example derives up to two 64-byte keys (~60 ms each): keep the example count small.
passphrases = st.one_of(st.text(min_size=1, max_size=40), st.binary(min_size=1, max_size=40))


def test_layout_is_salt_iv_padded_ciphertext_mac() -> None:
    for size in (0, 1, 15, 16, 17, 32):
        plaintext = bytes(range(size))
        data = base64.b64decode(aesbridge_cbc.encrypt(plaintext, PASSPHRASE), validate=True)
        assert len(data) == 16 + 16 + (size // 16 + 1) * 16 + 32
        assert open_cbc(data, SECRET) == plaintext


def test_decrypt_reads_a_token_built_from_the_spec() -> None:
    data = seal_cbc_raw(b"sixteen bytes!!!" + b"\x10" * 16, SECRET, SALT, IV)
    assert aesbridge_cbc.decrypt_bin(data, PASSPHRASE) == b"sixteen bytes!!!"
    assert aesbridge_cbc.decrypt(base64.b64encode(data), SECRET) == b"sixteen bytes!!!"
    assert aesbridge_cbc.decrypt(base64.urlsafe_b64encode(data).rstrip(b"=").decode(), SECRET) == (
        b"sixteen bytes!!!"
    )


@settings(max_examples=12, deadline=None)
@given(plaintext=st.binary(max_size=300), passphrase=passphrases, urlsafe=st.booleans())
def test_round_trip(plaintext: bytes, passphrase: str | bytes, urlsafe: bool) -> None:
    token = aesbridge_cbc.encrypt(plaintext, passphrase, urlsafe=urlsafe)
    assert aesbridge_cbc.decrypt(token, passphrase) == plaintext
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    assert open_cbc(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), secret) == plaintext


def test_urlsafe_form_has_no_plus_slash_or_padding() -> None:
    tokens = [aesbridge_cbc.encrypt(bytes(n), PASSPHRASE, urlsafe=True) for n in range(40)]
    assert not any(set(token) & set("+/=") for token in tokens)
    assert [aesbridge_cbc.decrypt(token, PASSPHRASE) for token in tokens] == [bytes(n) for n in range(40)]


def test_every_single_bit_flip_is_a_mac_mismatch() -> None:
    data = aesbridge_cbc.encrypt_bin(b"", PASSPHRASE)
    assert len(data) == 80
    cache = DecryptionKeys()
    for altered in flip_each_bit(data):
        with pytest.raises(MacMismatch):
            aesbridge_cbc.decrypt_bin(altered, PASSPHRASE, keys=cache)


def test_bit_flips_after_the_salt_of_a_longer_token_are_mac_mismatches() -> None:
    data = aesbridge_cbc.encrypt_bin(bytes(range(40)), PASSPHRASE)
    for altered in flip_each_bit(data)[16 * 8 :]:
        with pytest.raises(MacMismatch):
            aesbridge_cbc.decrypt_bin(altered, PASSPHRASE)


def test_good_mac_over_bad_padding_is_bad_padding() -> None:
    for block in (b"A" * 15 + b"\x00", b"A" * 15 + b"\x11", b"A" * 14 + b"\x01\x02"):
        with pytest.raises(BadPadding):
            aesbridge_cbc.decrypt_bin(seal_cbc_raw(block, SECRET, SALT, IV), PASSPHRASE)


def test_mac_is_checked_before_the_padding() -> None:
    data = bytearray(seal_cbc_raw(b"A" * 15 + b"\x00", SECRET, SALT, IV))
    data[-1] ^= 1
    with pytest.raises(MacMismatch):
        aesbridge_cbc.decrypt_bin(bytes(data), PASSPHRASE)


@pytest.mark.parametrize("ciphertext_size", [0, 1, 15, 17, 31])
def test_ciphertext_not_a_whole_number_of_blocks_is_a_bad_token(ciphertext_size: int) -> None:
    data = SALT + IV + bytes(ciphertext_size) + bytes(32)
    with pytest.raises(BadToken):
        aesbridge_cbc.decrypt_bin(data, PASSPHRASE)


def test_every_truncation_below_80_bytes_is_a_bad_token() -> None:
    data = aesbridge_cbc.encrypt_bin(b"", PASSPHRASE)
    for size in range(80):
        with pytest.raises(BadToken):
            aesbridge_cbc.decrypt_bin(data[:size], PASSPHRASE)


def test_dropping_a_whole_block_is_a_mac_mismatch() -> None:
    data = aesbridge_cbc.encrypt_bin(bytes(40), PASSPHRASE)
    with pytest.raises(MacMismatch):
        aesbridge_cbc.decrypt_bin(data[:32] + data[48:], PASSPHRASE)


def test_wrong_passphrase_is_a_mac_mismatch() -> None:
    token = aesbridge_cbc.encrypt(b"payload", PASSPHRASE)
    with pytest.raises(MacMismatch):
        aesbridge_cbc.decrypt(token, PASSPHRASE + "!")


@pytest.mark.parametrize("token", ["not base64!", "a", "YWJj+-"])
def test_non_base64_is_a_bad_token(token: str) -> None:
    with pytest.raises(BadToken):
        aesbridge_cbc.decrypt(token, PASSPHRASE)


def test_empty_passphrase_is_a_bad_key() -> None:
    with pytest.raises(BadKey):
        aesbridge_cbc.encrypt(b"payload", b"")
    token = aesbridge_cbc.encrypt(b"payload", PASSPHRASE)
    with pytest.raises(BadKey):
        aesbridge_cbc.decrypt(token, "")


def test_lease_reuses_the_salt_but_never_the_iv() -> None:
    keys = EncryptionKeys()
    tokens = [aesbridge_cbc.encrypt_bin(b"same", PASSPHRASE, keys=keys) for _ in range(10)]
    assert len({token[:16] for token in tokens}) == 1
    assert len({token[16:32] for token in tokens}) == 10
    assert all(open_cbc(token, SECRET) == b"same" for token in tokens)
