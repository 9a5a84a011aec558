"""PayKun's Laravel envelope against PHP: PayKun's verbatim ``encrypt()`` and a Laravel-style ``decrypt``.

Directions: PHP encrypts -> we decrypt (random and pinned IVs, plus the stored vectors); we encrypt -> the
Laravel-style PHP decrypt reads it; at a pinned IV our token equals PHP's byte for byte.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
from pathlib import Path

import pytest

from sealgate.codec import b64decode
from sealgate.schemes.laravel_cbc import _encrypt_with_iv, decrypt, encrypt, parse_key
from tests.interop.cipher_oracle import PhpBatch, ok

pytestmark = pytest.mark.interop

VECTORS = json.loads((Path(__file__).parent / "vectors" / "laravel_cbc.json").read_text("utf-8"))["vectors"]


def _secret(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits + "/+=-_") for _ in range(length))


# Throwaway test keys, fresh on every run.
KEYS = {
    "secret-32": _secret(32),
    "secret-20": _secret(20),
    "secret-44": _secret(44),
    "app-key": "base64:" + base64.b64encode(secrets.token_bytes(32)).decode(),
}
PLAINTEXTS = [
    "payment/ORD-1/çé ☕ 🚀 https://merchant.test/return?a=1&b=/x",
    "",
    "0123456789abcdef" * 3,
    "/" * 100,
]
CASES = [(label, number) for label in KEYS for number in range(len(PLAINTEXTS))]
SLASHY_IV = b"\xff" * 16  # base64 "/////////////////////w==": exercises json_encode's "\/"
# The IV PHP's random_bytes() is pinned to, per case; one of them puts "/" in iv_b64.
PINNED_IV = {case: SLASHY_IV if case[1] == 0 else secrets.token_bytes(16) for case in CASES}

Results = dict[tuple[str, str, int], bytes | str]


@pytest.fixture(scope="module")
def php_results(php: str) -> Results:
    """One PHP run: PayKun encrypts (random and pinned IV), Laravel-style PHP decrypts our tokens."""
    batch, index = PhpBatch(), {}
    for label, number in CASES:
        key, text = parse_key(KEYS[label]), PLAINTEXTS[number].encode()
        token = encrypt(text, key).encode()
        index["random", label, number] = batch.add("paykun_encrypt", text=text, key=key)
        index["pinned", label, number] = batch.add(
            "paykun_encrypt", text=text, key=key, iv=PINNED_IV[label, number]
        )
        index["ours", label, number] = batch.add("laravel_decrypt", token=token, key=key)
        if number == 0:
            index["ours-wrong-key", label, number] = batch.add("laravel_decrypt", token=token, key=key + b"!")
    results = batch.run(php)
    return {case: results[i] for case, i in index.items()}


@pytest.mark.parametrize(("label", "number"), CASES)
def test_php_encrypt_we_decrypt(php_results: Results, label: str, number: int) -> None:
    token = ok(php_results["random", label, number])
    assert decrypt(token, parse_key(KEYS[label])) == PLAINTEXTS[number].encode()


@pytest.mark.parametrize(("label", "number"), CASES)
def test_same_iv_gives_byte_identical_token(php_results: Results, label: str, number: int) -> None:
    php_token = ok(php_results["pinned", label, number]).decode()
    key = parse_key(KEYS[label])
    assert _encrypt_with_iv(PLAINTEXTS[number], key, PINNED_IV[label, number]) == php_token
    assert decrypt(php_token, key) == PLAINTEXTS[number].encode()


@pytest.mark.parametrize(("label", "number"), CASES)
def test_we_encrypt_laravel_php_decrypts(php_results: Results, label: str, number: int) -> None:
    assert ok(php_results["ours", label, number]) == PLAINTEXTS[number].encode()


@pytest.mark.parametrize("label", KEYS)
def test_php_oracle_refuses_a_wrong_key(php_results: Results, label: str) -> None:
    # The oracle must be able to say no, or the test above proves nothing.
    assert php_results["ours-wrong-key", label, 0] == "RuntimeException: The MAC is invalid."


def test_escaped_slashes_in_php_token() -> None:
    document = b64decode(_encrypt_with_iv("x", b"k" * 32, SLASHY_IV))
    assert document.startswith(b'{"iv":"\\/\\/\\/')


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_decrypts(vector: dict[str, str]) -> None:
    assert decrypt(vector["token"], parse_key(vector["key"])) == vector["plaintext"].encode()


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_reproduced_byte_for_byte(vector: dict[str, str]) -> None:
    key = parse_key(vector["key"])
    assert _encrypt_with_iv(vector["plaintext"], key, b64decode(vector["iv_b64"])) == vector["token"]
