"""The ``sealgate`` command line: stdin/stdout/stderr and exit status, in process and as real processes.

Most cases run in process through :func:`sealgate.cli.main` (see ``tests/cli_harness.py``); a few run
``python -m sealgate`` and the ``sealgate`` script to pin the byte-exact process contract and what a command
imports. The oracles check the CLI's tokens in ``tests/interop/test_cli_interop.py``.

Every key here is a throwaway test key; keys and plaintexts carry ``MARK`` so a leak into stderr shows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate import cli, schemes
from sealgate.codec import b64decode, b64encode
from sealgate.schemes import aesbridge_cbc, aesbridge_gcm, jwe
from tests.cli_harness import (
    MODULE,
    SCRIPT,
    Outcome,
    assert_refused,
    invoke,
    key_file,
    spawn,
)

VECTORS = Path(__file__).parents[1] / "interop" / "vectors"
JWE_VECTORS = json.loads((VECTORS / "jwe.json").read_text("utf-8"))  # throwaway RSA key pair
LEGACY_VECTORS = json.loads((VECTORS / "aesbridge.json").read_text("utf-8"))["legacy"]  # made by aes_bridge

# Throwaway test keys, marked so that a leak into stderr is caught.
PASSPHRASE = b"THROWAWAY-passphrase-MARK-q7Zx"
OTHER_PASSPHRASE = b"THROWAWAY-other-MARK-passphrase"
LARAVEL_SECRET = b"THROWAWAY-laravel-MARK-secret-key"
LARAVEL_APP_KEY = b"base64:" + b64encode(b"LaravelAppKeyMARK-throwaway-32b!").encode()
STATIC_KEY = b"ThrowawayKeyMARK0123456789abcdef"
OTHER_STATIC_KEY = b"OtherThrowawayKeyMARK0123456789a"
STATIC_IV = b"IvMARKthrowaway1"
GCM_KEY = b64encode(b"GcmKeyMARK-throwaway-32-bytes!!!").encode()
OTHER_GCM_KEY = b64encode(b"OtherGcmKeyMARK-throwaway-32b!!!").encode()
DLOCAL_SECRET = b"THROWAWAY-dlocal-MARK-secret"
SECRETS: tuple[bytes, ...] = (
    PASSPHRASE,
    OTHER_PASSPHRASE,
    LARAVEL_SECRET,
    LARAVEL_APP_KEY,
    STATIC_KEY,
    OTHER_STATIC_KEY,
    STATIC_IV,
    GCM_KEY,
    OTHER_GCM_KEY,
    DLOCAL_SECRET,
    JWE_VECTORS["private_pem"].encode(),
)

# Binary, with a NUL, invalid UTF-8, a CR LF and a trailing newline that decrypt must give back exactly.
PLAINTEXT = b"PLAINTEXT-MARK \x00\x01\xfe\xff caf\xc3\xa9\r\n\ttrailing newline\n"

STANDARD_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
URLSAFE_B64 = re.compile(r"[A-Za-z0-9_-]+")
LOWER_HEX = re.compile(r"[0-9a-f]+")
JWE_COMPACT = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){4}")

Keys = dict[str, str]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Key files (the way an operator writes them: a trailing newline, sometimes CR LF), by name."""
    folder = tmp_path_factory.mktemp("keys")
    other_private, _ = jwe.generate_keypair()
    contents = {
        "passphrase": PASSPHRASE + b"\n",
        "other-passphrase": OTHER_PASSPHRASE + b"\n",
        "laravel": LARAVEL_SECRET + b"\n",
        "laravel-app": LARAVEL_APP_KEY + b"\r\n",
        "other-laravel": LARAVEL_SECRET + b"!\n",
        "static-key": STATIC_KEY + b"\n",
        "other-static-key": OTHER_STATIC_KEY + b"\n",
        "static-iv": STATIC_IV + b"\r\n",
        "gcm": GCM_KEY,
        "other-gcm": OTHER_GCM_KEY + b"\n",
        "dlocal": DLOCAL_SECRET + b"\n",
        "public": JWE_VECTORS["public_pem"].encode(),
        "private": JWE_VECTORS["private_pem"].encode(),
        "other-private": other_private.encode(),
        "public-jwk": json.dumps(JWE_VECTORS["public_jwk"]).encode(),
        "empty": b"\n",
        "garbage": b"not a key at all\n",
    }
    return {name: key_file(folder, name, data) for name, data in contents.items()}


def options(keys: Keys, *items: str) -> list[str]:
    """``items`` with every ``@name`` replaced by the path of key file ``name``."""
    return [keys[item[1:]] if item.startswith("@") else item for item in items]


# label -> (scheme, encrypt options, decrypt options, token shape)
CASES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], re.Pattern[str]]] = {
    "aesbridge-gcm": (
        "aesbridge-gcm",
        ("--key-file", "@passphrase"),
        ("--key-file", "@passphrase"),
        STANDARD_B64,
    ),
    "aesbridge-gcm-urlsafe": (
        "aesbridge-gcm",
        ("--key-file", "@passphrase", "--urlsafe"),
        ("--key-file", "@passphrase"),
        URLSAFE_B64,
    ),
    "aesbridge-cbc": (
        "aesbridge-cbc",
        ("--key-file", "@passphrase"),
        ("--key-file", "@passphrase"),
        STANDARD_B64,
    ),
    "aesbridge-cbc-urlsafe": (
        "aesbridge-cbc",
        ("--key-file", "@passphrase", "--urlsafe"),
        ("--key-file", "@passphrase"),
        URLSAFE_B64,
    ),
    "laravel-cbc": ("laravel-cbc", ("--key-file", "@laravel"), ("--key-file", "@laravel"), STANDARD_B64),
    "laravel-cbc-app-key": (
        "laravel-cbc",
        ("--key-file", "@laravel-app"),
        ("--key-file", "@laravel-app"),
        STANDARD_B64,
    ),
    "aes-cbc-static": (
        "aes-cbc-static",
        ("--key-file", "@static-key", "--iv-file", "@static-iv"),
        ("--key-file", "@static-key", "--iv-file", "@static-iv"),
        STANDARD_B64,
    ),
    "aes-cbc-static-hex": (
        "aes-cbc-static",
        ("--key-file", "@static-key", "--iv-file", "@static-iv", "--encoding", "hex"),
        ("--key-file", "@static-key", "--iv-file", "@static-iv", "--encoding", "hex"),
        LOWER_HEX,
    ),
    "aes-gcm": ("aes-gcm", ("--key-file", "@gcm"), ("--key-file", "@gcm"), STANDARD_B64),
    "jwe": ("jwe", ("--public-key", "@public"), ("--private-key", "@private"), JWE_COMPACT),
    "jwe-rsa-oaep-jwk": (
        "jwe",
        ("--public-key", "@public-jwk", "--alg", "RSA-OAEP"),
        ("--private-key", "@private"),
        JWE_COMPACT,
    ),
}


