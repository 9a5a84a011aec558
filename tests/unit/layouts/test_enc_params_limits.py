"""Bounded work per request: the enc_ parameters one request carries, and the distinct salts (PBKDF2 derivations)
their tokens cost, are refused past their limits before anything is derived.

Tokens are made by the reference construction (:mod:`tests.unit.aesbridge_reference`) with chosen salts; the
derivations are counted by a spy around the real :func:`sealgate.schemes.aesbridge_kdf.derive`.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from importlib import resources
from typing import Any

import pytest

from sealgate.errors import BadToken, TagMismatch, TooManyFields, TooMuchWork
from sealgate.layouts import enc_params
from sealgate.layouts.enc_params import MAX_DERIVATIONS, MAX_FIELDS, protect, reveal
from sealgate.partners import ProfileError, parse_profile
from sealgate.schemes import aesbridge_cbc, aesbridge_gcm, aesbridge_kdf, work
from sealgate.schemes.aesbridge_kdf import DecryptionKeys, salt_of
from tests.unit.aesbridge_reference import seal_cbc_raw, seal_gcm

PASSPHRASE = b"throwaway infosimples passphrase"


def urlsafe(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def gcm_token(text: str, salt_index: int) -> str:
    return urlsafe(seal_gcm(text.encode(), PASSPHRASE, salt=bytes([salt_index]) * 16, nonce=bytes(12)))


def cbc_token(text: str, salt_index: int) -> str:
    raw = text.encode()
    pad = 16 - len(raw) % 16
    return urlsafe(
        seal_cbc_raw(raw + bytes([pad]) * pad, PASSPHRASE, salt=bytes([salt_index]) * 16, iv=bytes(16))
    )


def params(count: int, salts: int, make: Any = gcm_token) -> dict[str, object]:
    """``count`` enc_ parameters spread over ``salts`` distinct salts, and one parameter in the clear."""
    found: dict[str, object] = {"origem": "web"}
    found.update({f"enc_f{i}": make(f"value {i}", i % salts) for i in range(count)})
    return found


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The salts of every real PBKDF2 derivation made while the test runs."""
    seen: list[bytes] = []
    real = aesbridge_kdf.derive

    def counting(passphrase: bytes, salt: bytes, length: int) -> bytes:
        seen.append(salt)
        return real(passphrase, salt, length)

    monkeypatch.setattr(aesbridge_kdf, "derive", counting)
    return seen


@pytest.fixture
def keys() -> DecryptionKeys:
    return DecryptionKeys()  # empty: every distinct salt is one derivation


# --- the defaults -------------------------------------------------------------------------------------------


def test_the_defaults_leave_room_for_a_consultation_and_bound_its_cost() -> None:
    infosimples = json.loads(
        resources.files("sealgate.partners").joinpath("profiles/infosimples.json").read_text(encoding="utf-8")
    )
    assert len(infosimples["protection"]["fields"]) <= MAX_DERIVATIONS <= MAX_FIELDS
    # A request's worst case, tried under the current and the previous key: 2 * 8 derivations of ~30 ms.
    assert 2 * MAX_DERIVATIONS * 0.030 < 1.0


# --- decrypting: fields -------------------------------------------------------------------------------------


def test_more_enc_fields_than_allowed_are_refused_before_any_derivation(
    derivations: list[bytes], keys: DecryptionKeys
) -> None:
    hostile = params(MAX_FIELDS + 1, salts=1)
    with pytest.raises(TooManyFields) as refused:
        reveal(hostile, PASSPHRASE, keys=keys)
    assert refused.value.http_status == 413
    assert refused.value.code == "too_many_fields"
    assert derivations == []


def test_a_thousand_enc_fields_with_distinct_salts_cost_nothing(
    derivations: list[bytes], keys: DecryptionKeys
) -> None:
    hostile = {f"enc_f{i}": urlsafe(i.to_bytes(16, "big") + bytes(40)) for i in range(1000)}
    with pytest.raises(TooManyFields):
        reveal(hostile, PASSPHRASE, keys=keys)
    assert derivations == []


def test_exactly_max_fields_sharing_one_salt_open_with_one_derivation(
    derivations: list[bytes], keys: DecryptionKeys
) -> None:
    sent = params(MAX_FIELDS, salts=1)
    opened = reveal(sent, PASSPHRASE, keys=keys)
    assert opened == {"origem": "web", **{f"f{i}": f"value {i}" for i in range(MAX_FIELDS)}}
    assert derivations == [bytes(16)]


def test_the_field_limit_is_an_argument(keys: DecryptionKeys) -> None:
    with pytest.raises(TooManyFields):
        reveal(params(3, salts=1), PASSPHRASE, keys=keys, max_fields=2)
    assert len(reveal(params(2, salts=1), PASSPHRASE, keys=keys, max_fields=2)) == 3


# --- decrypting: distinct salts ------------------------------------------------------------------------------


def test_more_distinct_salts_than_allowed_are_refused_before_any_derivation(
    derivations: list[bytes], keys: DecryptionKeys
) -> None:
    hostile = params(MAX_DERIVATIONS + 1, salts=MAX_DERIVATIONS + 1)
    with pytest.raises(TooMuchWork) as refused:
        reveal(hostile, PASSPHRASE, keys=keys)
    assert (refused.value.http_status, refused.value.code) == (413, "too_much_work")
    assert derivations == []


def test_as_many_distinct_salts_as_allowed_open_with_one_derivation_each(
    derivations: list[bytes], keys: DecryptionKeys
) -> None:
    sent = params(2 * MAX_DERIVATIONS, salts=MAX_DERIVATIONS)
    opened = reveal(sent, PASSPHRASE, keys=keys)
    assert opened["f0"] == "value 0"
    assert sorted(derivations) == [bytes([i]) * 16 for i in range(MAX_DERIVATIONS)]


