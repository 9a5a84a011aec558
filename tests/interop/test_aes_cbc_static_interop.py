"""Netcore's static-IV AES-256-CBC against PHP ``openssl_encrypt``/``openssl_decrypt`` and ``openssl enc``.

The scheme is deterministic, so "PHP encrypts" and "we encrypt" must give the same token, in both encodings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sealgate.codec import b64decode
from sealgate.schemes.aes_cbc_static import Encoding, decrypt, encrypt, generate_key_iv
from tests.interop.cipher_oracle import PhpBatch, ok

pytestmark = pytest.mark.interop

VECTORS = json.loads((Path(__file__).parent / "vectors" / "aes_cbc_static.json").read_text("utf-8"))[
    "vectors"
]
KEY, IV = generate_key_iv()  # throwaway test key and IV, fresh on every run
PLAINTEXTS = [
    '[{"activity_name":"form_submitted","identity":"9999911111","reason":"test/123 ✓"}]',
    "",
    "exactly 16 bytes",
    "z" * 1000,
]
CASES: list[tuple[int, Encoding]] = [
    (number, encoding) for number in range(len(PLAINTEXTS)) for encoding in ("base64", "hex")
]

Results = dict[tuple[str, int, str], bytes | str]


@pytest.fixture(scope="module")
def php_results(php: str) -> Results:
    """One PHP run: PHP encrypts every case, and decrypts every token of ours."""
    batch, index = PhpBatch(), {}
    key, iv = KEY.encode(), IV.encode()
    for number, encoding in CASES:
        text = PLAINTEXTS[number].encode()
        index["php", number, encoding] = batch.add(
            "cbc_encrypt", encoding=encoding, text=text, key=key, iv=iv
        )
        token = encrypt(text, KEY, IV, encoding=encoding).encode()
        index["ours", number, encoding] = batch.add(
            "cbc_decrypt", encoding=encoding, token=token, key=key, iv=iv
        )
    results = batch.run(php)
    return {case: results[i] for case, i in index.items()}


@pytest.mark.parametrize(("number", "encoding"), CASES)
def test_php_encrypts_we_decrypt_and_match(php_results: Results, number: int, encoding: Encoding) -> None:
    token = ok(php_results["php", number, encoding]).decode()
    assert decrypt(token, KEY, IV, encoding=encoding) == PLAINTEXTS[number].encode()
    assert encrypt(PLAINTEXTS[number], KEY, IV, encoding=encoding) == token


@pytest.mark.parametrize(("number", "encoding"), CASES)
def test_we_encrypt_php_decrypts(php_results: Results, number: int, encoding: Encoding) -> None:
    assert ok(php_results["ours", number, encoding]) == PLAINTEXTS[number].encode()


def _openssl(openssl: str, *args: str, data: bytes) -> bytes:
    command = [openssl, "enc", "-aes-256-cbc", "-K", KEY.encode().hex(), "-iv", IV.encode().hex(), *args]
    return subprocess.run(command, input=data, capture_output=True, check=True, timeout=30).stdout


@pytest.mark.parametrize("number", range(len(PLAINTEXTS)))
def test_openssl_cli_encrypts_we_decrypt(openssl: str, number: int) -> None:
    text = PLAINTEXTS[number].encode()
    token_b64 = _openssl(openssl, "-a", "-A", data=text).decode().strip()
    raw = _openssl(openssl, data=text)
    assert decrypt(token_b64, KEY, IV) == text
    assert decrypt(raw.hex(), KEY, IV, encoding="hex") == text
    assert encrypt(text, KEY, IV) == token_b64


@pytest.mark.parametrize("number", range(len(PLAINTEXTS)))
def test_we_encrypt_openssl_cli_decrypts(openssl: str, number: int) -> None:
    text = PLAINTEXTS[number].encode()
    token_b64 = encrypt(text, KEY, IV)
    token_hex = encrypt(text, KEY, IV, encoding="hex")
    assert _openssl(openssl, "-d", "-a", "-A", data=token_b64.encode() + b"\n") == text
    assert _openssl(openssl, "-d", data=bytes.fromhex(token_hex)) == text


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{v['encoding']}-{i}" for i, v in enumerate(VECTORS)])
def test_vector(vector: dict[str, str]) -> None:
    encoding: Encoding = "hex" if vector["encoding"] == "hex" else "base64"
    assert (
        decrypt(vector["token"], vector["key"], vector["iv"], encoding=encoding)
        == vector["plaintext"].encode()
    )
    assert encrypt(vector["plaintext"], vector["key"], vector["iv"], encoding=encoding) == vector["token"]


def test_vector_base64_and_hex_are_the_same_ciphertext() -> None:
    by_plaintext: dict[str, dict[str, str]] = {}
    for vector in VECTORS:
        by_plaintext.setdefault(vector["plaintext"], {})[vector["encoding"]] = vector["token"]
    for tokens in by_plaintext.values():
        assert b64decode(tokens["base64"]) == bytes.fromhex(tokens["hex"])