def encrypt(keys: Keys, label: str, plaintext: bytes, *extra: str) -> Outcome:
    scheme, enc, _, _ = CASES[label]
    return invoke("encrypt", scheme, *options(keys, *enc), *extra, stdin=plaintext)


def decrypt(keys: Keys, label: str, token: bytes, *extra: str) -> Outcome:
    scheme, _, dec, _ = CASES[label]
    return invoke("decrypt", scheme, *options(keys, *dec), *extra, stdin=token)


def token_of(outcome: Outcome) -> bytes:
    """The token of a successful ``encrypt``: exactly one line, ``\\n``-terminated, nothing on stderr."""
    assert (outcome.status, outcome.stderr) == (0, ""), outcome.stderr
    assert outcome.stdout.endswith(b"\n")
    assert outcome.stdout.count(b"\n") == 1
    return outcome.stdout[:-1]


@pytest.fixture(scope="module")
def tokens(keys: Keys) -> dict[str, bytes]:
    """One token of :data:`PLAINTEXT` per case, made by the command line."""
    return {label: token_of(encrypt(keys, label, PLAINTEXT)) for label in CASES}


def altered(token: bytes) -> bytes:
    """``token`` with one bit flipped in its last decoded byte (the tag or MAC), same text encoding."""
    text = token.decode("ascii")
    if JWE_COMPACT.fullmatch(text):
        parts = text.split(".")
        tag = bytearray(b64decode(parts[4]))
        tag[-1] ^= 1
        return ".".join([*parts[:4], b64encode(bytes(tag), urlsafe=True)]).encode()
    if LOWER_HEX.fullmatch(text):
        raw = bytearray(bytes.fromhex(text))
        raw[-1] ^= 1
        return raw.hex().encode()
    raw = bytearray(b64decode(text))
    if raw.startswith(b'{"iv"'):  # Laravel: change the MAC's last hex digit inside the JSON
        envelope = json.loads(raw)
        envelope["mac"] = envelope["mac"][:-1] + ("0" if envelope["mac"][-1] != "0" else "1")
        return b64encode(json.dumps(envelope, separators=(",", ":")).encode()).encode()
    raw[-1] ^= 1
    return b64encode(bytes(raw), urlsafe=URLSAFE_B64.fullmatch(text) is not None).encode()


# --- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", CASES)
def test_encrypt_prints_one_token_line_and_decrypt_gives_the_bytes_back_exactly(
    keys: Keys, tokens: dict[str, bytes], label: str
) -> None:
    token = tokens[label]
    assert CASES[label][3].fullmatch(token.decode("ascii")), "token has the wrong alphabet"
    for stdin in (token + b"\n", token, b"  " + token + b"\r\n"):
        opened = decrypt(keys, label, stdin)
        assert (opened.status, opened.stderr) == (0, "")
        assert opened.stdout == PLAINTEXT, "decrypt changed the plaintext (or added a newline)"


@pytest.mark.parametrize("label", [label for label in CASES if not label.startswith("jwe")])
def test_empty_plaintext_round_trips(keys: Keys, label: str) -> None:
    opened = decrypt(keys, label, token_of(encrypt(keys, label, b"")))
    assert (opened.status, opened.stdout) == (0, b"")


def test_jwe_refuses_an_empty_plaintext(keys: Keys) -> None:
    assert_refused(encrypt(keys, "jwe", b""), 2, "bad_input")


@pytest.mark.parametrize(("extra", "alg"), [((), "RSA-OAEP-256"), (("--alg", "RSA-OAEP"), "RSA-OAEP")])
def test_jwe_alg_option_sets_the_header(keys: Keys, extra: tuple[str, ...], alg: str) -> None:
    token = token_of(encrypt(keys, "jwe", b"card", *extra))
    header = json.loads(b64decode(token.split(b".")[0]))
    assert header == {"enc": "A256GCM", "alg": alg}


def test_aes_cbc_static_is_deterministic_and_hex_is_the_same_ciphertext(tokens: dict[str, bytes]) -> None:
    assert b64decode(tokens["aes-cbc-static"]) == bytes.fromhex(tokens["aes-cbc-static-hex"].decode())


def test_urlsafe_form_is_the_standard_token_in_the_other_alphabet(
    keys: Keys, tokens: dict[str, bytes]
) -> None:
    for label in ("aesbridge-gcm-urlsafe", "aesbridge-cbc-urlsafe"):
        token = tokens[label].decode()
        assert "=" not in token
        assert "+" not in token
        assert "/" not in token
        standard = b64encode(b64decode(token)).encode()
        assert decrypt(keys, label, standard).stdout == PLAINTEXT


@settings(max_examples=40, deadline=None)
@given(plaintext=st.binary(max_size=300))
def test_any_bytes_round_trip(keys: Keys, plaintext: bytes) -> None:
    for label in ("aes-gcm", "aes-cbc-static-hex"):
        opened = decrypt(keys, label, token_of(encrypt(keys, label, plaintext)))
        assert (opened.status, opened.stdout) == (0, plaintext)


# --- --lines -----------------------------------------------------------------------------------------------

LINES_IN = b"first value\r\n\r\nthird \xc3\xa9 value \x00\nlast, no newline"
LINES_OUT = b"first value\n\nthird \xc3\xa9 value \x00\nlast, no newline\n"


@pytest.mark.parametrize("label", CASES)
def test_lines_one_token_per_line_crlf_and_empty_lines_included(keys: Keys, label: str) -> None:
    lines_in, lines_out = LINES_IN, LINES_OUT
    if label.startswith("jwe"):  # jwcrypto cannot carry an empty value: an empty line is refused
        assert_refused(encrypt(keys, label, LINES_IN, "--lines"), 2, "bad_input", LINES_IN)
        lines_in, lines_out = LINES_IN.replace(b"\r\n\r\n", b"\r\n"), LINES_OUT.replace(b"\n\n", b"\n")
    sealed = encrypt(keys, label, lines_in, "--lines")
    assert (sealed.status, sealed.stderr) == (0, "")
    token_lines = sealed.stdout.split(b"\n")
    assert token_lines.pop() == b"", "output does not end with a newline"
    assert len(token_lines) == lines_out.count(b"\n"), "not one token line per input line"
    # Tokens as an operator's editor may save them: CR LF, stray spaces.
    crlf = b"\r\n".join(b" " + line + b"\t" for line in token_lines) + b"\r\n"
    opened = decrypt(keys, label, crlf, "--lines")
    assert (opened.status, opened.stderr) == (0, "")
    assert opened.stdout == lines_out


