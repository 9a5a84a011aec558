"""Behaviour of ``sealgate.schemes.dlocal_v2``: X-Date, the V2-HMAC-SHA256 header, verification, freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealgate.errors import BadInput, BadKey, BadToken, SignatureMismatch
from sealgate.schemes import dlocal_v2 as sig

SECRET = "throwaway-unit-test-secret"
LOGIN = "sak223k2wdksdl2"
DATE = "2018-07-12T13:46:28.629Z"
BODY = b'{"amount":1}'

logins = st.text(min_size=1, max_size=40)
dates = st.text(min_size=1, max_size=40)
bodies = st.binary(max_size=512)
secrets_ = st.one_of(st.text(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))


# --- X-Date ----------------------------------------------------------------------------------------------


def test_format_x_date_is_utc_with_milliseconds_and_z() -> None:
    when = datetime(2018, 7, 12, 13, 46, 28, 629_999, tzinfo=UTC)
    assert sig.format_x_date(when) == "2018-07-12T13:46:28.629Z"


def test_format_x_date_converts_other_zones_to_utc() -> None:
    when = datetime(2018, 7, 12, 10, 46, 28, 5_000, tzinfo=timezone(timedelta(hours=-3)))
    assert sig.format_x_date(when) == "2018-07-12T13:46:28.005Z"


def test_format_x_date_pads_whole_seconds() -> None:
    assert sig.format_x_date(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05.000Z"


def test_format_x_date_defaults_to_now() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    stamp = sig.parse_x_date(sig.format_x_date())
    assert before <= stamp <= datetime.now(UTC)


def test_format_x_date_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        sig.format_x_date(datetime(2018, 7, 12, 13, 46, 28))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-07-12T13:46:28.629Z", datetime(2018, 7, 12, 13, 46, 28, 629_000, tzinfo=UTC)),
        ("2018-07-12T13:46:28Z", datetime(2018, 7, 12, 13, 46, 28, tzinfo=UTC)),
        ("2018-07-12T10:46:28.629-03:00", datetime(2018, 7, 12, 13, 46, 28, 629_000, tzinfo=UTC)),
        ("2018-07-12T19:16:28+05:30", datetime(2018, 7, 12, 13, 46, 28, tzinfo=UTC)),
        ("2018-07-12T13:46:28.629+0000", datetime(2018, 7, 12, 13, 46, 28, 629_000, tzinfo=UTC)),
        ("2018-07-12T13:46:28.123456789Z", datetime(2018, 7, 12, 13, 46, 28, 123_456, tzinfo=UTC)),
        ("2018-07-12T13:46:28.6Z", datetime(2018, 7, 12, 13, 46, 28, 600_000, tzinfo=UTC)),
        (" 2018-07-12T13:46:28.629Z\r\n", datetime(2018, 7, 12, 13, 46, 28, 629_000, tzinfo=UTC)),
    ],
)
def test_parse_x_date_accepts_zulu_and_offsets(text: str, expected: datetime) -> None:
    parsed = sig.parse_x_date(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2018-07-12",
        "2018-07-12T13:46:28.629",  # no zone: ambiguous
        "2018-07-12 13:46:28.629Z",
        "2018-07-12t13:46:28.629z",
        "2018-13-12T13:46:28.629Z",
        "2018-02-30T13:46:28Z",
        "2018-07-12T24:00:00Z",
        "2018-07-12T23:59:60Z",
        "2018-07-12T13:46:28.Z",
        "2018-07-12T13:46:28.1234567890Z",
        "2018-07-12T13:46:28+24:00",
        "2018-07-12T13:46:28+5:30",
        "0000-01-01T00:00:00Z",
        "٢٠١٨-07-12T13:46:28Z",  # non-ASCII digits
        "Thu, 12 Jul 2018 13:46:28 GMT",
    ],
)
def test_parse_x_date_refuses_malformed(text: str) -> None:
    with pytest.raises(BadInput):
        sig.parse_x_date(text)


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)))
def test_x_date_round_trip_truncates_to_milliseconds(when: datetime) -> None:
    assert sig.parse_x_date(sig.format_x_date(when)) == when.replace(
        microsecond=when.microsecond // 1000 * 1000
    )


# --- signature and Authorization -------------------------------------------------------------------------


def test_signature_is_lowercase_hex_sha256() -> None:
    value = sig.signature(SECRET, LOGIN, DATE, BODY)
    assert len(value) == 64
    assert value == value.lower()
    int(value, 16)


def test_str_and_utf8_bytes_secret_sign_alike() -> None:
    secret = "sécret-ключ"
    assert sig.signature(secret, LOGIN, DATE, BODY) == sig.signature(secret.encode(), LOGIN, DATE, BODY)


def test_authorization_header_shape() -> None:
    header = sig.authorization(SECRET, LOGIN, DATE, BODY)
    assert header == f"V2-HMAC-SHA256, Signature: {sig.signature(SECRET, LOGIN, DATE, BODY)}"


def test_fields_are_concatenated_without_separators() -> None:
    assert sig.signature(SECRET, LOGIN, DATE, b"") == sig.signature(SECRET, LOGIN[:4], LOGIN[4:] + DATE, b"")


@pytest.mark.parametrize(
    ("secret", "login", "date", "body", "error"),
    [
        ("", LOGIN, DATE, BODY, BadKey),
        (b"", LOGIN, DATE, BODY, BadKey),
        (SECRET, "", DATE, BODY, BadInput),
        (SECRET, LOGIN, "", BODY, BadInput),
        (SECRET, LOGIN, DATE, BODY.decode(), BadInput),
    ],
)
def test_signature_refuses_empty_fields_and_text_bodies(
    secret: str | bytes, login: str, date: str, body: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        sig.signature(secret, login, date, body)


def test_error_messages_never_contain_the_secret() -> None:
    secret = "throwaway-very-distinctive-secret"
    header = sig.authorization(secret, LOGIN, DATE, BODY)
    with pytest.raises(SignatureMismatch) as caught:
        sig.verify(secret, LOGIN, DATE, BODY + b" ", header)
    assert secret not in str(caught.value)
    assert header.split()[-1] not in str(caught.value)


# --- verify ----------------------------------------------------------------------------------------------


def _hex() -> str:
    return sig.signature(SECRET, LOGIN, DATE, BODY)


@pytest.mark.parametrize(
    "presented",
    [
        lambda h: f"V2-HMAC-SHA256, Signature: {h}",
        lambda h: f"V2-HMAC-SHA256,Signature:{h}",
        lambda h: f"V2-HMAC-SHA256 ,  Signature :  {h}",
        lambda h: f"  V2-HMAC-SHA256, Signature: {h}\r\n",
        lambda h: f"V2-HMAC-SHA256, Signature: {h.upper()}",
        lambda h: h,
        lambda h: h.upper(),
    ],
    ids=["canonical", "no-spaces", "extra-spaces", "surrounding-space", "upper-hex", "bare", "bare-upper"],
)
def test_verify_accepts_the_header_or_a_bare_signature(presented: object) -> None:
    assert callable(presented)
    assert sig.verify(SECRET, LOGIN, DATE, BODY, presented(_hex())) is None


@pytest.mark.parametrize(
    "presented",
    [
        lambda h: f"V1-HMAC-SHA256, Signature: {h}",
        lambda h: f"V2-HMAC-SHA512, Signature: {h}",
        lambda h: f"v2-hmac-sha256, Signature: {h}",
        lambda h: f"HMAC-SHA256, Signature: {h}",
        lambda h: f", Signature: {h}",
        lambda h: f"V2-HMAC-SHA256 Signature: {h}",
        lambda h: f"V2-HMAC-SHA256, Sig: {h}",
        lambda h: f"V2-HMAC-SHA256, Signature: {h[:-1]}",
        lambda h: f"V2-HMAC-SHA256, Signature: {h}0",
        lambda h: f"V2-HMAC-SHA256, Signature: {h[:-1]}g",
        lambda h: f"V2-HMAC-SHA256, Signature: {h} {h}",
        lambda h: "V2-HMAC-SHA256, Signature: ",
        lambda h: "",
        lambda h: h[:32],
        lambda h: "\u0660" * 64,  # ARABIC-INDIC DIGIT ZERO: a digit to str.isdigit, not hex
    ],
)
def test_verify_refuses_malformed_headers_as_bad_token(presented: object) -> None:
    assert callable(presented)
    with pytest.raises(BadToken):
        sig.verify(SECRET, LOGIN, DATE, BODY, presented(_hex()))


@given(secret=secrets_, login=logins, date=dates, body=bodies)
def test_sign_verify_round_trip(secret: str | bytes, login: str, date: str, body: bytes) -> None:
    header = sig.authorization(secret, login, date, body)
    assert sig.verify(secret, login, date, body, header) is None
    assert sig.verify(secret, login, date, body, header.rsplit(" ", 1)[1].upper()) is None


@given(
    secret=secrets_,
    login=logins,
    date=dates,
    body=bodies,
    field=st.sampled_from(["secret", "login", "date", "body"]),
    data=st.data(),
)
def test_any_single_change_is_a_signature_mismatch(
    secret: str | bytes, login: str, date: str, body: bytes, field: str, data: st.DataObject
) -> None:
    header = sig.authorization(secret, login, date, body)
    fields: dict[str, Any] = {"secret": secret, "login": login, "date": date, "body": body}
    original = fields[field]
    if isinstance(original, bytes):
        strategy = st.binary(min_size=1 if field == "secret" else 0, max_size=64)
    else:
        strategy = st.text(min_size=1, max_size=40)
    if field == "secret":
        # str and bytes secrets sign alike when the bytes are the str's UTF-8: compare as bytes.
        changed = data.draw(strategy.filter(lambda v: _as_bytes(v) != _as_bytes(original)))
    else:
        changed = data.draw(strategy.filter(lambda v: v != original))
    fields[field] = changed
    with pytest.raises(SignatureMismatch):
        sig.verify(**fields, presented=header)


@given(secret=secrets_, login=logins, date=dates, body=bodies, data=st.data())
def test_any_change_of_the_signature_is_a_mismatch(
    secret: str | bytes, login: str, date: str, body: bytes, data: st.DataObject
) -> None:
    hexsig = sig.signature(secret, login, date, body)
    position = data.draw(st.integers(0, 63))
    digit = data.draw(st.sampled_from("0123456789abcdef").filter(lambda d: d != hexsig[position]))
    altered = hexsig[:position] + digit + hexsig[position + 1 :]
    with pytest.raises(SignatureMismatch):
        sig.verify(secret, login, date, body, f"V2-HMAC-SHA256, Signature: {altered}")


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


# --- is_fresh --------------------------------------------------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("date", "fresh"),
    [
        ("2024-06-01T12:00:00.000Z", True),
        ("2024-06-01T11:55:00.000Z", True),  # exactly the tolerance in the past
        ("2024-06-01T12:05:00.000Z", True),  # exactly the tolerance ahead (sender's clock fast)
        ("2024-06-01T11:54:59.999Z", False),
        ("2024-06-01T12:05:00.001Z", False),
        ("2024-06-01T09:04:00-03:00", True),
        ("2024-06-01T08:00:00-03:00", False),
        ("2023-06-01T12:00:00.000Z", False),
    ],
)
def test_is_fresh_accepts_both_directions_of_skew_within_tolerance(date: str, fresh: bool) -> None:
    assert sig.is_fresh(date, now=NOW) is fresh


def test_is_fresh_custom_tolerance_and_default_now() -> None:
    assert sig.is_fresh("2024-06-01T11:00:00Z", now=NOW, tolerance=timedelta(hours=1))
    assert not sig.is_fresh("2024-06-01T11:00:00Z", now=NOW, tolerance=timedelta(minutes=59))
    assert sig.is_fresh(sig.format_x_date())


def test_is_fresh_refuses_malformed_dates_naive_now_and_negative_tolerance() -> None:
    with pytest.raises(BadInput):
        sig.is_fresh("yesterday", now=NOW)
    with pytest.raises(ValueError, match="aware"):
        sig.is_fresh("2024-06-01T12:00:00Z", now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="negative"):
        sig.is_fresh("2024-06-01T12:00:00Z", now=NOW, tolerance=timedelta(seconds=-1))
