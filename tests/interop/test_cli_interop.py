"""The ``sealgate`` command line's tokens, signatures and keygen material, checked by the independent oracles.

Directions, per scheme:

- aesbridge-gcm / -cbc: ``aes_bridge`` decrypts what ``sealgate encrypt`` prints (standard, ``--urlsafe`` after
  the seed's conversion back, and ``--lines``); ``sealgate decrypt`` opens what ``aes_bridge`` makes (live
  and the pinned vectors), including the Infosimples form.
- aesbridge-legacy: ``sealgate decrypt`` opens ``aes_bridge.encrypt_legacy`` tokens (live and pinned).
- aes-cbc-static: ``openssl enc`` and PHP ``openssl_*`` both ways, base64 and hex.
- laravel-cbc, aes-gcm: PHP (PayKun's own ``encrypt()``, a Laravel-style decrypt, ``openssl_*``) both ways.
- jwe: ``joserfc`` both ways and both algs; tokens ``joserfc`` makes with other algorithms are refused.
- dlocal-v2: ``sealgate sign`` equals Python's ``hmac`` and the PHP-made vectors; ``verify`` accepts them.

Every key is a throwaway test key, fresh per run or taken from the vector files (marked as such).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sealgate.codec import b64decode
from tests.cli_harness import SCRIPT, Outcome, assert_refused, invoke, key_file, spawn
from tests.interop.aesbridge_oracle import infosimples_form, load_oracle, standard_form, vectors
from tests.interop.cipher_oracle import PhpBatch, ok

pytestmark = pytest.mark.interop

VECTORS = Path(__file__).parent / "vectors"
JWE_VECTORS = json.loads((VECTORS / "jwe.json").read_text("utf-8"))
SIGNATURE_VECTORS = json.loads((VECTORS / "dlocal_v2.json").read_text("utf-8"))["vectors"]
STATIC_VECTORS = json.loads((VECTORS / "aes_cbc_static.json").read_text("utf-8"))["vectors"]
GCM_VECTORS = json.loads((VECTORS / "aes_gcm.json").read_text("utf-8"))["vectors"]
LARAVEL_VECTORS = json.loads((VECTORS / "laravel_cbc.json").read_text("utf-8"))["vectors"]
JOSERFC = "pip install joserfc (a dev dependency in pyproject.toml)"

# Throwaway test keys, fresh on every run.
PASSPHRASE = ("throwaway-cli-" + secrets.token_urlsafe(12) + " ção").encode()
LARAVEL_SECRET = ("throwaway/" + secrets.token_urlsafe(24)).encode()
LARAVEL_APP_KEY = b"base64:" + base64.b64encode(secrets.token_bytes(32))
STATIC_KEY = secrets.token_hex(16).encode()  # 32 characters
STATIC_IV = secrets.token_hex(8).encode()  # 16 characters
GCM_KEY = base64.b64encode(secrets.token_bytes(32))
DLOCAL_SECRET = ("throwaway-dlocal-" + secrets.token_hex(8)).encode()

PLAINTEXTS = [b"", b"DATA_EXAMPLE", "123.456.789-09 São Paulo ✓".encode(), bytes(range(256)) * 2]
LINES = [b"123.456.789-09", b"", "São Paulo \t✓".encode(), b"x" * 500]

Keys = dict[str, str]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Key files by name, written as an operator would (one trailing newline, sometimes CR LF, or none)."""
    folder = tmp_path_factory.mktemp("keys")
    contents = {
        "passphrase": PASSPHRASE + b"\n",
        "laravel": LARAVEL_SECRET + b"\r\n",
        "laravel-app": LARAVEL_APP_KEY + b"\n",
        "static-key": STATIC_KEY + b"\n",
        "static-iv": STATIC_IV,
        "gcm": GCM_KEY + b"\n",
        "dlocal": DLOCAL_SECRET + b"\n",
        "public": JWE_VECTORS["public_pem"].encode(),
        "private": JWE_VECTORS["private_pem"].encode(),
    }
    return {name: key_file(folder, name, data) for name, data in contents.items()}


def sealed(*argv: str, stdin: bytes) -> bytes:
    """The token(s) ``sealgate encrypt`` printed, checked to be a clean success."""
    outcome = invoke("encrypt", *argv, stdin=stdin)
    assert (outcome.status, outcome.stderr) == (0, ""), outcome.stderr
    assert outcome.stdout.endswith(b"\n")
    return outcome.stdout