def test_a_wrong_passphrase_within_the_limits_stops_at_the_first_token(
    derivations: list[bytes], keys: DecryptionKeys
) -> None:
    with pytest.raises(TagMismatch):
        reveal(params(MAX_DERIVATIONS, salts=MAX_DERIVATIONS), b"another passphrase", keys=keys)
    assert len(derivations) == 1


def test_malformed_tokens_are_not_counted_as_derivations(keys: DecryptionKeys) -> None:
    sent = params(MAX_DERIVATIONS, salts=MAX_DERIVATIONS)
    sent["enc_short"] = urlsafe(b"\xff" * 43)  # one byte short of salt, nonce and tag
    sent["enc_text"] = "not base64!"
    with pytest.raises(BadToken):  # refused when reached, not counted as a ninth salt
        reveal(sent, PASSPHRASE, keys=keys)


def test_salt_of_reads_the_first_16_bytes_of_a_long_enough_token() -> None:
    data = bytes(range(60))
    assert salt_of(urlsafe(data), 44) == data[:16]
    assert salt_of(base64.b64encode(data).decode(), 44) == data[:16]
    assert salt_of(urlsafe(data[:43]), 44) is None
    assert salt_of("@@@@", 44) is None
    assert salt_of(12345, 44) is None


def test_aesbridge_cbc_tokens_through_a_profile_are_bounded_too(derivations: list[bytes]) -> None:
    document = json.loads(
        resources.files("sealgate.partners").joinpath("profiles/infosimples.json").read_text(encoding="utf-8")
    )
    document["protection"].update(scheme="aesbridge-cbc", max_derivations=2, max_fields=5)
    protection = parse_profile(document).protection
    secret = {"encryption_key": PASSPHRASE.decode()}
    aesbridge_kdf.DEFAULT_DECRYPTION_KEYS.clear()
    with pytest.raises(TooMuchWork):
        protection.reveal(params(3, salts=3, make=cbc_token), secret)
    with pytest.raises(TooManyFields):
        protection.reveal(params(6, salts=1, make=cbc_token), secret)
    assert derivations == []
    revealed, names = protection.reveal(params(4, salts=2, make=cbc_token), secret)
    assert revealed["f3"] == "value 3"
    assert names == ("f0", "f1", "f2", "f3")
    assert len(derivations) == 2


def test_one_token_at_a_time_is_not_limited(keys: DecryptionKeys) -> None:
    """Outside a layout's batch (the command line's ``--lines``), each token is its own request."""
    for i in range(MAX_DERIVATIONS + 2):
        assert aesbridge_gcm.decrypt(gcm_token(f"v{i}", i), PASSPHRASE, keys=keys) == f"v{i}".encode()
        assert aesbridge_cbc.decrypt(cbc_token(f"v{i}", i), PASSPHRASE, keys=keys) == f"v{i}".encode()


def test_a_batch_is_the_current_threads_only(keys: DecryptionKeys) -> None:
    inside = threading.Event()
    done = threading.Event()
    results: list[bytes] = []

    def other_thread() -> None:
        inside.wait(5)
        results.extend(aesbridge_gcm.decrypt(gcm_token("x", i), PASSPHRASE, keys=keys) for i in range(3))
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with work.opening([gcm_token("x", i) for i in range(3)], max_derivations=1):
        inside.set()
        assert done.wait(30)
        with pytest.raises(TooMuchWork):
            aesbridge_gcm.decrypt(gcm_token("x", 0), PASSPHRASE, keys=keys)
    thread.join()
    assert results == [b"x"] * 3


# --- encrypting ---------------------------------------------------------------------------------------------


def test_protecting_more_fields_than_allowed_is_refused_before_any_derivation(
    derivations: list[bytes],
) -> None:
    values = {f"f{i}": "v" for i in range(5)}
    with pytest.raises(TooManyFields):
        protect(values, list(values), PASSPHRASE, max_fields=4)
    assert derivations == []
    assert len(protect(values, list(values), PASSPHRASE, max_fields=5).receipts) == 5


# --- the options, strictly --------------------------------------------------------------------------------------


def infosimples_with(**changes: Any) -> dict[str, Any]:
    document = json.loads(
        resources.files("sealgate.partners").joinpath("profiles/infosimples.json").read_text(encoding="utf-8")
    )
    document = copy.deepcopy(document)
    document["protection"].update(changes)
    return dict(document)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"max_fields": 0}, "max_fields"),
        ({"max_fields": True}, "max_fields"),
        ({"max_fields": "32"}, "max_fields"),
        ({"max_derivations": 0}, "max_derivations"),
        ({"max_derivations": 1.5}, "max_derivations"),
        ({"max_fields": 4}, "fields"),  # five fields listed, four allowed
        ({"max_derivation": 4}, "max_derivation"),  # misspelled: unknown
    ],
)
def test_a_bad_limit_in_a_profile_is_refused_naming_it(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ProfileError, match=f"^profile infosimples: protection: .*'{named}'"):
        parse_profile(infosimples_with(**changes))


def test_limits_set_in_a_profile_apply() -> None:
    protection = parse_profile(infosimples_with(max_fields=5, max_derivations=1)).protection
    options = protection.layout_options
    assert isinstance(options, enc_params.Options)
    assert (options.max_fields, options.max_derivations) == (5, 1)
    with pytest.raises(TooMuchWork):
        protection.reveal(params(2, salts=2), {"encryption_key": PASSPHRASE.decode()})
