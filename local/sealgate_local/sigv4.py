"""SigV4 on the local API, checked as API Gateway checks an ``AWS_IAM`` route; and the signing its callers use.

A signed request carries (botocore's ``SigV4Auth``, ``curl --aws-sigv4``)::

    X-Amz-Date: 20260101T120000Z
    Authorization: AWS4-HMAC-SHA256 Credential=<access key>/20260101/<region>/execute-api/aws4_request,
                   SignedHeaders=host;x-amz-date, Signature=<64 hex>

:class:`Verifier` refuses, in this order (each a 403 the local API answers from the template's
``GatewayResponses``; the kind of refusal in ``x-amzn-ErrorType`` as API Gateway sends it):

- no ``Authorization`` header: ``MISSING_AUTHENTICATION_TOKEN`` (``missing_authentication``);
- everything else is ``INVALID_SIGNATURE`` (``invalid_signature``): an ``Authorization`` that is not
  ``AWS4-HMAC-SHA256`` with exactly ``Credential``, ``SignedHeaders`` and ``Signature``, or no ``X-Amz-Date``
  (``IncompleteSignatureException``); a credential scope for another date, region or service than
  ``<X-Amz-Date's day>/<region>/execute-api/aws4_request`` (``InvalidSignatureException``); an access key the
  local stack did not issue, or a session token, which its credentials never have
  (``UnrecognizedClientException``); an ``X-Amz-Date`` more than 5 minutes from now either way, ``host`` or
  ``x-amz-date`` left out of ``SignedHeaders``, a signed header missing, an ``X-Amz-Content-SHA256`` that is
  not the body's SHA-256, or a signature that differs (``InvalidSignatureException``).

The expected signature is botocore's own: its ``SigV4Auth`` builds the canonical request (normalised, encoded
path; query sorted and encoded; trimmed header values; SHA-256 of the body), the string to sign and the derived
key, over exactly the headers the caller listed; the comparison is constant-time. Presigned URLs (the query
string form, which API Gateway also takes) are not checked locally: without an ``Authorization`` header such a
request is answered as unsigned.

:class:`LocalCredentials` are throwaway: made afresh each time the local stack starts, valid only against it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

SERVICE: Final = "execute-api"
ALGORITHM: Final = "AWS4-HMAC-SHA256"
#: How far X-Amz-Date may be from the server's clock, either way (API Gateway's limit).
MAX_SKEW: Final = timedelta(minutes=5)
LOCAL_USER: Final = "local-developer"

MISSING: Final = "MISSING_AUTHENTICATION_TOKEN"
INVALID: Final = "INVALID_SIGNATURE"

_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")


@dataclass(frozen=True)
class LocalCredentials:
    """A throwaway IAM user's access key for one run of the local stack (``AKIALOCAL...``): never a real AWS
    credential, never valid anywhere else. ``user_id`` is what API Gateway puts in ``identity.caller``."""

    access_key: str
    secret_key: str = field(repr=False)
    user_id: str

    @classmethod
    def generate(cls) -> LocalCredentials:
        """Fresh random credentials (20-character key id, 40-character secret, like AWS's)."""

        def token(size: int) -> str:
            return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(size))

        return cls(
            access_key="AKIALOCAL" + token(11),
            secret_key=secrets.token_urlsafe(30),
            user_id="AIDALOCAL" + token(12),
        )

    def user_arn(self, account_id: str) -> str:
        return f"arn:aws:iam::{account_id}:user/{LOCAL_USER}"


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: the gateway response ``kind`` (:data:`MISSING` or :data:`INVALID`), API
    Gateway's ``x-amzn-ErrorType`` and a fixed ``reason`` for the local log (never a value of the request)."""

    kind: str
    error_type: str
    reason: str


def _incomplete(reason: str) -> Refusal:
    return Refusal(INVALID, "IncompleteSignatureException", reason)


def _invalid(reason: str) -> Refusal:
    return Refusal(INVALID, "InvalidSignatureException", reason)


def _unrecognized(reason: str) -> Refusal:
    return Refusal(INVALID, "UnrecognizedClientException", reason)


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


def _require(condition: bool, refusal: Refusal) -> None:
    if not condition:
        raise _Refused(refusal)


@dataclass(frozen=True)
class _Authorization:
    access_key: str
    scope: tuple[str, ...]  # date, region, service, terminator
    signed_headers: tuple[str, ...]
    signature: str


def _parse_authorization(value: str) -> _Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    _require(algorithm == ALGORITHM, _incomplete(f"Authorization is not {ALGORITHM}"))
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, equals, text = item.strip().partition("=")
        _require(
            bool(equals) and name not in parts, _incomplete("Authorization has a malformed or repeated part")
        )
        parts[name] = text
    _require(
        set(parts) == {"Credential", "SignedHeaders", "Signature"},
        _incomplete("Authorization needs exactly Credential, SignedHeaders and Signature"),
    )
    credential = parts["Credential"].split("/")
    _require(
        len(credential) == 5, _incomplete("Credential is not <key>/<date>/<region>/<service>/aws4_request")
    )
    signed = tuple(parts["SignedHeaders"].split(";"))
    _require(
        all(name and name == name.lower() for name in signed),
        _incomplete("SignedHeaders is not a list of lower-case header names"),
    )
    _require(
        _SIGNATURE.fullmatch(parts["Signature"]) is not None,
        _incomplete("Signature is not 64 lower-case hex digits"),
    )
    return _Authorization(credential[0], tuple(credential[1:]), signed, parts["Signature"])