def opened(*argv: str, stdin: bytes) -> bytes:
    """What ``sealgate decrypt`` printed, checked to be a clean success."""
    outcome = invoke("decrypt", *argv, stdin=stdin)
    assert (outcome.status, outcome.stderr) == (0, ""), outcome.stderr
    return outcome.stdout


# --- AesBridge: aes_bridge ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aes_bridge(oracle_module: Callable[[str, str], object]) -> Any:
    return load_oracle(oracle_module)


@pytest.mark.parametrize("urlsafe", [False, True], ids=["standard", "urlsafe"])
@pytest.mark.parametrize("mode", ["gcm", "cbc"])
def test_aes_bridge_decrypts_cli_tokens(aes_bridge: Any, keys: Keys, mode: str, urlsafe: bool) -> None:
    reader = {"gcm": aes_bridge.decrypt_gcm, "cbc": aes_bridge.decrypt_cbc}[mode]
    flags = ("--urlsafe",) if urlsafe else ()
    for plaintext in PLAINTEXTS:
        token = sealed(f"aesbridge-{mode}", "--key-file", keys["passphrase"], *flags, stdin=plaintext)
        text = token.decode("ascii").removesuffix("\n")
        if urlsafe:
            assert not set(text) & set("+/=")
            text = standard_form(text).decode()
        assert reader(text, PASSPHRASE) == plaintext, "aes_bridge read another plaintext"


def test_aes_bridge_decrypts_cli_lines(aes_bridge: Any, keys: Keys) -> None:
    tokens = sealed(
        "aesbridge-gcm", "--key-file", keys["passphrase"], "--urlsafe", "--lines", stdin=b"\r\n".join(LINES)
    ).splitlines()
    assert len(tokens) == len(LINES)
    assert [aes_bridge.decrypt(standard_form(t.decode()), PASSPHRASE) for t in tokens] == LINES


def test_aes_bridge_decrypts_the_sealgate_script_output(aes_bridge: Any, keys: Keys) -> None:
    outcome = spawn(
        SCRIPT, "encrypt", "aesbridge-gcm", "--key-file", keys["passphrase"], "--urlsafe", stdin=PLAINTEXTS[3]
    )
    assert (outcome.status, outcome.stderr) == (0, "")
    assert aes_bridge.decrypt(standard_form(outcome.stdout.decode().strip()), PASSPHRASE) == PLAINTEXTS[3]


@pytest.mark.parametrize("form", ["gcm", "infosimples", "cbc", "legacy"])
def test_cli_decrypts_aes_bridge_tokens(aes_bridge: Any, keys: Keys, form: str) -> None:
    scheme, make = {
        "gcm": ("aesbridge-gcm", aes_bridge.encrypt_gcm),
        "infosimples": ("aesbridge-gcm", lambda p, k: infosimples_form(aes_bridge.encrypt(p, k)).encode()),
        "cbc": ("aesbridge-cbc", aes_bridge.encrypt_cbc),
        "legacy": ("aesbridge-legacy", aes_bridge.encrypt_legacy),
    }[form]
    for plaintext in PLAINTEXTS:
        token = make(plaintext, PASSPHRASE)
        assert opened(scheme, "--key-file", keys["passphrase"], stdin=token + b"\n") == plaintext


def test_cli_lines_decrypts_aes_bridge_tokens(aes_bridge: Any, keys: Keys) -> None:
    tokens = b"\r\n".join(aes_bridge.encrypt_gcm(line, PASSPHRASE) for line in LINES) + b"\r\n"
    assert opened("aesbridge-gcm", "--key-file", keys["passphrase"], "--lines", stdin=tokens) == b"".join(
        line + b"\n" for line in LINES
    )


# A few of each kind (text, 32-char and binary passphrases; 256-byte plaintexts); all the legacy ones (MD5 is cheap).
PINNED = [
    (kind, scheme, vector)
    for kind, scheme, picks in (
        ("gcm", "aesbridge-gcm", (1, 9, 15)),
        ("gcm_infosimples", "aesbridge-gcm", (1, 9, 15)),
        ("cbc", "aesbridge-cbc", (1, 9, 15)),
        ("legacy", "aesbridge-legacy", range(18)),
    )
    for number, vector in enumerate(vectors(kind))
    if number in picks
]