def test_lines_each_line_is_exactly_one_value(keys: Keys) -> None:
    # The static scheme is deterministic, so each line's token must equal that value encrypted alone.
    values = LINES_OUT.split(b"\n")[:-1]
    sealed = encrypt(keys, "aes-cbc-static", LINES_IN, "--lines")
    singles = [token_of(encrypt(keys, "aes-cbc-static", value)) for value in values]
    assert sealed.stdout.split(b"\n")[:-1] == singles


def test_lines_empty_stdin_gives_no_output(keys: Keys) -> None:
    assert encrypt(keys, "aes-gcm", b"", "--lines") == Outcome(0, b"", "")
    assert decrypt(keys, "aes-gcm", b"", "--lines") == Outcome(0, b"", "")


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.binary(max_size=40).filter(lambda v: b"\n" not in v and b"\r" not in v), max_size=8),
    crlf=st.booleans(),
    terminated=st.booleans(),
)
def test_lines_round_trip_property(keys: Keys, values: list[bytes], crlf: bool, terminated: bool) -> None:
    end = b"\r\n" if crlf else b"\n"
    text = end.join(values)
    if values and (terminated or values[-1] == b""):  # an unterminated empty last line is no line
        text += end
    sealed = encrypt(keys, "aes-cbc-static", text, "--lines")
    assert sealed.stdout.count(b"\n") == len(values)
    opened = decrypt(keys, "aes-cbc-static", sealed.stdout, "--lines")
    assert opened.stdout == b"".join(value + b"\n" for value in values)


def test_lines_empty_token_line_is_refused_and_nothing_is_printed(keys: Keys) -> None:
    good = token_of(encrypt(keys, "aes-gcm", b"one"))
    outcome = decrypt(keys, "aes-gcm", good + b"\n\n" + good + b"\n", "--lines")
    assert_refused(outcome, 2, "bad_input", *SECRETS, good)
    assert "line 2" in outcome.stderr


def test_lines_a_bad_line_leaves_no_partial_output(keys: Keys) -> None:
    good = token_of(encrypt(keys, "aes-gcm", b"PLAINTEXT-MARK one"))
    bad = altered(good)
    outcome = decrypt(keys, "aes-gcm", good + b"\n" + good + b"\n" + bad + b"\n", "--lines")
    assert_refused(outcome, 1, "tag_mismatch", *SECRETS, good, bad)
    assert "line 3" in outcome.stderr


@pytest.mark.parametrize("breaking", [b"two\nlines", b"carriage\rreturn"])
def test_lines_refuses_a_plaintext_that_would_break_the_lines(keys: Keys, breaking: bytes) -> None:
    token = token_of(encrypt(keys, "aes-gcm", breaking))
    assert decrypt(keys, "aes-gcm", token).stdout == breaking
    assert_refused(decrypt(keys, "aes-gcm", token + b"\n", "--lines"), 2, "bad_input", breaking)


# --- key files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n"])
def test_key_files_with_or_without_one_trailing_newline_hold_the_same_key(
    keys: Keys, tokens: dict[str, bytes], tmp_path: Path, ending: bytes
) -> None:
    key = key_file(tmp_path, "key", STATIC_KEY + ending)
    iv = key_file(tmp_path, "iv", STATIC_IV + ending)
    sealed = invoke("encrypt", "aes-cbc-static", "--key-file", key, "--iv-file", iv, stdin=PLAINTEXT)
    assert token_of(sealed) == tokens["aes-cbc-static"]
    passphrase = key_file(tmp_path, "passphrase", PASSPHRASE + ending)
    opened = invoke("decrypt", "aesbridge-gcm", "--key-file", passphrase, stdin=tokens["aesbridge-gcm"])
    assert opened.stdout == PLAINTEXT


def test_only_one_trailing_newline_is_removed(keys: Keys, tmp_path: Path) -> None:
    key = key_file(tmp_path, "key", STATIC_KEY + b"\n\n")
    iv = key_file(tmp_path, "iv", STATIC_IV)
    outcome = invoke("encrypt", "aes-cbc-static", "--key-file", key, "--iv-file", iv, stdin=b"x")
    assert_refused(outcome, 2, "bad_key", *SECRETS)
    # The passphrase keeps its second newline: the token opens under PASSPHRASE + "\n" and nothing else.
    passphrase = key_file(tmp_path, "passphrase", PASSPHRASE + b"\n\n")
    token = token_of(invoke("encrypt", "aesbridge-gcm", "--key-file", passphrase, stdin=b"x"))
    assert aesbridge_gcm.decrypt(token, PASSPHRASE + b"\n") == b"x"
    assert_refused(decrypt(keys, "aesbridge-gcm", token), 1, "tag_mismatch", *SECRETS)


def test_binary_passphrase_file_is_used_byte_for_byte(tmp_path: Path) -> None:
    secret = bytes(range(1, 256))
    passphrase = key_file(tmp_path, "passphrase", secret + b"\n")
    token = token_of(invoke("encrypt", "aesbridge-cbc", "--key-file", passphrase, stdin=b"x"))
    assert aesbridge_cbc.decrypt(token, secret) == b"x"


# --- refusals: exit status, stable code, one clean stderr line -----------------------------------------------

Build = Callable[[Keys, dict[str, bytes]], tuple[list[str], bytes]]


def _decrypt_case(
    label: str, key_items: tuple[str, ...] | None, stdin: Callable[[dict[str, bytes]], bytes]
) -> Build:
    """``decrypt`` of ``label``'s scheme, with its own key options or ``key_items``, reading ``stdin(tokens)``."""

    def build(keys: Keys, tokens: dict[str, bytes]) -> tuple[list[str], bytes]:
        scheme, _, dec, _ = CASES[label]
        return ["decrypt", scheme, *options(keys, *(dec if key_items is None else key_items))], stdin(tokens)

    return build


def _argv(*items: str, stdin: bytes = b"") -> Build:
    return lambda keys, tokens: (options(keys, *items), stdin)


def _token(label: str) -> Callable[[dict[str, bytes]], bytes]:
    return lambda tokens: tokens[label] + b"\n"


def _altered(label: str) -> Callable[[dict[str, bytes]], bytes]:
    return lambda tokens: altered(tokens[label])


def _constant(data: bytes) -> Callable[[dict[str, bytes]], bytes]:
    return lambda tokens: data


