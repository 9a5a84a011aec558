"""SigV4 on the local API, checked as API Gateway checks an AWS_IAM route.

Requests are signed by botocore's own ``SigV4Auth`` (as a caller signs them), at a time the test chooses, and
checked by :class:`sealgate_local.sigv4.Verifier` with a clock the test sets; a request is then changed after
signing, the way an attacker or a buggy client would, and must be refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sealgate_local.sigv4 import INVALID, MISSING, LocalCredentials, Refusal, Verifier

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
REGION = "us-east-1"
HOST = "127.0.0.1:4010"
TARGET = "/dev/v1/encrypt/netcore?trace=on&b=2&a=1"
BODY = b'{"payload":{"event":"signup"}}'


@pytest.fixture
def caller() -> LocalCredentials:
    return LocalCredentials.generate()


@pytest.fixture
def verifier(caller: LocalCredentials) -> Verifier:
    return Verifier([caller], REGION, clock=lambda: NOW)


@pytest.fixture
def signing_clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """botocore signs at the time this list holds (its first item), not the machine's."""
    at = [NOW]
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: at[0].replace(tzinfo=None))
    return at


def signed(
    caller: LocalCredentials,
    *,
    method: str = "POST",
    target: str = TARGET,
    body: bytes = BODY,
    headers: Mapping[str, str] | None = None,
    service: str = "execute-api",
    region: str = REGION,
) -> list[tuple[str, str]]:
    """The headers botocore's SigV4Auth adds (plus Host and ``headers``), as the server receives them."""
    request = AWSRequest(
        method=method,
        url=f"http://{HOST}{target}",
        data=body,
        headers={"Host": HOST, "Content-Type": "application/json", **(headers or {})},
    )
    SigV4Auth(Credentials(caller.access_key, caller.secret_key), service, region).add_auth(request)
    return [(name, str(value)) for name, value in request.headers.items()]


def refusal(result: LocalCredentials | Refusal) -> tuple[str, str]:
    assert isinstance(result, Refusal), "the request was accepted"
    return result.kind, result.error_type


def test_a_request_signed_by_botocore_is_accepted_as_its_access_key(
    verifier: Verifier, caller: LocalCredentials, signing_clock: list[datetime]
) -> None:
    assert verifier.verify("POST", TARGET, signed(caller), BODY) == caller


def test_a_get_without_a_body_and_an_extra_unsigned_header_is_accepted(
    verifier: Verifier, caller: LocalCredentials, signing_clock: list[datetime]
) -> None:
    headers = signed(caller, method="GET", target="/dev/v1/forward/abc", body=b"")
    # API Gateway ignores headers the signature does not list (proxies add some).
    headers.append(("User-Agent", "curl/8"))

    assert verifier.verify("GET", "/dev/v1/forward/abc", headers, b"") == caller


def test_an_unsigned_request_is_missing_authentication(verifier: Verifier) -> None:
    assert refusal(verifier.verify("POST", TARGET, [("Host", HOST)], BODY)) == (
        MISSING,
        "MissingAuthenticationTokenException",
    )


@pytest.mark.parametrize(
    ("method", "target", "body", "change"),
    [
        ("POST", TARGET, BODY.replace(b"signup", b"signin"), None),
        ("POST", TARGET, BODY + b" ", None),
        ("POST", "/dev/v1/encrypt/paykun?trace=on&b=2&a=1", BODY, None),
        ("POST", "/dev/v1/decrypt/netcore?trace=on&b=2&a=1", BODY, None),
        ("POST", "/dev/v1/encrypt/netcore?trace=off&b=2&a=1", BODY, None),
        ("POST", "/dev/v1/encrypt/netcore?b=2&a=1", BODY, None),
        ("PUT", TARGET, BODY, None),
        ("POST", TARGET, BODY, ("Content-Type", "text/plain")),
        ("POST", TARGET, BODY, ("Host", "127.0.0.1:4011")),
    ],
    ids=[
        "body-changed",
        "body-extended",
        "path-partner",
        "path-action",
        "query-value",
        "query-dropped",
        "method",
        "signed-header",
        "host",
    ],
)
def test_a_request_changed_after_signing_is_an_invalid_signature(
    verifier: Verifier,
    caller: LocalCredentials,
    signing_clock: list[datetime],
    method: str,
    target: str,
    body: bytes,
    change: tuple[str, str] | None,
) -> None:
    headers = signed(caller)
    if change is not None:
        headers = [(n, change[1] if n.lower() == change[0].lower() else v) for n, v in headers]

    assert refusal(verifier.verify(method, target, headers, body)) == (INVALID, "InvalidSignatureException")