@pytest.mark.parametrize(
    ("kind", "scheme", "vector"), PINNED, ids=[f"{kind}-{vector.label}" for kind, _, vector in PINNED]
)
def test_cli_decrypts_pinned_aes_bridge_vectors(tmp_path: Path, kind: str, scheme: str, vector: Any) -> None:
    passphrase = vector.passphrase if isinstance(vector.passphrase, bytes) else vector.passphrase.encode()
    key = key_file(tmp_path, "passphrase", passphrase + b"\n")
    assert opened(scheme, "--key-file", key, stdin=vector.token.encode()) == vector.plaintext


@pytest.mark.parametrize("scheme", ["aesbridge-gcm", "aesbridge-cbc", "aesbridge-legacy"])
def test_keygen_passphrase_works_with_aes_bridge(aes_bridge: Any, tmp_path: Path, scheme: str) -> None:
    passphrase = json.loads(invoke("keygen", scheme).stdout)["passphrase"]
    key = key_file(tmp_path, "passphrase", passphrase.encode() + b"\n")
    mode = scheme.removeprefix("aesbridge-")
    make = getattr(aes_bridge, f"encrypt_{mode}")
    assert opened(scheme, "--key-file", key, stdin=make(b"DATA_EXAMPLE", passphrase)) == b"DATA_EXAMPLE"
    if mode != "legacy":  # sealgate never writes the legacy format
        token = sealed(scheme, "--key-file", key, stdin=b"DATA_EXAMPLE")
        assert getattr(aes_bridge, f"decrypt_{mode}")(token.strip(), passphrase) == b"DATA_EXAMPLE"


# --- aes-cbc-static: openssl enc -------------------------------------------------------------------------------


def _openssl(openssl: str, key: bytes, iv: bytes, *args: str, data: bytes) -> bytes:
    command = [openssl, "enc", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex(), *args]
    return subprocess.run(command, input=data, capture_output=True, check=True, timeout=30).stdout


def _static(keys: Keys, encoding: str, *extra: str) -> tuple[str, ...]:
    return (
        "aes-cbc-static",
        "--key-file",
        keys["static-key"],
        "--iv-file",
        keys["static-iv"],
        "--encoding",
        encoding,
        *extra,
    )


@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_openssl_decrypts_cli_tokens(openssl: str, keys: Keys, encoding: str) -> None:
    for plaintext in PLAINTEXTS:
        token = sealed(*_static(keys, encoding), stdin=plaintext)
        if encoding == "base64":
            clear = _openssl(openssl, STATIC_KEY, STATIC_IV, "-d", "-a", "-A", data=token)
        else:
            clear = _openssl(openssl, STATIC_KEY, STATIC_IV, "-d", data=bytes.fromhex(token.decode()))
        assert clear == plaintext, "openssl read another plaintext"


@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_cli_decrypts_openssl_tokens_and_matches_them(openssl: str, keys: Keys, encoding: str) -> None:
    for plaintext in PLAINTEXTS:
        if encoding == "base64":
            token = _openssl(openssl, STATIC_KEY, STATIC_IV, "-a", "-A", data=plaintext).strip()
        else:
            token = _openssl(openssl, STATIC_KEY, STATIC_IV, data=plaintext).hex().encode()
        assert opened(*_static(keys, encoding), stdin=token + b"\n") == plaintext
        assert sealed(*_static(keys, encoding), stdin=plaintext) == token + b"\n", "not openssl's token"


def test_openssl_matches_cli_lines(openssl: str, keys: Keys) -> None:
    tokens = sealed(*_static(keys, "base64", "--lines"), stdin=b"\n".join(LINES) + b"\n").splitlines()
    assert tokens == [
        _openssl(openssl, STATIC_KEY, STATIC_IV, "-a", "-A", data=line).strip() for line in LINES
    ]


def test_keygen_key_and_iv_work_with_openssl(openssl: str, tmp_path: Path) -> None:
    material = json.loads(invoke("keygen", "aes-cbc-static").stdout)
    key, iv = material["key"].encode(), material["iv"].encode()
    files = (
        "--key-file",
        key_file(tmp_path, "key", key + b"\n"),
        "--iv-file",
        key_file(tmp_path, "iv", iv + b"\n"),
    )
    token = sealed("aes-cbc-static", *files, stdin=b"DATA_EXAMPLE")
    assert _openssl(openssl, key, iv, "-d", "-a", "-A", data=token) == b"DATA_EXAMPLE"


