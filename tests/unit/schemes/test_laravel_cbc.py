"""Behaviour of the PayKun/Laravel envelope: round trips, strict parsing, MAC before decryption."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from sealgate.errors import BadKey, BadPadding, BadToken, MacMismatch
from sealgate.schemes.laravel_cbc import (
    _encrypt_with_iv,
    decrypt,
    encrypt,
    parse_key,
    php_serialize,
    php_unserialize,
)

KEY = b"throwaway-test-key-not-for-use!!"  # 32 bytes, throwaway
IV = bytes(range(16))

keys = st.binary(min_size=1, max_size=80)


def _fields(token: str) -> dict[str, str]:
    fields: dict[str, str] = json.loads(base64.b64decode(token))
    return fields


def _token(fields: dict[str, object]) -> str:
    return base64.b64encode(json.dumps(fields).encode()).decode()


def _sealed(iv: bytes, ciphertext: bytes, key: bytes = KEY, **extra: object) -> str:
    """A token with a valid MAC around an arbitrary ciphertext (to reach the checks after the MAC)."""
    iv_b64, value_b64 = base64.b64encode(iv).decode(), base64.b64encode(ciphertext).decode()
    mac = hmac.new(key, (iv_b64 + value_b64).encode(), hashlib.sha256).hexdigest()
    return _token({"iv": iv_b64, "value": value_b64, "mac": mac, **extra})


def _raw_cbc(plaintext: bytes, key: bytes = KEY, iv: bytes = IV) -> bytes:
    """AES-256-CBC without padding (the caller supplies whole blocks)."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(plaintext) + encryptor.finalize()


# --- round trips -------------------------------------------------------------------------------------------


@given(plaintext=st.binary(max_size=300), key=keys)
def test_round_trip_bytes(plaintext: bytes, key: bytes) -> None:
    assert decrypt(encrypt(plaintext, key), key) == plaintext


@given(plaintext=st.text(max_size=200), key=keys)
def test_round_trip_text_is_utf8(plaintext: str, key: bytes) -> None:
    assert decrypt(encrypt(plaintext, key), key) == plaintext.encode()


@given(data=st.binary(max_size=300))
def test_serialize_round_trip(data: bytes) -> None:
    serialized = php_serialize(data)
    assert serialized == b"s:" + str(len(data)).encode() + b':"' + data + b'";'
    assert php_unserialize(serialized) == data


def test_serialize_counts_bytes_not_characters() -> None:
    assert php_serialize("é/☃".encode()) == 's:6:"é/☃";'.encode()


def test_fresh_iv_per_token() -> None:
    assert encrypt("same", KEY) != encrypt("same", KEY)
    assert len({_fields(encrypt("same", KEY))["iv"] for _ in range(20)}) == 20


def test_token_is_php_json_encode_layout() -> None:
    document = base64.b64decode(_encrypt_with_iv("a", KEY, b"\xff" * 16)).decode()
    assert document.startswith('{"iv":"\\/\\/\\/')
    assert " " not in document
    assert list(json.loads(document)) == ["iv", "value", "mac"]
    assert json.loads(document)["mac"] == json.loads(document)["mac"].lower()


def test_aes_key_is_nul_padded_and_truncated_hmac_key_whole() -> None:
    short, long_key = b"s" * 20, b"L" * 32 + b"tail-bytes!!"
    # AES part: a short key acts as NUL-padded, a long one as its first 32 bytes.
    for key, aes_key in ((short, short + b"\0" * 12), (long_key, long_key[:32])):
        fields = _fields(_encrypt_with_iv("x", key, IV))
        decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(IV)).decryptor()
        padded = decryptor.update(base64.b64decode(fields["value"])) + decryptor.finalize()
        assert padded == b's:1:"x";' + bytes([8]) * 8
    # HMAC part: the whole key, so the truncated key does not authenticate.
    with pytest.raises(MacMismatch):
        decrypt(encrypt("x", long_key), long_key[:32])


# --- keys --------------------------------------------------------------------------------------------------


def test_parse_key_app_key_is_decoded() -> None:
    raw = bytes(range(32))
    assert parse_key("base64:" + base64.b64encode(raw).decode()) == raw
    assert parse_key(b"base64:" + base64.b64encode(raw)) == raw


def test_parse_key_raw_secret_is_utf8() -> None:
    assert parse_key("sécret/key") == "sécret/key".encode()
    assert parse_key(b"\x00\xff") == b"\x00\xff"


@pytest.mark.parametrize("text", ["", b"", "base64:", "base64:!!!!", "base64:QUJD*"])
def test_parse_key_refuses(text: str | bytes) -> None:
    with pytest.raises(BadKey):
        parse_key(text)


def test_empty_key_refused() -> None:
    with pytest.raises(BadKey):
        encrypt("x", b"")
    with pytest.raises(BadKey):
        decrypt(encrypt("x", KEY), b"")


# --- tampering ---------------------------------------------------------------------------------------------


def test_wrong_key_is_mac_mismatch() -> None:
    with pytest.raises(MacMismatch):
        decrypt(encrypt("secret", KEY), KEY[:-1] + b"?")


