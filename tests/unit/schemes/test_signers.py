"""Signers separate what they derive from the stored credentials; dLocal's verifier checks every header it
defines and identifies a notification by dLocal's own id, not by its date."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from sealgate import schemes
from sealgate.errors import MissingSignature, SignatureMismatch, StaleRequest

# Throwaway test values, never issued by any partner.
SECRET = {
    "x_login": "throwaway-login",
    "x_trans_key": "THROWAWAY-trans-key",
    "secret_key": "THROWAWAY-secret",
    "api_key": "THROWAWAY-api-key",
    "asset_id": "asset-1",
    "merchant_id": "THROWAWAY-merchant",
    "access_token": "THROWAWAY-token",
}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def oracle_signature(login: str, date: str, body: bytes) -> str:
    message = login.encode() + date.encode() + body
    return hmac.new(SECRET["secret_key"].encode(), message, hashlib.sha256).hexdigest()


def test_dlocal_v2_derives_date_login_signature_and_keeps_the_trans_key_apart() -> None:
    signer = schemes.lookup("signer", "dlocal-v2")
    options = signer.options({"login": "x_login", "trans_key": "x_trans_key", "secret": "secret_key"})
    signed = signer.sign(options, SECRET, b'{"amount":1}', protection=None, now=NOW)
    assert signed.credentials == {"X-Trans-Key": SECRET["x_trans_key"]}
    assert set(signed.derived) == {"X-Date", "X-Login", "X-Version", "Authorization"}
    assert signed.derived["Authorization"] == "V2-HMAC-SHA256, Signature: " + oracle_signature(
        "throwaway-login", signed.derived["X-Date"], b'{"amount":1}'
    )
    assert SECRET["x_trans_key"] not in json.dumps(signed.derived)


def test_netcore_bearer_key_is_a_credential_not_a_signature() -> None:
    signer = schemes.lookup("signer", "netcore-bearer")
    signed = signer.sign(
        signer.options({"token": "api_key", "asset": "asset_id"}), SECRET, b"", protection="11258"
    )
    assert signed.derived == {"x-eCode": "11258", "x-asset": "asset-1"}
    assert signed.credentials == {"Authorization": "Bearer THROWAWAY-api-key"}


def test_static_headers_are_all_credentials() -> None:
    signer = schemes.lookup("signer", "static-headers")
    options = signer.options({"headers": {"MerchantId": "merchant_id", "AccessToken": "access_token"}})
    signed = signer.sign(options, SECRET, b"", protection=None)
    assert signed.derived == {}
    assert signed.credentials == {"MerchantId": "THROWAWAY-merchant", "AccessToken": "THROWAWAY-token"}


VERIFIER = schemes.lookup("verifier", "dlocal-v2")
OPTIONS = VERIFIER.options({"secret": "secret_key", "login": "x_login"})


def notification(body: bytes, *, when: datetime = NOW, login: str = "throwaway-login") -> dict[str, str]:
    date = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return {
        "x-date": date,
        "x-login": login,
        "authorization": "V2-HMAC-SHA256, Signature: " + oracle_signature(login, date, body),
    }


def test_the_same_notification_re_signed_later_is_the_same_notification() -> None:
    body = b'{"id":"D-4-1","status":"PAID","amount":10}'
    first = VERIFIER.verify(OPTIONS, SECRET, notification(body), body, now=NOW)
    again = VERIFIER.verify(
        OPTIONS,
        SECRET,
        notification(body, when=NOW + timedelta(minutes=2)),
        body,
        now=NOW + timedelta(minutes=2),
    )
    assert first.dedupe_key == again.dedupe_key
    assert first.dedupe_key.startswith("id:")
    paid_later = b'{"id":"D-4-1","status":"REJECTED","amount":10}'
    other = VERIFIER.verify(OPTIONS, SECRET, notification(paid_later), paid_later, now=NOW)
    assert other.dedupe_key != first.dedupe_key  # a new status of the same payment is a new notification


def test_a_body_without_an_id_is_identified_by_its_bytes() -> None:
    body = b"not json"
    found = VERIFIER.verify(OPTIONS, SECRET, notification(body), body, now=NOW)
    assert found.dedupe_key == "body:" + hashlib.sha256(body).hexdigest()


def test_x_login_must_be_ours_even_when_the_signature_matches_it() -> None:
    body = b'{"id":"D-4-1","status":"PAID"}'
    with pytest.raises(SignatureMismatch, match="X-Login"):
        VERIFIER.verify(OPTIONS, SECRET, notification(body, login="another-merchant"), body, now=NOW)


@pytest.mark.parametrize("missing", ["x-date", "x-login", "authorization"])
def test_every_header_is_required(missing: str) -> None:
    body = b"{}"
    headers = notification(body)
    del headers[missing]
    with pytest.raises(MissingSignature):
        VERIFIER.verify(OPTIONS, SECRET, headers, body, now=NOW)


def test_stale_and_tampered_notifications_are_refused() -> None:
    body = b'{"id":"D-4-1"}'
    with pytest.raises(StaleRequest):
        VERIFIER.verify(OPTIONS, SECRET, notification(body, when=NOW - timedelta(minutes=6)), body, now=NOW)
    with pytest.raises(SignatureMismatch):
        VERIFIER.verify(OPTIONS, SECRET, notification(body), b'{"id":"D-4-2"}', now=NOW)
    headers = notification(body) | {"authorization": "V2-HMAC-SHA256, Signature: zz"}
    with pytest.raises(SignatureMismatch):
        VERIFIER.verify(OPTIONS, SECRET, headers, body, now=NOW)