@pytest.mark.parametrize(
    "vector", STATIC_VECTORS, ids=[f"{v['encoding']}-{i}" for i, v in enumerate(STATIC_VECTORS)]
)
def test_pinned_php_static_vectors(tmp_path: Path, vector: dict[str, str]) -> None:
    files = (
        "--key-file",
        key_file(tmp_path, "key", vector["key"].encode()),
        "--iv-file",
        key_file(tmp_path, "iv", vector["iv"].encode() + b"\n"),
        "--encoding",
        vector["encoding"],
    )
    assert opened("aes-cbc-static", *files, stdin=vector["token"].encode()) == vector["plaintext"].encode()
    assert (
        sealed("aes-cbc-static", *files, stdin=vector["plaintext"].encode())
        == vector["token"].encode() + b"\n"
    )


# --- laravel-cbc, aes-gcm, aes-cbc-static: PHP ----------------------------------------------------------------

Results = dict[tuple[str, ...], bytes | str]
LARAVEL_KEYS = {
    "laravel": LARAVEL_SECRET,
    "laravel-app": base64.b64decode(LARAVEL_APP_KEY[len(b"base64:") :]),
}


@pytest.fixture(scope="module")
def php_results(php: str, keys: Keys) -> tuple[Results, dict[tuple[str, ...], bytes]]:
    """One PHP run: PHP encrypts every case, and decrypts every token the command line made."""
    batch = PhpBatch()
    index: dict[tuple[str, ...], int] = {}
    ours: dict[tuple[str, ...], bytes] = {}
    for number, text in enumerate(PLAINTEXTS):
        n = str(number)
        for name, raw_key in LARAVEL_KEYS.items():
            index["php-laravel", name, n] = batch.add("paykun_encrypt", text=text, key=raw_key)
            ours["laravel", name, n] = sealed("laravel-cbc", "--key-file", keys[name], stdin=text).strip()
            index["ours-laravel", name, n] = batch.add(
                "laravel_decrypt", token=ours["laravel", name, n], key=raw_key
            )
        index["php-gcm", n] = batch.add("gcm_encrypt", text=text, key=GCM_KEY)
        ours["gcm", n] = sealed("aes-gcm", "--key-file", keys["gcm"], stdin=text).strip()
        index["ours-gcm", n] = batch.add("gcm_decrypt", token=ours["gcm", n], key=GCM_KEY)
        for encoding in ("base64", "hex"):
            index["php-cbc", encoding, n] = batch.add(
                "cbc_encrypt", encoding=encoding, text=text, key=STATIC_KEY, iv=STATIC_IV
            )
            ours["cbc", encoding, n] = sealed(*_static(keys, encoding), stdin=text).strip()
            index["ours-cbc", encoding, n] = batch.add(
                "cbc_decrypt", encoding=encoding, token=ours["cbc", encoding, n], key=STATIC_KEY, iv=STATIC_IV
            )
    results = batch.run(php)
    return {case: results[i] for case, i in index.items()}, ours


@pytest.mark.parametrize("name", sorted(LARAVEL_KEYS))
def test_laravel_php_and_cli_both_ways(
    php_results: tuple[Results, dict[tuple[str, ...], bytes]], keys: Keys, name: str
) -> None:
    results, _ = php_results
    for number, text in enumerate(PLAINTEXTS):
        token = ok(results["php-laravel", name, str(number)])
        assert opened("laravel-cbc", "--key-file", keys[name], stdin=token) == text, (
            "PayKun's token opened to another value"
        )
        assert ok(results["ours-laravel", name, str(number)]) == text, "PHP read another value from our token"


def test_aes_gcm_php_and_cli_both_ways(
    php_results: tuple[Results, dict[tuple[str, ...], bytes]], keys: Keys
) -> None:
    results, _ = php_results
    for number, text in enumerate(PLAINTEXTS):
        assert opened("aes-gcm", "--key-file", keys["gcm"], stdin=ok(results["php-gcm", str(number)])) == text
        assert ok(results["ours-gcm", str(number)]) == text


