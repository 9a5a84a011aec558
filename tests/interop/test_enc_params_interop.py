"""enc_params against the reference ``aes_bridge`` as the Infosimples sample uses it (seed 000).

We protect -> the oracle decrypts each ``enc_`` value and the MD5 of what it reads is our receipt;
the oracle encrypts with the sample's own line -> ``reveal`` reads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from sealgate.layouts.enc_params import protect, reveal
from tests.interop.aesbridge_oracle import infosimples_form, load_oracle, standard_form

pytestmark = pytest.mark.interop

PASSPHRASE = "throwaway-infosimples-ENCRYPTION_KEY"
PARAMS: dict[str, object] = {
    "token": "not-protected",
    "cpf": "123.456.789-09",
    "nome": "João da Silva",
    "numero": 4200,
    "documento": b"%PDF-1.7\n\x00\xff\xfe",
    "timeout": 600,
}
FIELDS = ["cpf", "nome", "numero", "documento"]


@pytest.fixture(scope="module")
def aes_bridge(oracle_module: Callable[[str, str], object]) -> Any:
    return load_oracle(oracle_module)


def test_oracle_reads_what_we_protect_and_the_receipts_match(aes_bridge: Any) -> None:
    sent = protect(PARAMS, FIELDS, PASSPHRASE)
    assert sorted(sent.params) == ["enc_cpf", "enc_documento", "enc_nome", "enc_numero", "timeout", "token"]
    read = {}
    for name in FIELDS:
        token = sent.params["enc_" + name]
        assert isinstance(token, str)
        read[name] = aes_bridge.decrypt(standard_form(token), PASSPHRASE)
    assert read == {
        "cpf": b"123.456.789-09",
        "nome": "João da Silva".encode(),
        "numero": b"4200",
        "documento": b"JVBERi0xLjcKAP/+",  # base64 of the bytes, standard alphabet
    }
    assert sent.receipts == {name: hashlib.md5(text).hexdigest() for name, text in read.items()}


def test_reveal_reads_what_the_infosimples_sample_sends(aes_bridge: Any) -> None:
    params = {
        "token": "not-protected",
        "enc_cpf": infosimples_form(aes_bridge.encrypt("123.456.789-09", PASSPHRASE)),
        "enc_nome": infosimples_form(aes_bridge.encrypt("João da Silva", PASSPHRASE)),
    }
    assert reveal(params, PASSPHRASE) == {
        "token": "not-protected",
        "cpf": "123.456.789-09",
        "nome": "João da Silva",
    }