class _ListedHeaders(SigV4Auth):
    """botocore's SigV4 over exactly the headers the caller listed in ``SignedHeaders`` (its own choice leaves
    some out, such as ``user-agent``, which a caller may have signed)."""

    def __init__(self, credentials: Credentials, region: str, listed: Sequence[str]) -> None:
        super().__init__(credentials, SERVICE, region)
        self._listed = frozenset(listed)

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._listed:
                chosen[name.lower()] = value
        return chosen


@dataclass(frozen=True)
class _Request:
    method: str
    target: str  # path and query, as received
    headers: Sequence[tuple[str, str]]
    body: bytes

    def values(self, name: str) -> list[str]:
        return [value for header, value in self.headers if header.lower() == name]


class Verifier:
    """Checks a request's SigV4 against the credentials the local stack issued, for one region."""

    def __init__(
        self,
        credentials: Sequence[LocalCredentials],
        region: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._by_key = {c.access_key: c for c in credentials}
        self.region = region
        self._clock = clock

    def verify(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> LocalCredentials | Refusal:
        """The credentials that signed ``method target`` (path and query as received) with ``headers`` and
        ``body``, or why the request is refused (the checks of the module docstring, in its order)."""
        request = _Request(method, target, headers, body)
        authorizations = request.values("authorization")
        if not authorizations:
            return Refusal(MISSING, "MissingAuthenticationTokenException", "the request is not signed")
        try:
            _require(len(authorizations) == 1, _incomplete("more than one Authorization header"))
            parsed = _parse_authorization(authorizations[0])
            dates = request.values("x-amz-date")
            _require(
                len(dates) == 1 and _AMZ_DATE.fullmatch(dates[0]) is not None,
                _incomplete("no single X-Amz-Date of the form YYYYMMDDTHHMMSSZ"),
            )
            credentials = self._scope_and_key(request, parsed, dates[0])
            self._fresh(dates[0])
            _covered(request, parsed)
            expected = _expected_signature(request, credentials, self.region, parsed, dates[0])
        except _Refused as refused:
            return refused.refusal
        if not hmac.compare_digest(expected.encode("ascii"), parsed.signature.encode("ascii")):
            return _invalid("the signature differs from the one computed for this request")
        return credentials

    def _scope_and_key(self, request: _Request, parsed: _Authorization, amz_date: str) -> LocalCredentials:
        day, region, service, terminator = parsed.scope
        _require(
            day == amz_date[:8] and terminator == "aws4_request",
            _invalid("the credential scope's date is not X-Amz-Date's"),
        )
        _require(region == self.region, _invalid(f"the credential scope's region is not {self.region}"))
        _require(service == SERVICE, _invalid(f"the credential scope's service is not {SERVICE}"))
        credentials = self._by_key.get(parsed.access_key)
        if credentials is None:
            raise _Refused(_unrecognized("the access key is not one the local stack issued"))
        _require(
            not request.values("x-amz-security-token"),
            _unrecognized("a session token, which the local stack's credentials never have"),
        )
        return credentials

    def _fresh(self, amz_date: str) -> None:
        try:
            signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
        except ValueError:
            raise _Refused(_incomplete("X-Amz-Date is not a date")) from None
        now = self._clock()
        _require(
            signed_at >= now - MAX_SKEW, _invalid("signature expired: X-Amz-Date is more than 5 minutes ago")
        )
        _require(
            signed_at <= now + MAX_SKEW,
            _invalid("signature not yet current: X-Amz-Date is more than 5 minutes ahead"),
        )


def _covered(request: _Request, parsed: _Authorization) -> None:
    """What the signature must cover: host, the date, every header it names, and the body itself."""
    _require(
        "host" in parsed.signed_headers and "x-amz-date" in parsed.signed_headers,
        _invalid("SignedHeaders leaves out host or x-amz-date"),
    )
    _require(
        all(request.values(name) for name in parsed.signed_headers),
        _invalid("a header named in SignedHeaders is not in the request"),
    )
    declared = request.values("x-amz-content-sha256")
    # botocore's canonical request takes a declared payload hash as is: it must be the body's, or the body
    # could be swapped under a valid signature.
    _require(
        not declared or declared == [hashlib.sha256(request.body).hexdigest()],
        _invalid("X-Amz-Content-SHA256 is not the SHA-256 of the body"),
    )


def _expected_signature(
    request: _Request, credentials: LocalCredentials, region: str, parsed: _Authorization, amz_date: str
) -> str:
    """The signature botocore's SigV4 gives this request with ``credentials`` at ``amz_date``."""
    url = urlsplit(request.target)
    host = request.values("host")[0]
    rebuilt = AWSRequest(
        method=request.method,
        url=f"http://{host}{url.path}",
        data=request.body,
        # Decoded here and encoded again by botocore: the canonical query string of the SigV4 specification.
        # Pairs, not a mapping, so that a repeated name keeps every value (botocore's canonicaliser takes both).
        params=parse_qsl(url.query, keep_blank_values=True),  # type: ignore[arg-type]
    )
    for name, value in request.headers:
        rebuilt.headers[name] = value  # repeated headers are kept: the canonical form joins them with ","
    rebuilt.context["timestamp"] = amz_date
    signer = _ListedHeaders(
        Credentials(credentials.access_key, credentials.secret_key), region, parsed.signed_headers
    )
    canonical = signer.canonical_request(rebuilt)
    return signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt)


def sign(
    method: str,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    credentials: LocalCredentials,
    region: str,
) -> dict[str, str]:
    """``headers`` plus ``X-Amz-Date`` and ``Authorization`` for the request, signed by botocore's
    ``SigV4Auth`` for ``execute-api`` in ``region`` (what the demo, ``make run``'s examples and the load test
    send)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(Credentials(credentials.access_key, credentials.secret_key), SERVICE, region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}
