"""dLocal request signature ``V2-HMAC-SHA256``, the ``X-Date`` header and webhook freshness.

Layout (one request; ``+`` is byte concatenation, no separators)::

    message       = UTF-8(X-Login) + UTF-8(X-Date) + body      # body: the exact bytes sent, b"" for a GET
    signature     = lowercase hex(HMAC-SHA256(key=secret, msg=message))         # 64 characters
    Authorization = "V2-HMAC-SHA256, Signature: " + signature
    X-Date        = "YYYY-MM-DDTHH:MM:SS.mmmZ"                                   # UTC, milliseconds

dLocal's webhooks carry the same headers: verify them over the raw body as received and the sender's own
``X-Date`` string (never a re-serialised body or a re-formatted date), then check :func:`is_fresh`.

The format has no separator between the fields, so only a change of one field at a time is guaranteed to
change the message; the ``X-Date`` shape and a fixed ``X-Login`` per merchant make that enough in practice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from sealgate import strict_json
from sealgate.codec import as_bytes
from sealgate.errors import BadInput, BadKey, BadToken, MissingSignature, SignatureMismatch, StaleRequest
from sealgate.schemes import base

VERSION = "V2-HMAC-SHA256"

_X_DATE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?:(?P<zulu>Z)|(?P<sign>[+-])(?P<hours>[0-9]{2}):?(?P<minutes>[0-9]{2}))",
    re.ASCII,
)
_AUTHORIZATION = re.compile(r"(?:(?P<version>[^,]*?)\s*,\s*Signature\s*:\s*)?(?P<signature>\S*)", re.ASCII)
_HEX64 = re.compile(r"[0-9A-Fa-f]{64}", re.ASCII)


def format_x_date(when: datetime | None = None) -> str:
    """``X-Date`` for ``when`` (now if None): ISO 8601 in UTC, milliseconds (truncated), ``Z``.

    Raises
    ------
    ValueError
        ``when`` is naive: its zone would be a guess.
    """
    if when is None:
        when = datetime.now(UTC)
    elif when.utcoffset() is None:
        raise ValueError("X-Date needs an aware datetime")
    utc = when.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def parse_x_date(text: str) -> datetime:
    """Aware UTC datetime of an ``X-Date``: ``Z`` or ``±HH:MM`` offset, fraction optional (up to 9 digits).

    Raises
    ------
    BadInput
        Not that shape, or not a real date and time.
    """
    match = _X_DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise BadInput("X-Date is not an ISO 8601 date-time with a zone")
    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    try:
        if match["zulu"]:
            zone = UTC
        else:
            offset = timedelta(hours=int(match["hours"]), minutes=int(match["minutes"]))
            zone = timezone(-offset if match["sign"] == "-" else offset)
        naive = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}")
        return naive.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadInput("X-Date is not a valid date-time") from None


def signature(secret: str | bytes, login: str, date: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``login + date + body`` under ``secret``.

    ``date`` is the ``X-Date`` string exactly as sent; ``body`` the exact bytes sent (``b""`` if none).

    Raises
    ------
    BadKey
        ``secret`` is empty.
    BadInput
        ``login`` or ``date`` is empty or not valid Unicode text, or ``body`` is not bytes.
    """
    key = as_bytes(secret)
    if not key:
        raise BadKey("dLocal secret key is empty")
    if not login:
        raise BadInput("X-Login is empty")
    if not date:
        raise BadInput("X-Date is empty")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise BadInput("request body must be the exact bytes sent, not text")
    try:
        message = login.encode("utf-8") + date.encode("utf-8") + bytes(body)
    except UnicodeEncodeError:  # a lone surrogate (e.g. from a header): there are no bytes to sign
        raise BadInput("X-Login and X-Date must be valid Unicode text") from None
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def authorization(secret: str | bytes, login: str, date: str, body: bytes) -> str:
    """``Authorization`` header value: ``"V2-HMAC-SHA256, Signature: <hex>"``."""
    return f"{VERSION}, Signature: {signature(secret, login, date, body)}"


def verify(secret: str | bytes, login: str, date: str, body: bytes, presented: str) -> None:
    """Check ``presented`` (an ``Authorization`` value or a bare hex signature) in constant time.

    Spaces around the comma and colon are tolerated; hex digits in either case.

    Raises
    ------
    BadToken
        Another version prefix, or the signature is not 64 hex digits.
    SignatureMismatch
        Well formed but not the signature of these fields under ``secret``.
    """
    match = _AUTHORIZATION.fullmatch(presented.strip()) if isinstance(presented, str) else None
    if match is None:
        raise BadToken("Authorization is not 'V2-HMAC-SHA256, Signature: <hex>'")
    if match["version"] is not None and match["version"] != VERSION:
        raise BadToken("Authorization version is not V2-HMAC-SHA256")
    if _HEX64.fullmatch(match["signature"]) is None:
        raise BadToken("signature is not 64 hex digits")
    expected = signature(secret, login, date, body).encode("ascii")
    if not hmac.compare_digest(expected, match["signature"].lower().encode("ascii")):
        raise SignatureMismatch


