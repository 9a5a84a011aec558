"""Netcore's AES-256-GCM (x-eCode 11258) against PHP ``openssl_encrypt``/``openssl_decrypt`` (aes-256-gcm)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sealgate.codec import b64decode, b64encode
from sealgate.schemes.aes_gcm import decrypt, encrypt, generate_key
from tests.interop.cipher_oracle import PhpBatch, ok

pytestmark = pytest.mark.interop

VECTORS = json.loads((Path(__file__).parent / "vectors" / "aes_gcm.json").read_text("utf-8"))["vectors"]
KEY = generate_key()  # throwaway test key, fresh on every run
PLAINTEXTS = ['{"event":"form_submitted","note":"a/b ✓"}', "", "exactly 16 bytes", "q" * 1000]

Results = dict[tuple[str, int], bytes | str]


@pytest.fixture(scope="module")
def php_results(php: str) -> Results:
    """One PHP run: PHP encrypts every plaintext, decrypts every token of ours, and refuses altered ones."""
    batch, index = PhpBatch(), {}
    for number, plaintext in enumerate(PLAINTEXTS):
        index["php", number] = batch.add("gcm_encrypt", text=plaintext.encode(), key=KEY.encode())
        token = encrypt(plaintext, KEY)
        index["ours", number] = batch.add("gcm_decrypt", token=token.encode(), key=KEY.encode())
        altered = bytearray(b64decode(token))
        altered[-1] ^= 1
        index["altered", number] = batch.add(
            "gcm_decrypt", token=b64encode(bytes(altered)).encode(), key=KEY.encode()
        )
    results = batch.run(php)
    return {case: results[i] for case, i in index.items()}


@pytest.mark.parametrize("number", range(len(PLAINTEXTS)))
def test_php_encrypts_we_decrypt(php_results: Results, number: int) -> None:
    token = ok(php_results["php", number])
    assert len(b64decode(token)) == 12 + len(PLAINTEXTS[number].encode()) + 16
    assert decrypt(token, KEY) == PLAINTEXTS[number].encode()


@pytest.mark.parametrize("number", range(len(PLAINTEXTS)))
def test_we_encrypt_php_decrypts(php_results: Results, number: int) -> None:
    assert ok(php_results["ours", number]) == PLAINTEXTS[number].encode()


@pytest.mark.parametrize("number", range(len(PLAINTEXTS)))
def test_php_oracle_refuses_an_altered_tag(php_results: Results, number: int) -> None:
    assert php_results["altered", number] == "RuntimeException: tag does not match"


@pytest.mark.parametrize("vector", VECTORS, ids=[str(i) for i in range(len(VECTORS))])
def test_vector_decrypts(vector: dict[str, str]) -> None:
    assert decrypt(vector["token"], vector["key"]) == vector["plaintext"].encode()