def test_a_declared_payload_hash_must_be_the_bodys(
    verifier: Verifier, caller: LocalCredentials, signing_clock: list[datetime]
) -> None:
    declared = {"X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()}
    headers = signed(caller, headers=declared)
    assert verifier.verify("POST", TARGET, headers, BODY) == caller

    # botocore's canonical request trusts the declared hash: without this check the swap would pass.
    swapped = b'{"payload":{"event":"other"}}'
    assert refusal(verifier.verify("POST", TARGET, headers, swapped)) == (
        INVALID,
        "InvalidSignatureException",
    )


@pytest.mark.parametrize(
    ("service", "region"),
    [("lambda", REGION), ("execute-api", "eu-west-1"), ("s3", "sa-east-1")],
)
def test_a_signature_for_another_service_or_region_is_refused(
    verifier: Verifier, caller: LocalCredentials, signing_clock: list[datetime], service: str, region: str
) -> None:
    headers = signed(caller, service=service, region=region)

    assert refusal(verifier.verify("POST", TARGET, headers, BODY)) == (INVALID, "InvalidSignatureException")


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(minutes=-4, seconds=-59), True),
        (timedelta(minutes=4, seconds=59), True),
        (timedelta(minutes=-5, seconds=-1), False),
        (timedelta(minutes=5, seconds=1), False),
        (timedelta(days=-1), False),
    ],
)
def test_x_amz_date_may_be_5_minutes_off_either_way(
    verifier: Verifier,
    caller: LocalCredentials,
    signing_clock: list[datetime],
    offset: timedelta,
    accepted: bool,
) -> None:
    signing_clock[0] = NOW + offset
    result = verifier.verify("POST", TARGET, signed(caller), BODY)

    if accepted:
        assert result == caller
    else:
        assert refusal(result) == (INVALID, "InvalidSignatureException")
        assert isinstance(result, Refusal)
        assert "5 minutes" in result.reason


def test_credentials_the_stack_did_not_issue_are_unrecognized(
    verifier: Verifier, signing_clock: list[datetime]
) -> None:
    stranger = LocalCredentials.generate()

    assert refusal(verifier.verify("POST", TARGET, signed(stranger), BODY)) == (
        INVALID,
        "UnrecognizedClientException",
    )


def test_the_right_key_id_with_another_secret_is_an_invalid_signature(
    verifier: Verifier, caller: LocalCredentials, signing_clock: list[datetime]
) -> None:
    guessed = LocalCredentials(caller.access_key, "not-the-secret-" + "x" * 25, caller.user_id)

    assert refusal(verifier.verify("POST", TARGET, signed(guessed), BODY)) == (
        INVALID,
        "InvalidSignatureException",
    )


def test_a_session_token_is_refused(
    verifier: Verifier, caller: LocalCredentials, signing_clock: list[datetime]
) -> None:
    headers = signed(caller, headers={"X-Amz-Security-Token": "FwoGZXIvYXdzEBY"})

    assert refusal(verifier.verify("POST", TARGET, headers, BODY)) == (INVALID, "UnrecognizedClientException")


def authorization(headers: list[tuple[str, str]]) -> str:
    return next(v for n, v in headers if n == "Authorization")


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda a: "Bearer eyJhbGciOiJub25lIn0.e30.",
        lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
        lambda a: a.replace("SignedHeaders=", "Headers="),
        lambda a: a + ", Signature=" + "0" * 64,
        lambda a: a[:-1],
        lambda a: a[:-64] + a[-64:].upper(),
        lambda a: a.replace("/aws4_request", ""),
    ],
    ids=["bearer", "algorithm", "part-name", "repeated-part", "short-signature", "upper-hex", "short-scope"],
)
def test_a_malformed_authorization_is_an_incomplete_signature(
    verifier: Verifier, caller: LocalCredentials, signing_clock: list[datetime], rewrite: object
) -> None:
    headers = signed(caller)
    assert callable(rewrite)
    changed = [(n, rewrite(v) if n == "Authorization" else v) for n, v in headers]

    assert refusal(verifier.verify("POST", TARGET, changed, BODY)) == (
        INVALID,
        "IncompleteSignatureException",
    )


def test_the_signature_must_cover_host_and_x_amz_date(
    verifier: Verifier, caller: LocalCredentials, signing_clock: list[datetime]
) -> None:
    # Signed over content-type alone (host and the date left out), with a valid HMAC over that choice.
    request = AWSRequest(
        method="POST", url=f"http://{HOST}{TARGET}", data=BODY, headers={"Content-Type": "a/b"}
    )
    signer = SigV4Auth(Credentials(caller.access_key, caller.secret_key), "execute-api", REGION)
    signer.headers_to_sign = lambda r: botocore.awsrequest.HTTPHeaders.from_dict(  # type: ignore[method-assign]
        {"content-type": "a/b"}
    )
    signer.add_auth(request)
    headers = [("Host", HOST), *((n, str(v)) for n, v in request.headers.items())]
    assert "SignedHeaders=content-type," in authorization(headers)

    assert refusal(verifier.verify("POST", TARGET, headers, BODY)) == (INVALID, "InvalidSignatureException")


def test_two_authorization_headers_or_no_x_amz_date_are_refused(
    verifier: Verifier, caller: LocalCredentials, signing_clock: list[datetime]
) -> None:
    headers = signed(caller)
    doubled = [*headers, ("Authorization", authorization(headers))]
    undated = [(n, v) for n, v in headers if n != "X-Amz-Date"]

    assert refusal(verifier.verify("POST", TARGET, doubled, BODY))[0] == INVALID
    assert refusal(verifier.verify("POST", TARGET, undated, BODY))[0] == INVALID


def test_generated_credentials_are_fresh_and_shaped_like_aws_keys() -> None:
    first, second = LocalCredentials.generate(), LocalCredentials.generate()

    assert first.access_key != second.access_key
    assert first.secret_key != second.secret_key
    assert len(first.access_key) == 20
    assert first.access_key.startswith("AKIALOCAL")
    assert len(first.secret_key) == 40
    assert first.secret_key not in repr(first)