@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_aes_cbc_static_php_and_cli_both_ways(
    php_results: tuple[Results, dict[tuple[str, ...], bytes]], keys: Keys, encoding: str
) -> None:
    results, ours = php_results
    for number, text in enumerate(PLAINTEXTS):
        token = ok(results["php-cbc", encoding, str(number)])
        assert opened(*_static(keys, encoding), stdin=token) == text
        assert token == ours["cbc", encoding, str(number)], "PHP and the command line made different tokens"
        assert ok(results["ours-cbc", encoding, str(number)]) == text


@pytest.mark.parametrize("vector", LARAVEL_VECTORS, ids=[v["name"] for v in LARAVEL_VECTORS])
def test_pinned_paykun_vectors(tmp_path: Path, vector: dict[str, str]) -> None:
    key = key_file(tmp_path, "key", vector["key"].encode() + b"\n")
    assert (
        opened("laravel-cbc", "--key-file", key, stdin=vector["token"].encode())
        == vector["plaintext"].encode()
    )


@pytest.mark.parametrize("vector", GCM_VECTORS, ids=[str(i) for i in range(len(GCM_VECTORS))])
def test_pinned_php_gcm_vectors(tmp_path: Path, vector: dict[str, str]) -> None:
    key = key_file(tmp_path, "key", vector["key"].encode() + b"\r\n")
    assert (
        opened("aes-gcm", "--key-file", key, stdin=vector["token"].encode()) == vector["plaintext"].encode()
    )


# --- jwe: joserfc --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def joserfc(oracle_module: Callable[[str, str], object]) -> SimpleNamespace:
    jwe = oracle_module("joserfc.jwe", JOSERFC)
    jwk: Any = oracle_module("joserfc.jwk", JOSERFC)
    return SimpleNamespace(jwe=jwe, jwk=jwk, key=jwk.RSAKey.import_key(JWE_VECTORS["private_pem"]))


def _joserfc_encrypt(joserfc: SimpleNamespace, header: dict[str, str], plaintext: bytes, key: Any) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about RSA1_5, which is the point
        algorithms = [header["alg"], header["enc"], *([header["zip"]] if "zip" in header else [])]
        return str(joserfc.jwe.encrypt_compact(header, plaintext, key, algorithms=algorithms)).encode()


JWE_PLAINTEXTS = [p for p in PLAINTEXTS if p] + [b'{"number":"4111111111111111","cvv":"737"}']
ALGS = ["RSA-OAEP-256", "RSA-OAEP"]


@pytest.mark.parametrize("alg", ALGS)
def test_joserfc_decrypts_cli_tokens(joserfc: SimpleNamespace, keys: Keys, alg: str) -> None:
    for plaintext in JWE_PLAINTEXTS:
        token = sealed("jwe", "--public-key", keys["public"], "--alg", alg, stdin=plaintext).strip()
        got = joserfc.jwe.decrypt_compact(token.decode(), joserfc.key, algorithms=[alg, "A256GCM"])
        assert got.plaintext == plaintext, "joserfc read another plaintext"
        assert got.protected == {"enc": "A256GCM", "alg": alg}


@pytest.mark.parametrize("alg", ALGS)
def test_cli_decrypts_joserfc_tokens(joserfc: SimpleNamespace, keys: Keys, alg: str) -> None:
    for plaintext in JWE_PLAINTEXTS:
        token = _joserfc_encrypt(joserfc, {"alg": alg, "enc": "A256GCM"}, plaintext, joserfc.key)
        assert opened("jwe", "--private-key", keys["private"], stdin=token + b"\n") == plaintext


def test_cli_lines_decrypts_joserfc_tokens(joserfc: SimpleNamespace, keys: Keys) -> None:
    values = [line for line in LINES if line]
    tokens = [
        _joserfc_encrypt(joserfc, {"alg": ALGS[n % 2], "enc": "A256GCM"}, v, joserfc.key)
        for n, v in enumerate(values)
    ]
    clear = opened("jwe", "--private-key", keys["private"], "--lines", stdin=b"\r\n".join(tokens))
    assert clear == b"".join(value + b"\n" for value in values)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "RSA1_5", "enc": "A256GCM"},
        {"alg": "dir", "enc": "A256GCM"},
        {"alg": "RSA-OAEP-256", "enc": "A128GCM"},
        {"alg": "RSA-OAEP", "enc": "A256CBC-HS512"},
        {"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "DEF"},
    ],
    ids=lambda header: "+".join(header.values()),
)
def test_cli_refuses_joserfc_tokens_with_other_algorithms(
    joserfc: SimpleNamespace, keys: Keys, header: dict[str, str]
) -> None:
    key = joserfc.jwk.OctKey.generate_key(256) if header["alg"] == "dir" else joserfc.key
    token = _joserfc_encrypt(joserfc, header, b'{"number":"4111111111111111"}', key)
    outcome = invoke("decrypt", "jwe", "--private-key", keys["private"], stdin=token)
    assert_refused(outcome, 2, "bad_algorithm", token, JWE_VECTORS["private_pem"])


