"""Bounded work per request, at the handler: a decrypt request whose tokens would cost many key derivations is a
413 at once, before any derivation, from the encrypt function cold-started on moto.

Before the limits, 1000 ``enc_`` fields with distinct salts cost 1000 PBKDF2 runs of 100 000 iterations (tens of
seconds, past the function's timeout). Derivations are counted by a spy around the real
:func:`sealgate.schemes.aesbridge_kdf.derive`; tokens are made by the reference construction.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest

from sealgate.layouts.enc_params import MAX_DERIVATIONS, MAX_FIELDS
from sealgate.schemes import aesbridge_kdf
from sealgate_local.aws_stack import StackResources
from tests.integration.conftest import Function, Output, event
from tests.unit.aesbridge_reference import seal_gcm

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

# Generous for a loaded CI machine; the unbounded request took 1000 derivations of 15-30 ms each.
REFUSED_WITHIN_SECONDS = 5.0


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    seen: list[bytes] = []
    real = aesbridge_kdf.derive

    def counting(passphrase: bytes, salt: bytes, length: int) -> bytes:
        seen.append(salt)
        return real(passphrase, salt, length)

    monkeypatch.setattr(aesbridge_kdf, "derive", counting)
    return seen


@pytest.fixture
def encrypt_fn(cold_start: Callable[..., Function]) -> Function:
    aesbridge_kdf.DEFAULT_DECRYPTION_KEYS.clear()
    return cold_start("encrypt")


def token(passphrase: str, text: str, salt: int) -> str:
    sealed = seal_gcm(text.encode(), passphrase.encode(), salt=salt.to_bytes(16, "big"), nonce=bytes(12))
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def passphrase(stack: StackResources) -> str:
    return stack.secrets["infosimples"].value["encryption_key"]


def test_a_thousand_fields_with_distinct_salts_are_refused_at_once(
    encrypt_fn: Function, derivations: list[bytes], output: Output
) -> None:
    hostile = {
        f"enc_f{i}": base64.urlsafe_b64encode(i.to_bytes(16, "big") + bytes(40)).decode() for i in range(1000)
    }
    started = time.perf_counter()
    reply = encrypt_fn.call(event("decrypt-infosimples", body={"payload": hostile}))
    elapsed = time.perf_counter() - started

    assert (reply.status, reply.body["code"]) == (413, "too_many_fields")
    assert set(reply.body) == {"code", "message"}
    assert derivations == []
    assert elapsed < REFUSED_WITHIN_SECONDS
    [audit] = output.audits("decrypt")
    assert (audit["outcome"], audit["reason"]) == ("refused", "too_many_fields")


def test_valid_tokens_with_too_many_distinct_salts_are_refused_before_any_derivation(
    encrypt_fn: Function, stack: StackResources, derivations: list[bytes]
) -> None:
    key = passphrase(stack)
    hostile = {f"enc_f{i}": token(key, f"value {i}", i) for i in range(MAX_DERIVATIONS + 1)}
    reply = encrypt_fn.call(event("decrypt-infosimples", body={"payload": hostile}))
    assert (reply.status, reply.body["code"]) == (413, "too_much_work")
    assert derivations == []


def test_within_the_limits_the_same_tokens_open(
    encrypt_fn: Function, stack: StackResources, derivations: list[bytes]
) -> None:
    key = passphrase(stack)
    sent = {f"enc_f{i}": token(key, f"value {i}", i % MAX_DERIVATIONS) for i in range(MAX_FIELDS)}
    reply = encrypt_fn.call(event("decrypt-infosimples", body={"payload": sent}))
    assert reply.status == 200, reply.text
    assert reply.body["payload"] == {f"f{i}": f"value {i}" for i in range(MAX_FIELDS)}
    assert len(derivations) == MAX_DERIVATIONS
