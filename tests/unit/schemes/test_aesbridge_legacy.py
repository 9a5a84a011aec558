"""aesbridge_legacy: EVP_BytesToKey + CBC, strict framing, and what an unauthenticated format misses."""

from __future__ import annotations

import base64

import pytest

from sealgate.errors import BadKey, BadPadding, BadToken
from sealgate.schemes import aesbridge_legacy
from tests.unit.aesbridge_reference import seal_legacy_raw

PASSPHRASE = "throwaway legacy passphrase ção"
SECRET = PASSPHRASE.encode()
SALT = bytes(range(8))


def token_of(padded: bytes, salt: bytes = SALT) -> str:
    return base64.b64encode(seal_legacy_raw(padded, SECRET, salt)).decode()


@pytest.mark.parametrize(
    ("padded", "plaintext"),
    [
        (b"\x10" * 16, b""),
        (b"hello" + b"\x0b" * 11, b"hello"),
        (bytes(range(16)) + b"\x10" * 16, bytes(range(16))),
        (bytes(range(31)) + b"\x01", bytes(range(31))),
    ],
)
def test_decrypts_a_token_built_from_the_spec(padded: bytes, plaintext: bytes) -> None:
    assert aesbridge_legacy.decrypt(token_of(padded), PASSPHRASE) == plaintext
    assert aesbridge_legacy.decrypt(token_of(padded).encode(), SECRET) == plaintext


def test_accepts_the_urlsafe_alphabet() -> None:
    raw = seal_legacy_raw(b"hello" + b"\x0b" * 11, SECRET, b"\xfb\xff" * 4)
    assert aesbridge_legacy.decrypt(base64.urlsafe_b64encode(raw).rstrip(b"="), PASSPHRASE) == b"hello"


def test_missing_salted_header_is_a_bad_token() -> None:
    # The reference returns b"" here; a silent empty value is worse than a refusal.
    raw = seal_legacy_raw(b"\x10" * 16, SECRET, SALT)
    for broken in (b"salted__" + raw[8:], raw[8:], b"Salted_", b""):
        with pytest.raises(BadToken):
            aesbridge_legacy.decrypt(base64.b64encode(broken), PASSPHRASE)


@pytest.mark.parametrize("ciphertext_size", [0, 1, 15, 17])
def test_ciphertext_not_a_whole_number_of_blocks_is_a_bad_token(ciphertext_size: int) -> None:
    with pytest.raises(BadToken):
        aesbridge_legacy.decrypt(base64.b64encode(b"Salted__" + SALT + bytes(ciphertext_size)), PASSPHRASE)


@pytest.mark.parametrize("last_block", [b"A" * 15 + b"\x00", b"A" * 15 + b"\x11", b"A" * 14 + b"\x01\x02"])
def test_bad_padding_is_refused(last_block: bytes) -> None:
    with pytest.raises(BadPadding):
        aesbridge_legacy.decrypt(token_of(last_block), PASSPHRASE)


def test_an_altered_early_block_decrypts_to_garbage_without_error() -> None:
    # Unauthenticated: flipping a bit of ciphertext block 1 garbles plaintext block 1 and flips the same bit
    # of block 2; the padding block is untouched, so nothing notices. This is why Sealgate never writes it.
    plaintext = b"A" * 32
    raw = bytearray(seal_legacy_raw(plaintext + b"\x10" * 16, SECRET, SALT))
    raw[16] ^= 0x01
    garbled = aesbridge_legacy.decrypt(base64.b64encode(bytes(raw)), PASSPHRASE)
    assert len(garbled) == 32
    assert garbled != plaintext
    assert garbled[16:] == b"@" + b"A" * 15


def test_empty_passphrase_is_a_bad_key() -> None:
    with pytest.raises(BadKey):
        aesbridge_legacy.decrypt(token_of(b"\x10" * 16), "")


def test_not_base64_is_a_bad_token() -> None:
    with pytest.raises(BadToken):
        aesbridge_legacy.decrypt("U2FsdGVkX1!!", PASSPHRASE)