@pytest.mark.parametrize("vector", JWE_VECTORS["accepted"], ids=[v["name"] for v in JWE_VECTORS["accepted"]])
def test_pinned_joserfc_vectors_open(keys: Keys, vector: dict[str, Any]) -> None:
    clear = opened("jwe", "--private-key", keys["private"], stdin=vector["token"].encode())
    assert clear == base64.b64decode(vector["plaintext_b64"])


@pytest.mark.parametrize("vector", JWE_VECTORS["refused"], ids=[v["name"] for v in JWE_VECTORS["refused"]])
def test_pinned_joserfc_vectors_are_refused(keys: Keys, vector: dict[str, Any]) -> None:
    outcome = invoke("decrypt", "jwe", "--private-key", keys["private"], stdin=vector["token"].encode())
    status = 1 if vector["code"] == "tag_mismatch" else 2
    assert_refused(outcome, status, vector["code"], vector["token"])


def test_keygen_jwe_key_pair_works_with_joserfc(joserfc: SimpleNamespace, tmp_path: Path) -> None:
    material = json.loads(invoke("keygen", "jwe").stdout)
    public = key_file(tmp_path, "public.pem", material["public_key"].encode())
    private = key_file(tmp_path, "private.pem", material["private_key"].encode())
    their_key = joserfc.jwk.RSAKey.import_key(material["private_key"])
    token = sealed("jwe", "--public-key", public, stdin=b"card").strip()
    assert (
        joserfc.jwe.decrypt_compact(token.decode(), their_key, algorithms=[ALGS[0], "A256GCM"]).plaintext
        == b"card"
    )
    theirs = _joserfc_encrypt(joserfc, {"alg": "RSA-OAEP", "enc": "A256GCM"}, b"card", their_key)
    assert opened("jwe", "--private-key", private, stdin=theirs) == b"card"


# --- dlocal-v2: Python hmac and the PHP-made vectors ----------------------------------------------------------

LOGIN, DATE = "throwaway-login", "2018-07-12T13:46:28.629Z"


@pytest.mark.parametrize(
    "body", [b"", b'{"amount":120.00,"currency":"USD"}', bytes(range(256))], ids=["empty", "json", "binary"]
)
def test_sign_equals_python_hmac(keys: Keys, body: bytes) -> None:
    expected = hmac.new(DLOCAL_SECRET, LOGIN.encode() + DATE.encode() + body, hashlib.sha256).hexdigest()
    common = ("dlocal-v2", "--key-file", keys["dlocal"], "--login", LOGIN, "--date", DATE)
    signed = invoke("sign", *common, stdin=body)
    assert signed == Outcome(0, f"V2-HMAC-SHA256, Signature: {expected}\n".encode(), "")
    assert invoke("verify", *common, "--signature", expected, stdin=body) == Outcome(0, b"", "")


@pytest.mark.parametrize("vector", SIGNATURE_VECTORS, ids=[v["name"] for v in SIGNATURE_VECTORS])
def test_php_signature_vectors(tmp_path: Path, vector: dict[str, str]) -> None:
    raw = b64decode(vector["secret_b64"]) if "secret_b64" in vector else vector["secret"].encode()
    common = (
        "dlocal-v2",
        "--key-file",
        key_file(tmp_path, "secret", raw + b"\n"),
        "--login",
        vector["login"],
        "--date",
        vector["date"],
    )
    body = b64decode(vector["body_b64"]) if vector["body_b64"] else b""
    signed = invoke("sign", *common, stdin=body)
    assert signed.stdout == f"V2-HMAC-SHA256, Signature: {vector['signature']}\n".encode()
    assert invoke("verify", *common, "--signature", vector["signature"], stdin=body) == Outcome(0, b"", "")
    off = vector["signature"][:-1] + ("1" if vector["signature"][-1] == "0" else "0")
    assert_refused(invoke("verify", *common, "--signature", off, stdin=body), 1, "signature_mismatch")