def is_fresh(date: str, *, now: datetime | None = None, tolerance: timedelta = timedelta(minutes=5)) -> bool:
    """Whether the ``X-Date`` ``date`` lies within ``tolerance`` of ``now``, before or after it.

    Raises
    ------
    BadInput
        ``date`` is malformed (see :func:`parse_x_date`).
    ValueError
        ``now`` is naive or ``tolerance`` negative.
    """
    if tolerance < timedelta(0):
        raise ValueError("tolerance must not be negative")
    if now is None:
        now = datetime.now(UTC)
    elif now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return abs(now - parse_x_date(date)) <= tolerance


# --- the scheme, as a request signer and as a webhook verifier ----------------------------------------------


@dataclass(frozen=True)
class SignerOptions(base.Options):
    """Which secret fields hold the login, the trans key and the signing secret; the X-Version to send."""

    login: str = base.option(help="secret field holding X-Login")
    trans_key: str = base.option(help="secret field holding X-Trans-Key (a stored credential)")
    secret: str = base.option(help="secret field holding the HMAC secret key")
    version: str = base.option("2.1", help="X-Version header")


class _Signer(base.Signer[SignerOptions]):
    name = "dlocal-v2"
    options_type = SignerOptions
    secret_options = ("login", "trans_key", "secret")
    signature_fields = (
        ("login", "X-Login"),
        ("date", "X-Date exactly as sent, e.g. 2018-07-12T13:46:28.629Z"),
    )

    def signature(self, secret: bytes, fields: Mapping[str, str], body: bytes) -> str:
        return authorization(secret, fields["login"], fields["date"], body)

    def check(self, secret: bytes, fields: Mapping[str, str], body: bytes, presented: str) -> None:
        verify(secret, fields["login"], fields["date"], body, presented)

    def keygen(self) -> dict[str, str]:
        return {"secret_key": secrets.token_urlsafe(32)}

    def sign(
        self,
        options: SignerOptions,
        secret: Mapping[str, str],
        body: bytes,
        *,
        protection: str | None,
        now: datetime | None = None,
    ) -> base.SignedHeaders:
        login = secret[options.login]
        date = format_x_date(now)
        return base.SignedHeaders(
            derived={
                "X-Date": date,
                "X-Login": login,
                "X-Version": options.version,
                "Authorization": authorization(secret[options.secret], login, date, body),
            },
            credentials={"X-Trans-Key": secret[options.trans_key]},
        )


@dataclass(frozen=True)
class VerifierOptions(base.Options):
    """Which secret fields hold the signing secret and the login; how old a notification may be; which body
    fields identify one notification (dLocal re-sends a notification with a new X-Date and signature)."""

    secret: str = base.option(help="secret field holding the HMAC secret key")
    login: str = base.option(help="secret field holding the X-Login the notification must carry")
    max_skew_seconds: int = base.option(300, help="largest accepted distance of X-Date from now")
    dedupe_fields: tuple[str, ...] = base.option(
        ["id", "status"], help="body fields that identify a notification (its id and the status it reports)"
    )


class _Verifier(base.Verifier[VerifierOptions]):
    name = "dlocal-v2"
    options_type = VerifierOptions
    secret_options = ("secret", "login")

    def verify(
        self,
        options: VerifierOptions,
        secret: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> base.Notification:
        date, login, presented = headers.get("x-date"), headers.get("x-login"), headers.get("authorization")
        if not date or not login or not presented:
            raise MissingSignature("X-Date, X-Login and Authorization are required")
        expected_login = secret[options.login]
        # The signature covers X-Login, but it must also be ours: a notification signed for another merchant
        # is not one of ours, whatever its signature.
        if not hmac.compare_digest(login.encode("utf-8", "surrogatepass"), expected_login.encode("utf-8")):
            raise SignatureMismatch("X-Login is not this merchant's")
        try:
            verify(secret[options.secret], login, date, body, presented)
        except BadToken:
            raise SignatureMismatch("Authorization is malformed") from None
        except BadInput:  # X-Date that is not valid text: there are no bytes it could have signed
            raise SignatureMismatch("X-Date is not valid text") from None
        try:
            fresh = is_fresh(date, now=now, tolerance=timedelta(seconds=options.max_skew_seconds))
        except BadInput:
            raise StaleRequest("X-Date is malformed") from None
        if not fresh:
            raise StaleRequest()
        return base.Notification(
            body=body, dedupe_key=_dedupe_key(body, options.dedupe_fields), signed_at=date
        )


def _dedupe_key(body: bytes, fields: tuple[str, ...]) -> str:
    """The notification's own identity: its ``fields`` when the body carries them all, else the body itself.

    Never X-Date or the signature: a re-sent notification carries new ones and is still the same.
    """
    try:
        document = strict_json.loads(body)  # bounded nesting: a signed but absurd body is no notification id
    except strict_json.StrictJsonError:
        document = None
    if isinstance(document, dict) and all(isinstance(document.get(f), str | int) for f in fields):
        identity = json.dumps([document[f] for f in fields], separators=(",", ":"))
        return "id:" + hashlib.sha256(identity.encode("utf-8")).hexdigest()
    return "body:" + hashlib.sha256(body).hexdigest()


#: the registry's entries (:mod:`sealgate.schemes`)
SIGNER = _Signer()
VERIFIER = _Verifier()
