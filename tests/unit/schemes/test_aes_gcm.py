"""Behaviour of Netcore's AES-256-GCM: layout, fresh nonces, every altered bit refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealgate.errors import BadKey, BadToken, TagMismatch
from sealgate.schemes.aes_gcm import X_ECODE, decrypt, encrypt, generate_key

KEY = base64.b64encode(b"throwaway test key, 32 bytes ok!").decode()  # throwaway


@given(plaintext=st.binary(max_size=300))
def test_round_trip_and_layout(plaintext: bytes) -> None:
    token = encrypt(plaintext, KEY)
    assert len(base64.b64decode(token, validate=True)) == 12 + len(plaintext) + 16
    assert decrypt(token, KEY) == plaintext


@given(plaintext=st.text(max_size=100))
def test_text_is_utf8(plaintext: str) -> None:
    assert decrypt(encrypt(plaintext, KEY.encode()), KEY) == plaintext.encode()


def test_fresh_nonce_per_token() -> None:
    nonces = {base64.b64decode(encrypt("same", KEY))[:12] for _ in range(50)}
    assert len(nonces) == 50


def test_every_bit_flip_is_tag_mismatch() -> None:
    raw = base64.b64decode(encrypt('{"event":"x"}', KEY))
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(TagMismatch):
            decrypt(base64.b64encode(bytes(flipped)), KEY)


def test_wrong_key_is_tag_mismatch() -> None:
    with pytest.raises(TagMismatch):
        decrypt(encrypt("x", KEY), generate_key())


def test_truncated_or_extended_token_is_refused() -> None:
    raw = base64.b64decode(encrypt("hello", KEY))
    with pytest.raises(TagMismatch):
        decrypt(base64.b64encode(raw[:-1]), KEY)
    with pytest.raises(TagMismatch):
        decrypt(base64.b64encode(raw + b"\0"), KEY)


@pytest.mark.parametrize(
    "token", ["", "not base64!", base64.b64encode(b"\0" * 27).decode()], ids=["empty", "not-base64", "short"]
)
def test_malformed_token_is_bad_token(token: str) -> None:
    with pytest.raises(BadToken):
        decrypt(token, KEY)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64!",
        base64.b64encode(b"\0" * 16).decode(),
        base64.b64encode(b"\0" * 31).decode(),
        base64.b64encode(b"\0" * 33).decode(),
        "k" * 32,  # a 32-character raw key is not the base64 of 32 bytes
    ],
)
def test_bad_key(key: str) -> None:
    with pytest.raises(BadKey):
        encrypt("x", key)
    with pytest.raises(BadKey):
        decrypt(encrypt("x", KEY), key)


def test_generate_key() -> None:
    key = generate_key()
    assert len(base64.b64decode(key, validate=True)) == 32
    assert generate_key() != key
    assert decrypt(encrypt("ok", key), key) == b"ok"


def test_x_ecode() -> None:
    assert X_ECODE == "11258"
