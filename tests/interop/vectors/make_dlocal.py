"""Regenerate ``dlocal_v2.json`` and ``jwe.json`` with the oracles (PHP, joserfc), not Sealgate.

Run from the repository root: ``.venv/bin/python tests/interop/vectors/make_dlocal.py`` (needs ``php``).
Every key and secret written here is a throwaway made for these vectors only.
"""

from __future__ import annotations

import base64
import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

from joserfc import jwe
from joserfc.jwk import OctKey, RSAKey

HERE = Path(__file__).parent
PHP_ORACLE = HERE.parent / "php" / "dlocal_hmac.php"
THROWAWAY = "THROWAWAY TEST KEYS: generated for these vectors only; never use them anywhere else."


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


SIGNATURE_CASES: list[dict[str, Any]] = [
    {
        "name": "seed request shape (JSON body)",
        "secret": "throwaway-dlocal-secret-0001",
        "login": "sak223k2wdksdl2",
        "date": "2018-02-20T15:44:42.310Z",
        "body": b'{"amount":120.00,"currency":"USD","country":"BR","payment_method_id":"CARD"}',
    },
    {
        "name": "bodyless GET",
        "secret": "throwaway-dlocal-secret-0002",
        "login": "sak223k2wdksdl2",
        "date": "2018-07-12T13:46:28.629Z",
        "body": b"",
    },
    {
        "name": "UTF-8 body",
        "secret": "throwaway-dlocal-secret-0003",
        "login": "merchant-42",
        "date": "2024-02-29T23:59:59.999Z",
        "body": '{"payer":{"name":"João Ñúñez 日本 😀"}}'.encode(),
    },
    {
        "name": "binary body, every byte value",
        "secret": "throwaway-dlocal-secret-0004",
        "login": "merchant-42",
        "date": "2024-01-01T00:00:00.000Z",
        "body": bytes(range(256)),
    },
    {
        "name": "pretty JSON body with CRLF and trailing newline",
        "secret": "throwaway-dlocal-secret-0005",
        "login": "merchant-42",
        "date": "2024-01-01T00:00:00.000Z",
        "body": b'{\r\n  "amount": 1,\r\n  "currency": "MXN"\r\n}\n',
    },
    {
        "name": "UTF-8 login and secret",
        "secret": "throwaway-sécret-ключ",
        "login": "comercio-ñandú",
        "date": "2030-12-31T12:00:00.000Z",
        "body": b'{"a":1}',
    },
    {
        "name": "binary (non-UTF-8) secret",
        "secret": bytes(range(255, 191, -1)),
        "login": "merchant-42",
        "date": "2024-06-01T08:30:00.123Z",
        "body": b'{"a":1}',
    },
    {
        "name": "X-Date with an offset and no fraction is signed as sent",
        "secret": "throwaway-dlocal-secret-0008",
        "login": "merchant-42",
        "date": "2024-06-01T05:30:00-03:00",
        "body": b'{"a":1}',
    },
    {
        "name": "NUL bytes in body",
        "secret": "throwaway-dlocal-secret-0009",
        "login": "merchant-42",
        "date": "2024-06-01T08:30:00.000Z",
        "body": b"\x00" * 17 + b"tail",
    },
    {
        "name": "large body (4 KiB)",
        "secret": "throwaway-dlocal-secret-0010",
        "login": "merchant-42",
        "date": "2024-06-01T08:30:00.000Z",
        "body": bytes((i * 131 + 7) % 256 for i in range(4096)),
    },
    {
        "name": "secret longer than the SHA-256 block (hashed first by HMAC)",
        "secret": "throwaway-" + "x" * 100,
        "login": "merchant-42",
        "date": "2024-06-01T08:30:00.000Z",
        "body": b"{}",
    },
]


def secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def make_signature_vectors() -> dict[str, object]:
    request = [
        {
            "secret_b64": b64(secret_bytes(case["secret"])),
            "login": case["login"],
            "date": case["date"],
            "body_b64": b64(case["body"]),
        }
        for case in SIGNATURE_CASES
    ]
    result = subprocess.run(
        ["php", str(PHP_ORACLE)], input=json.dumps(request).encode(), capture_output=True, check=True
    )
    answers = json.loads(result.stdout)
    vectors = []
    for case, answer in zip(SIGNATURE_CASES, answers, strict=True):
        secret = case["secret"]
        entry: dict[str, object] = {"name": case["name"]}
        if isinstance(secret, str):
            entry["secret"] = secret
        else:
            entry["secret_b64"] = b64(secret_bytes(secret))
        entry |= {
            "login": case["login"],
            "date": case["date"],
            "body_b64": b64(case["body"]),
            "signature": answer["signature"],
        }
        vectors.append(entry)
    return {
        "_comment": THROWAWAY,
        "_generated_by": "php tests/interop/php/dlocal_hmac.php via tests/interop/vectors/make_dlocal.py",
        "formula": 'hash_hmac("sha256", "$login$date$body", $secret)',
        "vectors": vectors,
    }


CARD = b'{"number":"4111111111111111","cvv":"123"}'


def make_jwe_vectors() -> dict[str, object]:
    key = RSAKey.generate_key(2048)
    other = RSAKey.generate_key(2048)
    oct_key = OctKey.generate_key(256)

    def seal(header: dict[str, str], plaintext: bytes, recipient: Any) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc warns about RSA1_5 on purpose
            algorithms = [value for name, value in header.items() if name in ("alg", "enc", "zip")]
            return jwe.encrypt_compact(header, plaintext, recipient, algorithms=algorithms)

    accepted = [
        ("RSA-OAEP-256 card", {"alg": "RSA-OAEP-256", "enc": "A256GCM"}, CARD),
        ("RSA-OAEP card", {"alg": "RSA-OAEP", "enc": "A256GCM"}, CARD),
        ("RSA-OAEP-256 binary plaintext", {"alg": "RSA-OAEP-256", "enc": "A256GCM"}, bytes(range(256))),
        (
            "RSA-OAEP-256 with kid and typ",
            {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "k1", "typ": "JWE"},
            CARD,
        ),
    ]
    refused = [
        ("RSA1_5", {"alg": "RSA1_5", "enc": "A256GCM"}, key, "bad_algorithm"),
        ("dir", {"alg": "dir", "enc": "A256GCM"}, oct_key, "bad_algorithm"),
        ("A128GCM", {"alg": "RSA-OAEP-256", "enc": "A128GCM"}, key, "bad_algorithm"),
        ("A256CBC-HS512", {"alg": "RSA-OAEP", "enc": "A256CBC-HS512"}, key, "bad_algorithm"),
        ("zip DEF", {"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "DEF"}, key, "bad_algorithm"),
        ("made to another key", {"alg": "RSA-OAEP-256", "enc": "A256GCM"}, other, "tag_mismatch"),
    ]
    return {
        "_comment": THROWAWAY,
        "_generated_by": "joserfc via tests/interop/vectors/make_dlocal.py",
        "private_pem": key.as_pem(private=True).decode("ascii"),
        "public_pem": key.as_pem(private=False).decode("ascii"),
        "private_jwk": key.as_dict(private=True),
        "public_jwk": key.as_dict(private=False),
        "accepted": [
            {
                "name": name,
                "header": header,
                "plaintext_b64": b64(plaintext),
                "token": seal(header, plaintext, key),
            }
            for name, header, plaintext in accepted
        ],
        "refused": [
            {"name": name, "header": header, "token": seal(header, CARD, recipient), "code": code}
            for name, header, recipient, code in refused
        ],
    }


def main() -> None:
    for name, data in (
        ("dlocal_v2.json", make_signature_vectors()),
        ("jwe.json", make_jwe_vectors()),
    ):
        (HERE / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