SIGN = ("--login", "throwaway-login", "--date", "2018-07-12T13:46:28.629Z")
REFUSALS: dict[str, tuple[Build, int, str]] = {
    # authentication failed: exit 1
    "wrong-key-aesbridge-gcm": (
        _decrypt_case("aesbridge-gcm", ("--key-file", "@other-passphrase"), _token("aesbridge-gcm")),
        1,
        "tag_mismatch",
    ),
    "wrong-key-aesbridge-cbc": (
        _decrypt_case("aesbridge-cbc", ("--key-file", "@other-passphrase"), _token("aesbridge-cbc")),
        1,
        "mac_mismatch",
    ),
    "wrong-key-laravel": (
        _decrypt_case("laravel-cbc", ("--key-file", "@other-laravel"), _token("laravel-cbc")),
        1,
        "mac_mismatch",
    ),
    "raw-secret-for-app-key-token": (
        _decrypt_case("laravel-cbc", ("--key-file", "@laravel"), _token("laravel-cbc-app-key")),
        1,
        "mac_mismatch",
    ),
    "wrong-key-aes-cbc-static": (
        _decrypt_case(
            "aes-cbc-static",
            ("--key-file", "@other-static-key", "--iv-file", "@static-iv"),
            _token("aes-cbc-static"),
        ),
        1,
        "bad_padding",
    ),
    "wrong-key-aes-gcm": (
        _decrypt_case("aes-gcm", ("--key-file", "@other-gcm"), _token("aes-gcm")),
        1,
        "tag_mismatch",
    ),
    "wrong-key-jwe": (
        _decrypt_case("jwe", ("--private-key", "@other-private"), _token("jwe")),
        1,
        "tag_mismatch",
    ),
    "wrong-key-aesbridge-legacy": (
        _argv(
            "decrypt",
            "aesbridge-legacy",
            "--key-file",
            "@other-passphrase",
            stdin=str(LEGACY_VECTORS[0]["token"]).encode(),
        ),
        1,
        "bad_padding",
    ),
    **{
        f"altered-{label}": (_decrypt_case(label, None, _altered(label)), 1, code)
        for label, code in (
            ("aesbridge-gcm", "tag_mismatch"),
            ("aesbridge-gcm-urlsafe", "tag_mismatch"),
            ("aesbridge-cbc", "mac_mismatch"),
            ("laravel-cbc", "mac_mismatch"),
            ("aes-cbc-static", "bad_padding"),
            ("aes-cbc-static-hex", "bad_padding"),
            ("aes-gcm", "tag_mismatch"),
            ("jwe", "tag_mismatch"),
        )
    },
    # malformed input: exit 2
    **{
        f"bad-base64-{label}": (_decrypt_case(label, None, _constant(b"not*base64!\n")), 2, "bad_token")
        for label in ("aesbridge-gcm", "aesbridge-cbc", "laravel-cbc", "aes-cbc-static", "aes-gcm")
    },
    "bad-base64-aesbridge-legacy": (
        _argv("decrypt", "aesbridge-legacy", "--key-file", "@passphrase", stdin=b"not*base64!"),
        2,
        "bad_token",
    ),
    "legacy-without-salted-header": (
        _argv(
            "decrypt", "aesbridge-legacy", "--key-file", "@passphrase", stdin=b64encode(bytes(32)).encode()
        ),
        2,
        "bad_token",
    ),
    "bad-hex-aes-cbc-static": (_decrypt_case("aes-cbc-static-hex", None, _constant(b"zz\n")), 2, "bad_token"),
    "bad-jwe": (_decrypt_case("jwe", None, _constant(b"not.a.jwe\n")), 2, "bad_token"),
    "non-ascii-jwe": (_decrypt_case("jwe", None, _constant(b"a.b.c.d.\xff\xfe")), 2, "bad_token"),
    "truncated-aes-gcm": (
        _decrypt_case("aes-gcm", None, _constant(b64encode(bytes(27)).encode())),
        2,
        "bad_token",
    ),
    "empty-stdin": (_decrypt_case("aes-gcm", None, _constant(b"")), 2, "bad_input"),
    "blank-stdin": (_decrypt_case("aesbridge-gcm", None, _constant(b" \r\n\n")), 2, "bad_input"),
    # bad keys: exit 2
    "static-key-not-32-bytes": (
        _argv(
            "encrypt", "aes-cbc-static", "--key-file", "@passphrase", "--iv-file", "@static-iv", stdin=b"x"
        ),
        2,
        "bad_key",
    ),
    "static-iv-not-16-bytes": (
        _argv(
            "encrypt", "aes-cbc-static", "--key-file", "@static-key", "--iv-file", "@static-key", stdin=b"x"
        ),
        2,
        "bad_key",
    ),
    "gcm-key-not-base64": (_argv("encrypt", "aes-gcm", "--key-file", "@garbage", stdin=b"x"), 2, "bad_key"),
    "gcm-key-wrong-length": (
        _argv("encrypt", "aes-gcm", "--key-file", "@laravel-app", stdin=b"x"),
        2,
        "bad_key",
    ),
    "empty-passphrase": (_argv("encrypt", "aesbridge-gcm", "--key-file", "@empty", stdin=b"x"), 2, "bad_key"),
    "empty-laravel-key": (_argv("encrypt", "laravel-cbc", "--key-file", "@empty", stdin=b"x"), 2, "bad_key"),
    "jwe-public-key-garbage": (_argv("encrypt", "jwe", "--public-key", "@garbage", stdin=b"x"), 2, "bad_key"),
    "jwe-decrypt-with-public-key": (
        _decrypt_case("jwe", ("--private-key", "@public"), _token("jwe")),
        2,
        "bad_key",
    ),
    # bad usage: exit 2
    "missing-key-file-encrypt": (_argv("encrypt", "aes-gcm", stdin=b"x"), 2, "usage"),
    "missing-key-file-decrypt": (_decrypt_case("aesbridge-gcm", (), _token("aesbridge-gcm")), 2, "usage"),
    "missing-key-file-sign": (_argv("sign", "dlocal-v2", *SIGN, stdin=b"{}"), 2, "usage"),
    "missing-iv-file": (
        _argv("encrypt", "aes-cbc-static", "--key-file", "@static-key", stdin=b"x"),
        2,
        "usage",
    ),
    "missing-public-key": (_argv("encrypt", "jwe", stdin=b"x"), 2, "usage"),
    "missing-private-key": (_decrypt_case("jwe", (), _token("jwe")), 2, "usage"),
    "key-file-does-not-exist": (
        _argv("encrypt", "aes-gcm", "--key-file", "/nonexistent/key", stdin=b"x"),
        2,
        "usage",
    ),
    "key-file-is-a-directory": (_argv("encrypt", "aes-gcm", "--key-file", "/", stdin=b"x"), 2, "usage"),
    "unknown-scheme-encrypt": (_argv("encrypt", "rot13", "--key-file", "@gcm", stdin=b"x"), 2, "usage"),
    "unknown-scheme-decrypt": (_argv("decrypt", "rot13", "--key-file", "@gcm", stdin=b"x"), 2, "usage"),
    "unknown-scheme-keygen": (_argv("keygen", "rot13"), 2, "usage"),
    "unknown-scheme-sign": (_argv("sign", "v1-hmac", "--key-file", "@dlocal", *SIGN), 2, "usage"),
    "encrypt-aesbridge-legacy": (
        _argv("encrypt", "aesbridge-legacy", "--key-file", "@passphrase", stdin=b"x"),
        2,
        "usage",
    ),
    "no-command": (_argv(), 2, "usage"),
    "unknown-command": (_argv("seal", "aes-gcm"), 2, "usage"),
    "urlsafe-on-aes-gcm": (
        _argv("encrypt", "aes-gcm", "--key-file", "@gcm", "--urlsafe", stdin=b"x"),
        2,
        "usage",
    ),
    "encoding-on-aesbridge": (
        _argv("encrypt", "aesbridge-gcm", "--key-file", "@passphrase", "--encoding", "hex", stdin=b"x"),
        2,
        "usage",
    ),
    "iv-file-on-aes-gcm": (
        _argv("decrypt", "aes-gcm", "--key-file", "@gcm", "--iv-file", "@static-iv", stdin=b"x"),
        2,
        "usage",
    ),
    "alg-on-aes-gcm": (
        _argv("encrypt", "aes-gcm", "--key-file", "@gcm", "--alg", "RSA-OAEP", stdin=b"x"),
        2,
        "usage",
    ),
    "key-file-on-jwe": (_argv("encrypt", "jwe", "--key-file", "@public", stdin=b"x"), 2, "usage"),
    "private-key-on-aes-gcm": (
        _argv("decrypt", "aes-gcm", "--key-file", "@gcm", "--private-key", "@private", stdin=b"x"),
        2,
        "usage",
    ),
    "urlsafe-on-decrypt": (
        _argv("decrypt", "aesbridge-gcm", "--key-file", "@passphrase", "--urlsafe"),
        2,
        "usage",
    ),
    "bad-encoding-choice": (
        _argv(
            "encrypt",
            "aes-cbc-static",
            "--key-file",
            "@static-key",
            "--iv-file",
            "@static-iv",
            "--encoding",
            "b32",
        ),
        2,
        "usage",
    ),
    "missing-login": (
        _argv("sign", "dlocal-v2", "--key-file", "@dlocal", "--date", "2018-07-12T13:46:28.629Z"),
        2,
        "usage",
    ),
    # a key pasted where an argument goes is refused without being echoed
    "key-as-argument": (
        _argv("encrypt", "aes-gcm", "--key-file", "@gcm", GCM_KEY.decode(), stdin=b"x"),
        2,
        "usage",
    ),
    "key-as-option": (_argv("encrypt", "aes-gcm", "--key", GCM_KEY.decode(), stdin=b"x"), 2, "usage"),
    "key-as-scheme": (_argv("encrypt", PASSPHRASE.decode(), stdin=b"x"), 2, "usage"),
    "key-as-encoding": (
        _argv("decrypt", "aes-cbc-static", "--key-file", "@static-key", "--encoding", STATIC_KEY.decode()),
        2,
        "usage",
    ),
    "key-as-flag-value": (_argv("encrypt", "aesbridge-gcm", f"--urlsafe={PASSPHRASE.decode()}"), 2, "usage"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusal(keys: Keys, tokens: dict[str, bytes], case: str) -> None:
    build, status, code = REFUSALS[case]
    argv, stdin = build(keys, tokens)
    assert_refused(invoke(*argv, stdin=stdin), status, code, *SECRETS, stdin, PLAINTEXT)


def test_legacy_vector_opens_with_its_own_passphrase(tmp_path: Path) -> None:
    vector = LEGACY_VECTORS[0]
    passphrase = key_file(tmp_path, "legacy", str(vector["passphrase"]).encode() + b"\n")
    opened = invoke(
        "decrypt", "aesbridge-legacy", "--key-file", passphrase, stdin=str(vector["token"]).encode()
    )
    assert opened == Outcome(0, bytes.fromhex(vector["plaintext_hex"]), "")


def test_unexpected_errors_are_one_line_without_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any) -> int:
        raise RuntimeError("PLAINTEXT-MARK from deep inside")

    monkeypatch.setattr(cli, "run", explode)
    assert_refused(invoke("keygen", "aes-gcm"), 2, "internal_error")


@pytest.mark.parametrize(("error", "status"), [(BrokenPipeError, 0), (KeyboardInterrupt, 130)])
def test_broken_pipe_and_interrupt(
    monkeypatch: pytest.MonkeyPatch, error: type[BaseException], status: int
) -> None:
    def stop(*args: Any) -> int:
        raise error

    monkeypatch.setattr(cli, "run", stop)
    assert invoke("keygen", "aes-gcm") == Outcome(status, b"", "")


def test_non_utf8_login_is_refused(keys: Keys) -> None:
    # argv decodes undecodable bytes to lone surrogates; they cannot enter the signed message.
    outcome = invoke("sign", "dlocal-v2", "--key-file", keys["dlocal"], "--login", "x\udcff", "--date", "d")
    assert_refused(outcome, 2, "bad_input", *SECRETS)


# --- sign and verify -----------------------------------------------------------------------------------------

LOGIN, DATE = "throwaway-login", "2018-07-12T13:46:28.629Z"
BODY = b'{"amount":120.00,"currency":"USD","note":"PLAINTEXT-MARK \xc3\xa9"}'


def expected_signature(body: bytes) -> str:
    return hmac.new(DLOCAL_SECRET, LOGIN.encode() + DATE.encode() + body, hashlib.sha256).hexdigest()


def one_digit_off(signature: str) -> str:
    return signature[:-1] + ("1" if signature[-1] == "0" else "0")


def test_sign_prints_the_authorization_header(keys: Keys) -> None:
    signed = invoke(
        "sign", "dlocal-v2", "--key-file", keys["dlocal"], "--login", LOGIN, "--date", DATE, stdin=BODY
    )
    assert signed == Outcome(0, f"V2-HMAC-SHA256, Signature: {expected_signature(BODY)}\n".encode(), "")


@pytest.mark.parametrize(
    ("presented", "status", "code"),
    [
        (lambda: f"V2-HMAC-SHA256, Signature: {expected_signature(BODY)}", 0, None),
        (lambda: expected_signature(BODY), 0, None),
        (lambda: expected_signature(BODY).upper(), 0, None),
        (lambda: f"V2-HMAC-SHA256, Signature: {expected_signature(b'')}", 1, "signature_mismatch"),
        (lambda: one_digit_off(expected_signature(BODY)), 1, "signature_mismatch"),
        (lambda: f"V1-HMAC-SHA256, Signature: {expected_signature(BODY)}", 2, "bad_token"),
        (lambda: "zz", 2, "bad_token"),
    ],
    ids=["header", "bare-hex", "upper-hex", "other-body", "one-digit-off", "other-version", "not-hex"],
)
def test_verify(keys: Keys, presented: Callable[[], str], status: int, code: str | None) -> None:
    common = ("dlocal-v2", "--key-file", keys["dlocal"], "--login", LOGIN, "--date", DATE)
    outcome = invoke("verify", *common, "--signature", presented(), stdin=BODY)
    if code is None:
        assert outcome == Outcome(0, b"", "")
    else:
        assert_refused(outcome, status, code, *SECRETS, BODY)


# --- keygen --------------------------------------------------------------------------------------------------

ALNUM = re.compile(r"[A-Za-z0-9]+")


def _material(scheme: str) -> dict[str, str]:
    made = invoke("keygen", scheme)
    assert (made.status, made.stderr) == (0, "")
    assert made.stdout.endswith(b"}\n")
    material: dict[str, str] = json.loads(made.stdout)
    assert material["scheme"] == scheme
    return material


@pytest.mark.parametrize("scheme", cli.offered("keygen"))
def test_keygen_material_works(tmp_path: Path, scheme: str) -> None:
    material = _material(scheme)
    pairs: list[tuple[str, tuple[str, ...], tuple[str, ...]]]

    def file(name: str) -> str:
        return key_file(tmp_path, name, material[name].encode() + b"\n")  # as `jq -r` writes it

    if scheme == "aes-cbc-static":
        assert len(material["key"]) == 32
        assert ALNUM.fullmatch(material["key"])
        assert len(material["iv"]) == 16
        assert ALNUM.fullmatch(material["iv"])
        runs = [
            ("--key-file", file("key"), "--iv-file", file("iv"), "--encoding", encoding)
            for encoding in ("base64", "hex")
        ]
        pairs = [(scheme, run, run) for run in runs]
    elif scheme == "jwe":
        pairs = [
            (
                scheme,
                ("--public-key", file("public_key"), "--alg", alg),
                ("--private-key", file("private_key")),
            )
            for alg in ("RSA-OAEP-256", "RSA-OAEP")
        ]
    elif scheme == "dlocal-v2":
        sign = ("dlocal-v2", "--key-file", file("secret_key"), "--login", LOGIN, "--date", DATE)
        header = invoke("sign", *sign, stdin=BODY).stdout.decode().strip()
        assert invoke("verify", *sign, "--signature", header, stdin=BODY) == Outcome(0, b"", "")
        return
    elif scheme == "aesbridge-legacy":
        # Decrypt only: tests/interop/test_cli_interop.py has aes_bridge seal a value under it.
        assert len(material["passphrase"]) >= 32
        assert URLSAFE_B64.fullmatch(material["passphrase"])
        return
    else:
        name = "passphrase" if scheme.startswith("aesbridge-") else "key"
        pairs = [(scheme, ("--key-file", file(name)), ("--key-file", file(name)))]
    for used, enc, dec in pairs:
        token = token_of(invoke("encrypt", used, *enc, stdin=PLAINTEXT))
        assert invoke("decrypt", used, *dec, stdin=token) == Outcome(0, PLAINTEXT, "")


# jwe: RSA keygen is slow
@pytest.mark.parametrize("scheme", [s for s in cli.offered("keygen") if s != "jwe"])
def test_keygen_is_fresh_every_time(scheme: str) -> None:
    first, second = _material(scheme), _material(scheme)
    assert first != second
    assert set(first.values()) & set(second.values()) == {scheme}


def test_keygen_laravel_is_an_app_key_of_32_bytes() -> None:
    key = _material("laravel-cbc")["key"]
    assert key.startswith("base64:")
    assert len(b64decode(key.removeprefix("base64:"))) == 32


def test_keygen_aes_gcm_is_base64_of_32_bytes() -> None:
    assert len(b64decode(_material("aes-gcm")["key"])) == 32


# --- the registry drives the command line -------------------------------------------------------------------

ALL_NAMES = {name for kind in ("cipher", "signer", "verifier", "layout") for name in schemes.names(kind)}


def test_cli_never_branches_on_a_scheme_name() -> None:
    # Every scheme reaches the command line through the registry: no literal in cli.py is a scheme's name
    # or a prefix of one (as in `scheme.startswith("aesbridge-")`); prose such as the examples may still
    # mention a scheme inside a longer string.
    import ast

    tree = ast.parse(Path(cli.__file__).read_text("utf-8"))
    literals = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert not literals & ALL_NAMES, f"cli.py names schemes {sorted(literals & ALL_NAMES)}"
    prefixes = {
        text for text in literals if text.endswith("-") and any(n.startswith(text) for n in ALL_NAMES)
    }
    assert not prefixes, f"cli.py tests scheme names by prefix {sorted(prefixes)}"


def test_an_option_of_the_scheme_reaches_the_cli_and_others_refuse_it(keys: Keys) -> None:
    hexed = invoke(
        "encrypt",
        *options(keys, "aes-cbc-static", "--key-file", "@static-key", "--iv-file", "@static-iv"),
        "--encoding",
        "hex",
        stdin=b"value",
    )
    token = token_of(hexed)
    assert LOWER_HEX.fullmatch(token.decode())
    opened = invoke(
        "decrypt",
        *options(keys, "aes-cbc-static", "--key-file", "@static-key", "--iv-file", "@static-iv"),
        "--encoding",
        "hex",
        stdin=token,
    )
    assert opened == Outcome(0, b"value", "")
    for argv in (
        ("encrypt", "aes-gcm", "--key-file", "@gcm", "--encoding", "hex"),
        ("encrypt", "aes-gcm", "--key-file", "@gcm", "--encoding=hex"),
        ("decrypt", "aes-gcm", "--key-file", "@gcm", "--encoding", "hex"),
    ):
        refused = invoke(*options(keys, *argv), stdin=b"x")
        assert_refused(refused, 2, "usage", *SECRETS)
        assert "--encoding does not apply to" in refused.stderr
        assert "aes-gcm" in refused.stderr


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (("encrypt", "aes-gcm", "--key-file", "@gcm", "--urlsafe"), "--urlsafe"),
        (("encrypt", "aes-gcm", "--key-file", "@gcm", "--alg", "RSA-OAEP"), "--alg"),
        (("decrypt", "aesbridge-gcm", "--key-file", "@passphrase", "--urlsafe"), "--urlsafe"),
        (("decrypt", "jwe", "--private-key", "@private", "--alg", "RSA-OAEP"), "--alg"),
        (("encrypt", "jwe", "--key-file", "@public"), "--key-file"),
        (("decrypt", "aes-gcm", "--key-file", "@gcm", "--iv-file", "@static-iv"), "--iv-file"),
        (("sign", "dlocal-v2", "--key-file", "@dlocal", *SIGN, "--lines"), "--lines"),
        (("keygen", "aes-gcm", "--urlsafe"), "--urlsafe"),
    ],
)
def test_a_refused_option_is_named_and_its_value_is_not(keys: Keys, argv: tuple[str, ...], flag: str) -> None:
    refused = invoke(*options(keys, *argv), stdin=b"x")
    assert_refused(refused, 2, "usage", *SECRETS)
    assert f": {flag} does not apply to {argv[0]} {argv[1]}\n" in refused.stderr