@pytest.mark.parametrize("field", ["iv", "value", "mac"])
def test_every_bit_flip_of_a_field_is_mac_mismatch(field: str) -> None:
    fields = _fields(_encrypt_with_iv("flip me", KEY, IV))
    decode, encode = (
        (bytes.fromhex, bytes.hex)
        if field == "mac"
        else (base64.b64decode, lambda raw: base64.b64encode(raw).decode())
    )
    raw = decode(fields[field])
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(MacMismatch):
            decrypt(_token({**fields, field: encode(bytes(flipped))}), KEY)


def test_every_bit_flip_of_the_json_is_refused() -> None:
    document = base64.b64decode(_encrypt_with_iv("flip me", KEY, b"\xff" * 16))
    for bit in range(len(document) * 8):
        flipped = bytearray(document)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises((BadToken, MacMismatch)):
            decrypt(base64.b64encode(bytes(flipped)), KEY)


def test_mac_is_checked_before_decryption() -> None:
    # Garbage ciphertext under a wrong MAC is a MAC failure, never a padding or framing error.
    fields = json.loads(base64.b64decode(_sealed(IV, b"\x01" * 15)))
    with pytest.raises(MacMismatch):
        decrypt(_token({**fields, "mac": "0" * 64}), KEY)


def test_uppercase_mac_is_refused() -> None:
    fields = _fields(encrypt("x", KEY))
    with pytest.raises(MacMismatch):
        decrypt(_token({**fields, "mac": fields["mac"].upper()}), KEY)


# --- malformed tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"\xff\xfe").decode(),
        _token(["iv", "value", "mac"]),  # type: ignore[arg-type]
        _token({"iv": "AAAAAAAAAAAAAAAAAAAAAA==", "value": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        _token({"iv": 1, "value": "AA==", "mac": "00"}),
        _token({"iv": "AA==", "value": None, "mac": "00"}),
        _token({"iv": "AAAAAAAAAAAAAAAAAAAAAA==", "value": "AA==", "mac": "00", "extra": ""}),
        base64.b64encode(b'{"iv":"a","iv":"b","value":"c","mac":"d"}').decode(),
        base64.b64encode(b'{"iv":NaN,"value":"c","mac":"d"}').decode(),
        base64.b64encode('{"iv":"AA==","value":"AA==","mac":"é"}'.encode()).decode(),
        base64.b64encode(b'{"iv":"AA==","value":"AA==","mac":"\\ud800"}').decode(),
    ],
    ids=[
        "empty",
        "not-base64",
        "not-json",
        "not-utf8",
        "array",
        "no-mac",
        "iv-not-string",
        "value-null",
        "extra-field",
        "duplicate-field",
        "nan",
        "non-ascii",
        "lone-surrogate",
    ],
)
def test_malformed_envelope_is_bad_token(token: str) -> None:
    with pytest.raises(BadToken):
        decrypt(token, KEY)


@pytest.mark.parametrize("iv", [b"", b"\0" * 15, b"\0" * 17, b"\0" * 32])
def test_iv_must_be_16_bytes(iv: bytes) -> None:
    with pytest.raises(BadToken):
        decrypt(_sealed(iv, _raw_cbc(php_serialize(b"x") + bytes([8]) * 8)), KEY)


def test_iv_not_base64_is_bad_token() -> None:
    token = _token({**_fields(encrypt("x", KEY)), "iv": "@@@@"})
    with pytest.raises(BadToken):
        decrypt(token, KEY)


@pytest.mark.parametrize("tag", ["", None])
def test_cbc_tag_field_empty_or_absent(tag: str | None) -> None:
    fields: dict[str, object] = dict(_fields(encrypt("tagged", KEY)))
    if tag is not None:
        fields["tag"] = tag
    assert decrypt(_token(fields), KEY) == b"tagged"


@pytest.mark.parametrize("tag", ["AAAAAAAAAAAAAAAAAAAAAA==", 0, None])
def test_gcm_tag_or_non_string_tag_is_bad_token(tag: object) -> None:
    with pytest.raises(BadToken):
        decrypt(_token({**_fields(encrypt("x", KEY)), "tag": tag}), KEY)


@pytest.mark.parametrize("ciphertext", [b"", b"\0" * 15, b"\0" * 17])
def test_ciphertext_not_whole_blocks_is_bad_token(ciphertext: bytes) -> None:
    with pytest.raises(BadToken):
        decrypt(_sealed(IV, ciphertext), KEY)


def test_bad_padding_after_valid_mac() -> None:
    with pytest.raises(BadPadding):
        decrypt(_sealed(IV, _raw_cbc(b's:1:"x";' + b"\0" * 8)), KEY)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"i:5;",
        b"a:0:{}",
        b's:2:"abc";',
        b's:4:"abc";',
        b's:3:"abc"',
        b's:3:"abc";;',
        b's:3:"abc";\n',
        b's:03:"abc";',
        b's:+3:"abc";',
        b's:-3:"abc";',
        b'S:3:"abc";',
        b"s:3:\"abc';",
        b"",
    ],
)
def test_plaintext_must_be_one_serialized_string(plaintext: bytes) -> None:
    with pytest.raises(BadToken):
        php_unserialize(plaintext)
    padded = plaintext + bytes([16 - len(plaintext) % 16]) * (16 - len(plaintext) % 16)
    with pytest.raises(BadToken):
        decrypt(_sealed(IV, _raw_cbc(padded)), KEY)
