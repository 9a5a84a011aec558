"""Behaviour of Netcore's static-IV AES-256-CBC: determinism (on purpose), encodings, refusals."""

from __future__ import annotations

import base64
import string

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from sealgate.errors import BadInput, BadKey, BadPadding, BadToken
from sealgate.schemes.aes_cbc_static import X_ECODE, Encoding, decrypt, encrypt, generate_key_iv

KEY, IV = "ThrowawayTestKey0123456789abcdef", "ThrowawayTestIV0"  # throwaway test key and IV
ENCODINGS: list[Encoding] = ["base64", "hex"]


@given(plaintext=st.binary(max_size=300), encoding=st.sampled_from(ENCODINGS))
def test_round_trip(plaintext: bytes, encoding: Encoding) -> None:
    token = encrypt(plaintext, KEY, IV, encoding=encoding)
    assert decrypt(token, KEY, IV, encoding=encoding) == plaintext
    assert len(base64.b64decode(token) if encoding == "base64" else bytes.fromhex(token)) % 16 == 0


@given(plaintext=st.text(max_size=100))
def test_text_is_utf8_and_deterministic(plaintext: str) -> None:
    assert encrypt(plaintext, KEY, IV) == encrypt(plaintext.encode(), KEY.encode(), IV.encode())


def test_base64_and_hex_carry_the_same_ciphertext() -> None:
    token_b64, token_hex = encrypt("x", KEY, IV), encrypt("x", KEY, IV, encoding="hex")
    assert base64.b64decode(token_b64).hex() == token_hex
    assert token_hex == token_hex.lower()
    assert decrypt(token_hex.upper(), KEY, IV, encoding="hex") == b"x"


def test_weakness_equal_prefixes_show() -> None:
    # Documented weakness: the first block of two messages sharing 16 bytes is identical.
    first = base64.b64decode(encrypt("identity=99999111&amount=1", KEY, IV))
    second = base64.b64decode(encrypt("identity=99999111&amount=2", KEY, IV))
    assert first[:16] == second[:16]
    assert first[16:] != second[16:]


def test_weakness_no_integrity() -> None:
    # Documented weakness: flipping a ciphertext bit flips the same bit of the next plaintext block.
    plaintext = b"A" * 16 + b'{"amount":"100"}'
    raw = bytearray(base64.b64decode(encrypt(plaintext, KEY, IV)))
    raw[11] ^= ord("1") ^ ord("9")  # byte 11 of block 0 -> byte 11 of block 1
    altered = decrypt(base64.b64encode(bytes(raw)), KEY, IV)
    assert altered[16:] == b'{"amount":"900"}'


def test_x_ecode() -> None:
    assert X_ECODE == {"base64": "11256", "hex": "11257"}


def test_generate_key_iv() -> None:
    key, iv = generate_key_iv()
    allowed = set(string.ascii_letters + string.digits)
    assert (len(key), len(iv)) == (32, 16)
    assert set(key + iv) <= allowed
    assert generate_key_iv() != (key, iv)
    assert decrypt(encrypt("ok", key, iv), key, iv) == b"ok"


@pytest.mark.parametrize(
    ("key", "iv"),
    [
        (KEY[:-1], IV),
        (KEY + "x", IV),
        ("é" + KEY[1:], IV),  # 32 characters, 33 bytes
        (KEY, IV[:-1]),
        (KEY, IV + "x"),
        ("", IV),
        (KEY, ""),
    ],
)
def test_wrong_key_or_iv_length_is_bad_key(key: str, iv: str) -> None:
    with pytest.raises(BadKey):
        encrypt("x", key, iv)
    with pytest.raises(BadKey):
        decrypt(encrypt("x", KEY, IV), key, iv)


@pytest.mark.parametrize(
    ("token", "encoding"),
    [
        ("", "base64"),
        ("", "hex"),
        ("not base64!", "base64"),
        ("zz" * 16, "hex"),
        ("abc", "hex"),
        (base64.b64encode(b"\0" * 15).decode(), "base64"),
        ("00" * 17, "hex"),
        (encrypt("x", KEY, IV, encoding="hex"), "base64"),  # hex text read as base64: 24 bytes
    ],
)
def test_malformed_token_is_bad_token(token: str, encoding: Encoding) -> None:
    with pytest.raises(BadToken):
        decrypt(token, KEY, IV, encoding=encoding)


def test_bad_padding() -> None:
    encryptor = Cipher(algorithms.AES(KEY.encode()), modes.CBC(IV.encode())).encryptor()
    raw = encryptor.update(b"\0" * 16) + encryptor.finalize()
    with pytest.raises(BadPadding):
        decrypt(base64.b64encode(raw), KEY, IV)


def test_unknown_encoding_is_bad_input() -> None:
    with pytest.raises(BadInput):
        encrypt("x", KEY, IV, encoding="base32")  # type: ignore[arg-type]
    with pytest.raises(BadInput):
        decrypt("AA==", KEY, IV, encoding="base32")  # type: ignore[arg-type]
