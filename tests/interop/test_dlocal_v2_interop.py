"""dLocal V2-HMAC-SHA256 against independent oracles: PHP's ``hash_hmac`` (dLocal's own snippet) and Python's
``hmac`` computing the seed's formula directly.

Directions: PHP signs -> we verify (pinned vectors and live batches); we sign -> PHP verifies our
``Authorization`` header with ``hash_equals`` (live batches, values through stdin).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.errors import SignatureMismatch
from sealgate.schemes import dlocal_v2 as sig

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
VECTORS = json.loads((HERE / "vectors" / "dlocal_v2.json").read_text(encoding="utf-8"))["vectors"]
PHP_ORACLE = HERE / "php" / "dlocal_hmac.php"
EPOCH = datetime(2010, 1, 1, tzinfo=UTC)


def _secret(vector: dict[str, Any]) -> str | bytes:
    if "secret" in vector:
        return str(vector["secret"])
    return base64.b64decode(vector["secret_b64"])


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _python_oracle(secret: str | bytes, login: str, date: str, body: bytes) -> str:
    """The seed's Python line: hmac.new(secretKey, X-Login+X-Date+RequestBody, hashlib.sha256).hexdigest()."""
    return hmac.new(_secret_bytes(secret), login.encode() + date.encode() + body, hashlib.sha256).hexdigest()


def _php(php: str, cases: list[tuple[str | bytes, str, str, bytes, str | None]]) -> list[dict[str, Any]]:
    """One PHP run over every case: (secret, login, date, body, authorization or None)."""
    request = [
        {
            "secret_b64": base64.b64encode(_secret_bytes(secret)).decode(),
            "login": login,
            "date": date,
            "body_b64": base64.b64encode(body).decode(),
            **({"authorization": header} if header is not None else {}),
        }
        for secret, login, date, body, header in cases
    ]
    done = subprocess.run(
        [php, str(PHP_ORACLE)],
        input=json.dumps(request).encode(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(answers) == len(cases)
    return answers


def _fields(vector: dict[str, Any]) -> tuple[str | bytes, str, str, bytes]:
    return _secret(vector), vector["login"], vector["date"], base64.b64decode(vector["body_b64"])


# --- pinned vectors (made by PHP) ------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_php_vectors_sign_and_verify(vector: dict[str, Any]) -> None:
    secret, login, date, body = _fields(vector)
    assert sig.signature(secret, login, date, body) == vector["signature"]
    assert sig.verify(secret, login, date, body, f"V2-HMAC-SHA256, Signature: {vector['signature']}") is None
    with pytest.raises(SignatureMismatch):
        sig.verify(secret, login, date, body + b"\n", f"V2-HMAC-SHA256, Signature: {vector['signature']}")


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_python_hmac_oracle_agrees_with_the_php_vectors(vector: dict[str, Any]) -> None:
    assert _python_oracle(*_fields(vector)) == vector["signature"]


def test_vectors_cover_the_cases_that_matter() -> None:
    bodies = [base64.b64decode(v["body_b64"]) for v in VECTORS]
    assert b"" in bodies
    assert any(not _is_utf8(body) for body in bodies), "no binary body"
    assert any(_is_utf8(body) and not body.isascii() for body in bodies), "no UTF-8 body"
    assert any("secret_b64" in v for v in VECTORS), "no binary secret"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- Python's hmac, property-based -----------------------------------------------------------------------

secrets_ = st.one_of(st.text(min_size=1, max_size=64), st.binary(min_size=1, max_size=200))
texts = st.text(min_size=1, max_size=40)


@given(secret=secrets_, login=texts, date=texts, body=st.binary(max_size=1024))
def test_python_hmac_oracle_agrees(secret: str | bytes, login: str, date: str, body: bytes) -> None:
    assert sig.signature(secret, login, date, body) == _python_oracle(secret, login, date, body)


# --- PHP, live, both directions --------------------------------------------------------------------------


def _random_cases(count: int) -> list[tuple[str | bytes, str, str, bytes]]:
    rng = random.Random(20240601)  # fixed seed: the same batch on every run
    alphabet = "abcXYZ019-_ .:+/é日😀\x00\t"
    cases: list[tuple[str | bytes, str, str, bytes]] = []
    for index in range(count):
        secret: str | bytes = (
            rng.randbytes(rng.randint(1, 100))
            if index % 2
            else "".join(rng.choices(alphabet, k=rng.randint(1, 40)))
        )
        login = "".join(rng.choices(alphabet, k=rng.randint(1, 20)))
        date = sig.format_x_date(EPOCH + timedelta(milliseconds=rng.randint(0, 2**40)))
        body = rng.randbytes(rng.choice([0, 1, 63, 64, 65, 1000]))
        cases.append((secret, login, date, body))
    return cases


def test_php_verifies_our_headers_and_we_verify_php_signatures(php: str) -> None:
    cases = [_fields(v) for v in VECTORS] + _random_cases(200)
    ours = [sig.authorization(*case) for case in cases]
    answers = _php(php, [(*case, header) for case, header in zip(cases, ours, strict=True)])
    for case, header, answer in zip(cases, ours, answers, strict=True):
        assert answer["verified"] is True  # we sign -> PHP verifies
        assert header == f"V2-HMAC-SHA256, Signature: {answer['signature']}"
        assert sig.verify(*case, f"V2-HMAC-SHA256, Signature: {answer['signature']}") is None  # PHP signs


def test_php_oracle_rejects_altered_headers(php: str) -> None:
    """The PHP side is not vacuous: it refuses a header whose signature is for other fields."""
    secret, login, date, body = _fields(VECTORS[0])
    wrong = sig.authorization(secret, login, date, body + b"x")
    answers = _php(
        php,
        [
            (secret, login, date, body, wrong),
            (secret, login, date, body, wrong.replace("V2-", "V1-")),
        ],
    )
    assert [answer["verified"] for answer in answers] == [False, False]


@settings(max_examples=10, deadline=None)
@given(
    st.lists(
        st.tuples(secrets_, texts, texts, st.binary(max_size=300)),
        min_size=1,
        max_size=40,
    )
)
def test_php_agrees_on_arbitrary_batches(php: str, cases: list[tuple[str | bytes, str, str, bytes]]) -> None:
    answers = _php(php, [(*case, sig.authorization(*case)) for case in cases])
    for case, answer in zip(cases, answers, strict=True):
        assert answer["verified"] is True
        assert answer["signature"] == sig.signature(*case)
