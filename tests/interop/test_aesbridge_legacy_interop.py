"""aesbridge_legacy against two oracles: ``aes_bridge.encrypt_legacy`` and ``openssl enc -md md5``.

Decrypt only, so one direction: the oracle encrypts, we decrypt.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from sealgate.schemes import aesbridge_legacy
from tests.interop.aesbridge_oracle import Vector, load_oracle, vectors

pytestmark = pytest.mark.interop

PASSPHRASE = "throwaway interop passphrase — ção 🔑"
PLAINTEXTS = [b"", b"DATA_EXAMPLE", b"\x10" * 16, "123.456.789-09 São Paulo".encode(), bytes(range(256))]


@pytest.fixture(scope="module")
def aes_bridge(oracle_module: Callable[[str, str], object]) -> Any:
    return load_oracle(oracle_module)


@pytest.mark.parametrize("vector", vectors("legacy"), ids=lambda v: v.label)
def test_reference_vectors_decrypt(vector: Vector) -> None:
    assert aesbridge_legacy.decrypt(vector.token, vector.passphrase) == vector.plaintext


@pytest.mark.parametrize("plaintext", PLAINTEXTS)
def test_aes_bridge_encrypts_we_decrypt(aes_bridge: Any, plaintext: bytes) -> None:
    assert aesbridge_legacy.decrypt(aes_bridge.encrypt_legacy(plaintext, PASSPHRASE), PASSPHRASE) == plaintext


@pytest.mark.parametrize("plaintext", PLAINTEXTS)
def test_openssl_encrypts_we_decrypt(openssl: str, plaintext: bytes) -> None:
    done = subprocess.run(
        [
            openssl,
            "enc",
            "-aes-256-cbc",
            "-md",
            "md5",
            "-salt",
            "-a",
            "-A",
            "-pass",
            "env:SEALGATE_TEST_PASS",
        ],
        input=plaintext,
        capture_output=True,
        check=False,
        env={**os.environ, "SEALGATE_TEST_PASS": PASSPHRASE},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    token = done.stdout.strip()
    assert token.startswith(b"U2FsdGVkX1")  # base64 of "Salted__"
    assert aesbridge_legacy.decrypt(token, PASSPHRASE) == plaintext
