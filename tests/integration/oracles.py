"""The independent implementations the integration tests check the functions' wire formats with.

- Infosimples ``enc_`` parameters: the reference ``aes_bridge`` package, as the Infosimples sample uses it;
- Netcore static-IV CBC and PayKun's Laravel envelope: PHP's openssl extension (``tests/interop/php``);
- dLocal card JWE: ``joserfc``; dLocal V2-HMAC-SHA256 headers: Python's ``hmac``, as dLocal's docs write it.

The fixtures (in ``conftest.py``) load them through ``oracle_module``/``php``: a missing oracle fails in CI and
skips elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sealgate.schemes.laravel_cbc import parse_key
from tests.interop.aesbridge_oracle import infosimples_form, standard_form
from tests.interop.cipher_oracle import PhpBatch, ok


@dataclass(frozen=True)
class Php:
    """One PHP process per call: the partners' own PHP code on their own key material."""

    binary: str

    def netcore_decrypt(self, token: str, key: str, iv: str) -> bytes:
        batch = PhpBatch()
        batch.add("cbc_decrypt", encoding="base64", token=token.encode(), key=key.encode(), iv=iv.encode())
        return ok(batch.run(self.binary)[0])

    def netcore_encrypt(self, plaintext: bytes, key: str, iv: str) -> str:
        batch = PhpBatch()
        batch.add("cbc_encrypt", encoding="base64", text=plaintext, key=key.encode(), iv=iv.encode())
        return ok(batch.run(self.binary)[0]).decode("ascii")

    def paykun_decrypt(self, token: str, app_key: str) -> bytes:
        batch = PhpBatch()
        batch.add("laravel_decrypt", token=token.encode(), key=parse_key(app_key))
        return ok(batch.run(self.binary)[0])

    def paykun_encrypt(self, plaintext: bytes, app_key: str) -> str:
        """PayKun's documented ``encrypt()``, verbatim."""
        batch = PhpBatch()
        batch.add("paykun_encrypt", text=plaintext, key=parse_key(app_key))
        return ok(batch.run(self.binary)[0]).decode("ascii")


def infosimples_decrypt(aes_bridge: Any, token: str, passphrase: str) -> bytes:
    """What Infosimples reads from one ``enc_`` parameter."""
    return bytes(aes_bridge.decrypt(standard_form(token), passphrase))


def infosimples_encrypt(aes_bridge: Any, text: str, passphrase: str) -> str:
    """One ``enc_`` parameter the way the Infosimples sample makes it."""
    return infosimples_form(aes_bridge.encrypt(text, passphrase))


def jwe_decrypt(joserfc: Any, token: str, private_pem: str) -> bytes:
    from joserfc.jwk import RSAKey

    key = RSAKey.import_key(private_pem)
    return bytes(joserfc.decrypt_compact(token, key, algorithms=["RSA-OAEP-256", "A256GCM"]).plaintext)


def dlocal_v2(secret_key: str, login: str, date: str, body: bytes) -> str:
    """dLocal's documented ``hmac(secretKey, X-Login + X-Date + RequestBody)``, hex."""
    return hmac.new(secret_key.encode(), login.encode() + date.encode() + body, hashlib.sha256).hexdigest()


def dlocal_authorization(secret_key: str, login: str, date: str, body: bytes) -> str:
    return f"V2-HMAC-SHA256, Signature: {dlocal_v2(secret_key, login, date, body)}"


def md5(text: str | bytes) -> str:
    return hashlib.md5(text.encode() if isinstance(text, str) else text).hexdigest()