@pytest.mark.parametrize("name", schemes.names("cipher"))
def test_each_cipher_offers_its_key_files_and_options(name: str) -> None:
    import dataclasses

    cipher = schemes.lookup("cipher", name)
    fields = [f.name.replace("_", "-") for f in dataclasses.fields(cipher.options_type)]
    for command in ("encrypt", "decrypt"):
        if command == "encrypt" and not cipher.can_encrypt:
            assert_refused(invoke(command, name, "--help"), 2, "usage")
            continue
        shown = invoke(command, name, "--help")
        assert shown.status == 0
        text = shown.stdout.decode()
        assert schemes.summary("cipher", name) in " ".join(text.split())
        for slot in cipher.key_slots:
            assert (slot.decrypt_flag if command == "decrypt" else slot.encrypt_flag) in text
        if command == "encrypt":
            assert all(f"--{field}" in text for field in fields), text
        for choices in (cipher.options_type.choices(f.name) for f in dataclasses.fields(cipher.options_type)):
            if choices and command == "encrypt":
                assert "{" + ",".join(choices) + "}" in text


# jwe: RSA keygen is slow
@pytest.mark.parametrize("name", [n for n in schemes.names("cipher") if n != "jwe"])
def test_keygen_is_the_ciphers_own_material_under_its_name(name: str) -> None:
    cipher = schemes.lookup("cipher", name)
    material = _material(name)
    assert next(iter(material)) == "scheme"
    assert set(material) - {"scheme"} == set(cipher.keygen(cipher.options({})))
    assert {slot.generated for slot in cipher.key_slots} <= set(material)


