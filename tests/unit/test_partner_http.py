"""Behaviour of ``sealgate.partner_http`` without a network: Retry-After, retryable statuses, URL, method and
argument checks.

The exchanges with real HTTPS servers are in ``tests/integration/test_partner_http.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from urllib3.util.url import _encode_target

from sealgate import partner_http
from sealgate.errors import BadInput, InsecureUrl
from sealgate.partner_http import is_retryable, retry_after

NOW = datetime(1994, 11, 6, 8, 49, 0, tzinfo=UTC)


# --- is_retryable ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, False),
        (301, False),
        (400, False),
        (401, False),
        (404, False),
        (408, True),
        (409, False),
        (422, False),
        (425, True),
        (429, True),
        (499, False),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
        (600, False),
    ],
)
def test_is_retryable(status: int, expected: bool) -> None:
    assert is_retryable(status) is expected


@given(st.integers(min_value=100, max_value=999))
def test_is_retryable_is_exactly_408_425_429_and_5xx(status: int) -> None:
    assert is_retryable(status) == (status in {408, 425, 429} or status // 100 == 5)


# --- retry_after -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 37.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:37 GMT", 37.0),  # obsolete RFC 850 form
        ("Sun Nov  6 08:49:37 1994", 37.0),  # obsolete asctime form
        ("Sun, 06 Nov 1994 08:48:00 GMT", 0.0),  # already past
    ],
)
def test_retry_after_parses_delta_seconds_and_http_dates(value: str, expected: float) -> None:
    assert retry_after({"retry-after": value}, now=NOW) == expected


@pytest.mark.parametrize(
    "value", ["", "soon", "-5", "1.5", "1e3", "\u0663", "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 32 Nov 1994"]
)
def test_retry_after_malformed_is_none(value: str) -> None:
    assert retry_after({"retry-after": value}, now=NOW) is None


def test_retry_after_absent_is_none() -> None:
    assert retry_after({"content-type": "text/plain"}) is None


def test_retry_after_matches_the_header_name_in_any_case() -> None:
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"RETRY-AFTER": "4"}) == 4.0


def test_retry_after_takes_a_naive_now_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert retry_after({"retry-after": "Sun, 06 Nov 1994 08:49:37 GMT"}, now=naive) == 37.0


def test_retry_after_honours_an_aware_now_in_another_zone() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=-3)))
    assert retry_after({"retry-after": "Sun, 06 Nov 1994 08:49:37 GMT"}, now=local) == 37.0


def test_retry_after_defaults_now_to_the_clock() -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    seconds = retry_after({"retry-after": format_datetime(soon, usegmt=True)})
    assert seconds is not None
    assert 3500 < seconds <= 3600


def test_retry_after_caps_huge_delta_seconds() -> None:
    assert retry_after({"retry-after": "9" * 5000}) == 2.0**31


@given(st.integers(min_value=0, max_value=2**31))
def test_retry_after_delta_seconds_roundtrip(seconds: int) -> None:
    assert retry_after({"retry-after": str(seconds)}) == float(seconds)


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ).map(lambda when: when.replace(microsecond=0))
)
def test_retry_after_http_date_is_seconds_from_now(when: datetime) -> None:
    expected = max(0.0, (when - NOW).total_seconds())
    assert retry_after({"retry-after": format_datetime(when, usegmt=True)}, now=NOW) == expected


@given(st.text(max_size=64))
def test_retry_after_never_raises_and_never_goes_negative(value: str) -> None:
    seconds = retry_after({"retry-after": value}, now=NOW)
    assert seconds is None or seconds >= 0.0


# --- URL and argument checks (all raised before any connection) --------------------------------------------


def _send(url: str, **options: object) -> None:
    arguments: dict[str, object] = {"headers": {}, "body": None, "timeout": 1.0, **options}
    partner_http.send("GET", url, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "HTTP://127.0.0.1:9/",
        "ftp://127.0.0.1/file",
        "file:///etc/passwd",
        "ws://127.0.0.1:9/",
        "//127.0.0.1:9/no-scheme",
        "127.0.0.1:9/no-scheme",
    ],
)
def test_only_https_is_allowed_by_default(url: str) -> None:
    with pytest.raises(InsecureUrl):
        _send(url)


def test_allow_http_still_refuses_other_schemes() -> None:
    with pytest.raises(InsecureUrl):
        _send("ftp://127.0.0.1/file", allow_http=True)


def test_credentials_in_the_url_are_refused_without_quoting_them() -> None:
    with pytest.raises(InsecureUrl) as caught:
        _send("https://user:hunter2@127.0.0.1:9/")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["https:///path-only", "https://:443/", "https://127.0.0.1:99999/"])
def test_malformed_urls_are_bad_input(url: str) -> None:
    with pytest.raises(BadInput):
        _send(url)


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan"), float("inf")])
def test_timeout_must_be_positive_and_finite(timeout: float) -> None:
    with pytest.raises(BadInput):
        _send("https://127.0.0.1:9/", timeout=timeout)


def test_max_response_bytes_must_not_be_negative() -> None:
    with pytest.raises(BadInput):
        _send("https://127.0.0.1:9/", max_response_bytes=-1)


@pytest.mark.parametrize("method", ["", "GET /", "G\r\nET", "GET\x00", "G\u00c9T", "(GET)", 'GE"T'])
def test_a_malformed_method_is_bad_input_before_any_connection(method: str) -> None:
    # Nothing listens on port 9: reaching the network would be PartnerUnreachable, not BadInput.
    with pytest.raises(BadInput):
        partner_http.send(method, "https://127.0.0.1:9/", headers={}, body=None, timeout=1.0)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:9/a b",
        "https://127.0.0.1:9/a%2fb",  # urllib3 would send %2F
        "https://127.0.0.1:9/100%",  # ... and %25, re-encoding every other escape too
        "https://127.0.0.1:9/caf\u00e9",
        "https://127.0.0.1:9/a|b",
        "https://127.0.0.1:9/?filter[name]=x",
        'https://127.0.0.1:9/?q="x"',
    ],
)
def test_a_target_urllib3_would_rewrite_is_bad_input(url: str) -> None:
    with pytest.raises(BadInput):
        _send(url)


_TARGET_PIECES = st.one_of(
    st.sampled_from(list("ABCXYZabcxyz0123456789-._~!$&'()*+,;=:@/?")),
    st.tuples(st.sampled_from("0123456789ABCDEF"), st.sampled_from("0123456789ABCDEF")).map(
        lambda pair: "%" + "".join(pair)
    ),
)


@given(st.lists(_TARGET_PIECES, max_size=40).map(lambda pieces: "/" + "".join(pieces)))
def test_an_accepted_target_is_one_urllib3_sends_unchanged(target: str) -> None:
    # What a partner signed over is what goes on the wire: the check in _split_url matches urllib3's encoder.
    scheme, host, port, split = partner_http._split_url("https://partner.example" + target, allow_http=False)
    path, _, query = target.partition("?")
    assert (scheme, host, port, split) == (
        "https",
        "partner.example",
        443,
        f"{path}?{query}" if query else path,
    )
    assert _encode_target(split) == split