def test_sign_verify_and_keygen_offer_only_signers_that_sign_outside_a_profile(keys: Keys) -> None:
    standalone = [n for n in schemes.names("signer") if schemes.lookup("signer", n).signature_fields]
    assert standalone == ["dlocal-v2"]
    for command in ("sign", "verify"):
        assert list(cli.offered(command)) == standalone
    assert list(cli.offered("keygen")) == [*schemes.names("cipher"), *standalone]
    for name in schemes.names("signer"):
        if name not in standalone:
            for argv in (("sign", name, "--key-file", "@dlocal", *SIGN), ("keygen", name)):
                assert_refused(invoke(*options(keys, *argv), stdin=b"{}"), 2, "usage", *SECRETS)


def test_scheme_may_follow_its_options(keys: Keys) -> None:
    token = token_of(invoke("encrypt", "--key-file", keys["gcm"], "aes-gcm", stdin=b"value"))
    assert invoke("decrypt", "--key-file", keys["gcm"], "aes-gcm", stdin=token) == Outcome(0, b"value", "")


def test_lines_parse_an_rsa_key_once(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[object] = []
    real = jwe.load_key

    def counted(material: Any) -> Any:
        if isinstance(material, str | bytes):  # parsing text; a loaded JWK is only checked
            loads.append(material)
        return real(material)

    monkeypatch.setattr(jwe, "load_key", counted)
    sealed = encrypt(keys, "jwe", b"one\ntwo\nthree\n", "--lines")
    assert sealed.stdout.count(b"\n") == 3
    opened = decrypt(keys, "jwe", sealed.stdout, "--lines")
    assert opened == Outcome(0, b"one\ntwo\nthree\n", "")
    assert len(loads) == 2, "the key was parsed per value, not once per command"


def test_help_imports_no_scheme_module() -> None:
    probe = (
        "import io, sys\n"
        "from sealgate import cli\n"
        "for argv in (['--help'], ['encrypt', '--help'], ['decrypt', '--help']):\n"
        "    try:\n"
        "        cli.run(argv, io.BytesIO(), io.BytesIO())\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('sealgate.schemes.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, check=True, timeout=60, text=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


# --- help and version ----------------------------------------------------------------------------------------


def test_help_lists_commands_and_exit_statuses() -> None:
    shown = invoke("--help")
    assert (shown.status, shown.stderr) == (0, "")
    text = shown.stdout.decode()
    assert text.startswith("usage: sealgate")
    assert all(command in text for command in ("encrypt", "decrypt", "sign", "verify", "keygen"))
    assert "exit status: 0 ok, 1 authentication failed, 2 bad usage" in text


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_command_help_names_every_scheme(command: str) -> None:
    shown = invoke(command, "--help")
    assert shown.status == 0
    names = [s for s in schemes.names("cipher") if command == "decrypt" or s != "aesbridge-legacy"]
    assert all(name in shown.stdout.decode() for name in names)


def test_version() -> None:
    from sealgate import __version__

    assert invoke("--version") == Outcome(0, f"sealgate {__version__}\n".encode(), "")


# --- real processes: python -m sealgate and the sealgate script ----------------------------------------------

ENTRIES = {"module": MODULE, "script": SCRIPT}


@pytest.fixture(scope="module", params=sorted(ENTRIES))
def entry(request: pytest.FixtureRequest) -> tuple[str, ...]:
    command = ENTRIES[request.param]
    if request.param == "script":
        assert Path(command[0]).exists(), "the sealgate console script is not installed (pip install -e .)"
    return command


def test_process_round_trip_is_byte_exact(keys: Keys, entry: tuple[str, ...]) -> None:
    sealed = spawn(entry, "encrypt", "aesbridge-gcm", "--key-file", keys["passphrase"], stdin=PLAINTEXT)
    assert (sealed.status, sealed.stderr) == (0, "")
    assert STANDARD_B64.fullmatch(sealed.stdout.decode()[:-1])
    assert sealed.stdout.endswith(b"\n")
    opened = spawn(entry, "decrypt", "aesbridge-gcm", "--key-file", keys["passphrase"], stdin=sealed.stdout)
    assert opened == Outcome(0, PLAINTEXT, "")


def test_process_lines(keys: Keys, entry: tuple[str, ...]) -> None:
    sealed = spawn(entry, "encrypt", "aes-gcm", "--key-file", keys["gcm"], "--lines", stdin=LINES_IN)
    assert sealed.stdout.count(b"\n") == 4
    opened = spawn(entry, "decrypt", "aes-gcm", "--key-file", keys["gcm"], "--lines", stdin=sealed.stdout)
    assert opened == Outcome(0, LINES_OUT, "")


def test_process_sign_and_verify(keys: Keys, entry: tuple[str, ...]) -> None:
    common = ("dlocal-v2", "--key-file", keys["dlocal"], "--login", LOGIN, "--date", DATE)
    signed = spawn(entry, "sign", *common, stdin=BODY)
    assert signed == Outcome(0, f"V2-HMAC-SHA256, Signature: {expected_signature(BODY)}\n".encode(), "")
    header = signed.stdout.decode()[:-1]
    assert spawn(entry, "verify", *common, "--signature", header, stdin=BODY) == Outcome(0, b"", "")
    assert_refused(
        spawn(entry, "verify", *common, "--signature", header, stdin=BODY + b" "),
        1,
        "signature_mismatch",
        *SECRETS,
    )


@pytest.mark.parametrize(
    ("argv", "stdin_label", "status", "code"),
    [
        (("decrypt", "aesbridge-gcm", "--key-file", "@other-passphrase"), "aesbridge-gcm", 1, "tag_mismatch"),
        (("decrypt", "laravel-cbc", "--key-file", "@laravel"), "altered-laravel-cbc", 1, "mac_mismatch"),
        (("decrypt", "aes-gcm", "--key-file", "@gcm"), "bad-base64", 2, "bad_token"),
        (("encrypt", "aes-gcm"), "plaintext", 2, "usage"),
        (("encrypt", "aes-gcm", "--key-file", "/nonexistent/key"), "plaintext", 2, "usage"),
        (("encrypt", "rot13", "--key-file", "@gcm"), "plaintext", 2, "usage"),
        (("encrypt", "aesbridge-legacy", "--key-file", "@passphrase"), "plaintext", 2, "usage"),
    ],
    ids=[
        "wrong-key",
        "altered",
        "bad-base64",
        "missing-key-file",
        "unreadable-key-file",
        "unknown-scheme",
        "encrypt-legacy",
    ],
)
def test_process_refusals(
    keys: Keys,
    tokens: dict[str, bytes],
    argv: tuple[str, ...],
    stdin_label: str,
    status: int,
    code: str,
) -> None:
    stdin = {
        "plaintext": PLAINTEXT,
        "bad-base64": b"not*base64!",
        "altered-laravel-cbc": altered(tokens["laravel-cbc"]),
    }.get(stdin_label) or tokens[stdin_label]
    outcome = spawn(MODULE, *options(keys, *argv), stdin=stdin)
    assert_refused(outcome, status, code, *SECRETS, stdin, PLAINTEXT)


def test_process_script_refusal(keys: Keys, tokens: dict[str, bytes]) -> None:
    outcome = spawn(SCRIPT, "decrypt", "aes-gcm", "--key-file", keys["other-gcm"], stdin=tokens["aes-gcm"])
    assert_refused(outcome, 1, "tag_mismatch", *SECRETS, tokens["aes-gcm"])


def test_process_keygen(entry: tuple[str, ...]) -> None:
    made = spawn(entry, "keygen", "aes-cbc-static")
    assert (made.status, made.stderr) == (0, "")
    material = json.loads(made.stdout)
    assert len(material["key"]) == 32
    assert len(material["iv"]) == 16


# --- import hygiene: a command imports only what it needs ----------------------------------------------------

HEAVY = {"jwcrypto", "boto3", "botocore", "aws_lambda_powertools"}

# Runs commands through sealgate.cli.run in one fresh interpreter, then reports statuses and sys.modules.
DRIVER = """
import io, json, sys
from sealgate import cli
from sealgate.errors import SealgateError
statuses = []
for argv, stdin_hex in json.loads(sys.stdin.read()):
    try:
        statuses.append(cli.run(argv, io.BytesIO(bytes.fromhex(stdin_hex)), io.BytesIO()))
    except SealgateError as error:
        statuses.append(error.code)
print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))
"""


def loaded_after(commands: list[tuple[list[str], bytes]]) -> set[str]:
    """Top-level packages imported by a fresh interpreter that ran ``commands``; each must succeed."""
    payload = json.dumps([(argv, stdin.hex()) for argv, stdin in commands]).encode()
    done = subprocess.run(
        [sys.executable, "-c", DRIVER], input=payload, capture_output=True, check=True, timeout=60
    )
    report = json.loads(done.stdout)
    assert report["statuses"] == [0] * len(commands), report["statuses"]
    return {name.split(".")[0] for name in report["modules"]}


def test_aes_commands_do_not_import_jwcrypto_boto3_or_powertools(
    keys: Keys, tokens: dict[str, bytes]
) -> None:
    commands: list[tuple[list[str], bytes]] = []
    for label, (scheme, enc, dec, _) in CASES.items():
        if scheme != "jwe":
            commands.append((["encrypt", scheme, *options(keys, *enc), "--lines"], LINES_IN))
            commands.append((["decrypt", scheme, *options(keys, *dec)], tokens[label]))
    vector = LEGACY_VECTORS[0]
    folder = Path(keys["passphrase"]).parent
    legacy_key = key_file(folder, "legacy-vector", str(vector["passphrase"]).encode())
    commands.append(
        (["decrypt", "aesbridge-legacy", "--key-file", legacy_key], str(vector["token"]).encode())
    )
    commands += [(["keygen", scheme], b"") for scheme in schemes.names("cipher") if scheme != "jwe"]
    loaded = loaded_after(commands)
    assert "cryptography" in loaded
    assert "sealgate" in loaded
    assert not loaded & HEAVY, f"an AES command imported {sorted(loaded & HEAVY)}"


def test_sign_verify_and_keygen_dlocal_import_no_cryptography(keys: Keys) -> None:
    common = ["dlocal-v2", "--key-file", keys["dlocal"], "--login", LOGIN, "--date", DATE]
    loaded = loaded_after(
        [
            (["sign", *common], BODY),
            (["verify", *common, "--signature", expected_signature(BODY)], BODY),
            (["keygen", "dlocal-v2"], b""),
        ]
    )
    assert "sealgate" in loaded
    assert not loaded & (HEAVY | {"cryptography"})


def test_jwe_command_does_import_jwcrypto(keys: Keys) -> None:
    # Control: the check above can see jwcrypto when a command does load it.
    assert "jwcrypto" in loaded_after([(["encrypt", "jwe", "--public-key", keys["public"]], b"card")])


def test_python_m_sealgate_aes_command_imports_nothing_heavy(keys: Keys) -> None:
    done = subprocess.run(
        [*MODULE[:1], "-X", "importtime", *MODULE[1:], "encrypt", "aes-gcm", "--key-file", keys["gcm"]],
        input=b"x",
        capture_output=True,
        check=True,
        timeout=60,
    )
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert {"sealgate", "cryptography", "argparse"} <= imported
    assert not imported & HEAVY, f"python -m sealgate imported {sorted(imported & HEAVY)}"
