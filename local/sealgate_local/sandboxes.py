"""Partner sandboxes: HTTPS servers on 127.0.0.1 that behave like each partner and check what they receive.

Each sandbox opens what Sealgate sends with an implementation of its own, never with ``sealgate``'s wire-format
modules (only the profile JSON files are read, for the operation paths): a bug shared by both sides would
otherwise pass unseen.

What each checks, in order (the first failure answers 400, or 401 for credentials and signatures)::

    infosimples  POST form (application/x-www-form-urlencoded), no repeated names
                 enc_<name> = base64url_nopad(aesbridge-gcm token) -> "+/" alphabet, "=" padding ->
                 aes_bridge.decrypt(token, encryption_key) -> UTF-8 text; receipt = hex MD5(text)
                 200 {"code": 200, "code_message": ..., "errors": [], "receipts": {name: md5}}
    netcore      Authorization == "Bearer " + api_key, x-asset == asset_id        (else 401)
                 x-eCode 11256: base64(AES-256-CBC(key[32], iv[16], PKCS7(json)))
                         11257: hex(same)
                         11258: base64(nonce[12] | AES-256-GCM(b64decode(key)[32], json) | tag[16])
                 JSON {"encryptedRequest": token}; the codes accepted are those the key fits (32 key bytes
                 and 16 IV bytes: 11256/11257; base64 of 32 bytes: 11258), as if registered with Netcore
                 200 {"status": "success", "message": "Request accepted", "data": {"requestid": ...}}
    paykun       MerchantId == merchant_id, AccessToken == access_token            (else 401)
                 JSON {"encrypted_request": token}; token = base64(JSON {"iv", "value", "mac"})
                 mac == hex(HMAC-SHA256(key, iv + value)) in constant time, before decrypting
                 AES-256-CBC(key NUL-padded/truncated to 32, b64decode(iv)[16]) -> PKCS7 -> s:<n>:"<json>";
                 key = b64decode(app key after "base64:"), else the key's UTF-8 bytes (as Laravel)
                 200 {"status": true, "message": "Request processed", "data": {"reference_id": ...}}
    dlocal       X-Date (ISO 8601 with a zone), X-Login == x_login, X-Trans-Key == x_trans_key, X-Version,
                 Authorization == "V2-HMAC-SHA256, Signature: " + hex(HMAC-SHA256(secret_key,
                 X-Login + X-Date + raw body)) in constant time                     (else 401)
                 X-Idempotency-Key present; JSON object body
                 card: no clear number/cvv; encrypted_data = compact JWE (RSA-OAEP-256 or RSA-OAEP,
                 A256GCM) opened with joserfc and dLocal's private key -> {"number", "cvv"?}
                 200 {"id": "D-4-...", "status": "PAID", ...}; the same X-Idempotency-Key gets the same id

Every request the partner processes (mode ``"ok"``) leaves a :class:`Verification`: what was checked, the
idempotency header received (``Idempotency-Key`` or ``X-Idempotency-Key``), the names (never the values) of
the fields that arrived protected, in Sealgate's terms (``cpf``, ``<body>``, ``card.number``), and for
Infosimples the MD5 receipts. Receipts are secrets too (an MD5 of a CPF is reversed by search): they are
kept out of ``repr``. The other modes (``"error500"``, ``"throttle429"`` with ``Retry-After``, ``"hang"``)
answer before the partner looks at the request; the request is still recorded in ``requests``.

Every key here is throwaway test material, given by the caller (see :mod:`sealgate_local.aws_stack`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import json
import re
import ssl
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, cast, get_args
from urllib.parse import parse_qsl, urlsplit

from sealgate_local.https_server import HttpsServer, Request, Response
from sealgate_local.lifecycle import Service
from sealgate_local.tls import Pki, make_throwaway_pki

SandboxMode = Literal["ok", "error500", "throttle429", "hang"]
SANDBOX_MODES: frozenset[str] = frozenset(get_args(SandboxMode))
PARTNERS = ("infosimples", "netcore", "paykun", "dlocal")
#: The name Sealgate gives a whole protected body (``sealgate.protection.BODY_FIELD``), restated, not imported.
BODY_FIELD = "<body>"
#: Longest a hang lasts; stopping the sandbox ends it at once.
HANG_LIMIT = 60.0
NOTIFY_TIMEOUT = 10.0

_IDEMPOTENCY_HEADERS = ("Idempotency-Key", "X-Idempotency-Key")
_ENC_PREFIX = "enc_"
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]+={0,2}", re.ASCII)
_PHP_STRING_HEAD = re.compile(rb's:(0|[1-9][0-9]{0,18}):"')
_DLOCAL_AUTHORIZATION = re.compile(r"V2-HMAC-SHA256,\s*Signature:\s*([0-9A-Fa-f]{64})", re.ASCII)
_JWE_ALGORITHMS = ("RSA-OAEP-256", "RSA-OAEP", "A256GCM")
_CARD_CLEAR_FIELDS = ("number", "cvv")


@dataclass(frozen=True)
class Verification:
    """What a sandbox concluded about one request; names only, never values (receipts kept out of repr)."""

    partner: str
    path: str
    ok: bool
    reason: str
    idempotency_key: str | None
    fields: tuple[str, ...] = ()
    md5s: dict[str, str] = field(default_factory=dict, repr=False)


class _Refused(Exception):
    """A check failed: answered with ``status`` and the fixed ``reason`` (never a received value)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class _Accepted:
    answer: dict[str, Any]
    fields: tuple[str, ...] = ()
    md5s: dict[str, str] = field(default_factory=dict)


class PartnerSandbox(Service):
    """One partner's HTTPS sandbox; a subclass per partner holds its checks (see the module docstring).

    Thread-safe: the server answers each connection in its own thread; verifications are appended under a
    lock and read as copies.
    """

    partner: ClassVar[str]

    def __init__(self, *, pki: Pki | None = None) -> None:
        self._routes = _routes(self.partner)
        self._lock = threading.Lock()
        self._verifications: list[Verification] = []
        self._server = HttpsServer(self._handle, pki=pki, hang_limit=HANG_LIMIT)

    @property
    def url(self) -> str:
        """Base URL ending in ``/``: what Sealgate's base URL override for this partner should be."""
        return self._server.url + "/"

    @property
    def ca_bundle(self) -> str | None:
        """The CA certificate a client must trust to reach this sandbox."""
        return self._server.ca_bundle

    @property
    def mode(self) -> SandboxMode:
        """``"ok"``, ``"error500"``, ``"throttle429"`` (with ``Retry-After``) or ``"hang"``; switchable live."""
        return cast(SandboxMode, self._server.mode)

    @mode.setter
    def mode(self, value: SandboxMode) -> None:
        if value not in SANDBOX_MODES:
            raise ValueError(f"unknown sandbox mode {value!r}; expected one of {sorted(SANDBOX_MODES)}")
        self._server.mode = value

    @property
    def retry_after(self) -> str:
        """The ``Retry-After`` value sent in mode ``"throttle429"``."""
        return self._server.retry_after

    @retry_after.setter
    def retry_after(self, value: str) -> None:
        self._server.retry_after = value

    @property
    def verifications(self) -> list[Verification]:
        """Every request the partner processed, in arrival order (a copy)."""
        with self._lock:
            return list(self._verifications)

    @property
    def requests(self) -> list[Request]:
        """Every request received, whatever the mode (a copy); it holds what was sent, so never log it."""
        return self._server.requests

    def start(self) -> Self:
        """Serve on a free port of 127.0.0.1."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving; ends hangs and closes every connection."""
        self._server.stop()

    def _check(self, request: Request) -> _Accepted:
        """The partner's checks; raises :class:`_Refused`."""
        raise NotImplementedError

    def _error_body(self, status: int, reason: str) -> dict[str, Any]:
        """The partner's error answer."""
        raise NotImplementedError

    def _handle(self, request: Request) -> Response:
        idempotency_key = next(
            (value for name in _IDEMPOTENCY_HEADERS if (value := request.header(name)) is not None), None
        )
        try:
            method = self._routes.get(request.path)
            if method is None:
                raise _Refused(404, "unknown path")
            if request.method != method:
                raise _Refused(405, "method not allowed")
            accepted = self._check(request)
        except _Refused as refusal:
            self._record(Verification(self.partner, request.path, False, refusal.reason, idempotency_key))
            return _json_response(refusal.status, self._error_body(refusal.status, refusal.reason))
        self._record(
            Verification(
                self.partner, request.path, True, "ok", idempotency_key, accepted.fields, accepted.md5s
            )
        )
        return _json_response(200, accepted.answer)

    def _record(self, verification: Verification) -> None:
        with self._lock:
            self._verifications.append(verification)


class InfosimplesSandbox(PartnerSandbox):
    """Infosimples: decrypts every ``enc_`` parameter with ``aes_bridge`` and answers its MD5 receipts."""

    partner = "infosimples"

    def __init__(self, secret: Mapping[str, str], *, pki: Pki | None = None) -> None:
        super().__init__(pki=pki)
        self._passphrase = _field(secret, self.partner, "encryption_key")

    def _check(self, request: Request) -> _Accepted:
        import aes_bridge
        from cryptography.exceptions import InvalidTag

        _require_content_type(request, "application/x-www-form-urlencoded")
        try:
            pairs = parse_qsl(
                request.body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(request.body)
            )
        except (UnicodeDecodeError, ValueError):
            raise _Refused(400, "body is not a form") from None
        names = [name for name, _ in pairs]
        if len(names) != len(set(names)):
            raise _Refused(400, "a parameter is repeated")
        md5s: dict[str, str] = {}
        for name, value in pairs:
            if not name.startswith(_ENC_PREFIX) or name == _ENC_PREFIX:
                continue
            if _BASE64_TEXT.fullmatch(value) is None:
                raise _Refused(400, "an enc_ parameter is not base64")
            # What Infosimples does with the sample's URL-safe, unpadded form before aes_bridge.decrypt.
            standard = value.replace("-", "+").replace("_", "/").rstrip("=")
            standard += "=" * (-len(standard) % 4)
            try:
                text = aes_bridge.decrypt(standard, self._passphrase)
                text.decode("utf-8")
            except (ValueError, InvalidTag):  # UnicodeDecodeError and binascii.Error are ValueErrors
                raise _Refused(400, "an enc_ parameter does not decrypt") from None
            md5s[name.removeprefix(_ENC_PREFIX)] = hashlib.md5(text, usedforsecurity=False).hexdigest()
        answer = {
            "code": 200,
            "code_message": "A requisição foi processada com sucesso.",
            "errors": [],
            "receipts": md5s,
        }
        return _Accepted(answer, tuple(md5s), md5s)

    def _error_body(self, status: int, reason: str) -> dict[str, Any]:
        return {"code": status, "code_message": reason, "errors": [reason]}


class NetcoreSandbox(PartnerSandbox):
    """Netcore CE: checks the bearer token and asset, decrypts ``encryptedRequest`` by its ``x-eCode``."""

    partner = "netcore"

    def __init__(self, secret: Mapping[str, str], *, pki: Pki | None = None) -> None:
        super().__init__(pki=pki)
        key = _field(secret, self.partner, "key")
        iv = _field(secret, self.partner, "iv")
        self._api_key = _field(secret, self.partner, "api_key")
        self._asset_id = _field(secret, self.partner, "asset_id")
        self._cbc_key_iv: tuple[bytes, bytes] | None = None
        self._gcm_key: bytes | None = None
        if len(key.encode("utf-8")) == 32 and len(iv.encode("utf-8")) == 16:
            self._cbc_key_iv = key.encode("utf-8"), iv.encode("utf-8")
        else:
            with contextlib.suppress(binascii.Error, ValueError):
                decoded = base64.b64decode(key, validate=True)
                self._gcm_key = decoded if len(decoded) == 32 else None
        if self._cbc_key_iv is None and self._gcm_key is None:
            raise ValueError(
                "netcore secret: key must be 32 bytes with a 16-byte iv (CBC), or base64 of 32 bytes (GCM)"
            )

    def _check(self, request: Request) -> _Accepted:
        if not _same(request.header("Authorization"), f"Bearer {self._api_key}"):
            raise _Refused(401, "Authorization is missing or wrong")
        if not _same(request.header("x-asset"), self._asset_id):
            raise _Refused(401, "x-asset is missing or wrong")
        ecode = request.header("x-eCode")
        accepted = ("11256", "11257") if self._cbc_key_iv is not None else ("11258",)
        if ecode is None or ecode not in accepted:
            raise _Refused(400, "x-eCode is missing or not the registered method")
        _require_content_type(request, "application/json")
        token = _json_object(request.body).get("encryptedRequest")
        if not isinstance(token, str) or not token:
            raise _Refused(400, "encryptedRequest is missing")
        _json_value(self._decrypt(ecode, token))
        answer = {
            "status": "success",
            "message": "Request accepted",
            "data": {"requestid": str(uuid.uuid4())},
        }
        return _Accepted(answer, (BODY_FIELD,))

    def _decrypt(self, ecode: str, token: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            raw = bytes.fromhex(token) if ecode == "11257" else base64.b64decode(token, validate=True)
        except ValueError:  # binascii.Error is one
            raise _Refused(400, "encryptedRequest is not in the x-eCode's encoding") from None
        try:
            if self._gcm_key is not None:
                if len(raw) < 12 + 16:
                    raise _Refused(400, "encryptedRequest is too short")
                return AESGCM(self._gcm_key).decrypt(raw[:12], raw[12:], None)
            assert self._cbc_key_iv is not None
            key, iv = self._cbc_key_iv
            if not raw or len(raw) % 16:
                raise _Refused(400, "encryptedRequest is not whole AES blocks")
            decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
            unpadder = padding.PKCS7(128).unpadder()
            padded = decryptor.update(raw) + decryptor.finalize()
            return unpadder.update(padded) + unpadder.finalize()
        except (InvalidTag, ValueError):
            raise _Refused(400, "encryptedRequest does not decrypt") from None

    def _error_body(self, status: int, reason: str) -> dict[str, Any]:
        return {"status": "fail", "message": reason}


class PaykunSandbox(PartnerSandbox):
    """PayKun: checks MerchantId/AccessToken and opens the Laravel envelope the way Laravel does."""

    partner = "paykun"

    def __init__(self, secret: Mapping[str, str], *, pki: Pki | None = None) -> None:
        super().__init__(pki=pki)
        app_key = _field(secret, self.partner, "encryption_key")
        self._merchant_id = _field(secret, self.partner, "merchant_id")
        self._access_token = _field(secret, self.partner, "access_token")
        if app_key.startswith("base64:"):
            try:
                self._key = base64.b64decode(app_key.removeprefix("base64:"), validate=True)
            except binascii.Error:
                raise ValueError("paykun secret: encryption_key after base64: is not base64") from None
        else:
            self._key = app_key.encode("utf-8")

    def _check(self, request: Request) -> _Accepted:
        if not _same(request.header("MerchantId"), self._merchant_id):
            raise _Refused(401, "MerchantId is missing or wrong")
        if not _same(request.header("AccessToken"), self._access_token):
            raise _Refused(401, "AccessToken is missing or wrong")
        _require_content_type(request, "application/json")
        token = _json_object(request.body).get("encrypted_request")
        if not isinstance(token, str) or not token:
            raise _Refused(400, "encrypted_request is missing")
        _json_value(self._open(token))
        answer = {"status": True, "message": "Request processed", "data": {"reference_id": uuid.uuid4().hex}}
        return _Accepted(answer, (BODY_FIELD,))

    def _open(self, token: str) -> bytes:
        """Laravel's ``Encrypter::decrypt`` (unserialize included) with PayKun's key handling."""
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        try:
            envelope = json.loads(base64.b64decode(token, validate=True))
        except (ValueError, RecursionError):
            raise _Refused(400, "encrypted_request is not a Laravel envelope") from None
        if not isinstance(envelope, dict) or not all(
            isinstance(envelope.get(name), str) for name in ("iv", "value", "mac")
        ):
            raise _Refused(400, "encrypted_request is not a Laravel envelope")
        iv_text, value_text, mac = envelope["iv"], envelope["value"], envelope["mac"]
        expected = hmac.new(self._key, (iv_text + value_text).encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), mac.encode("utf-8")):
            raise _Refused(400, "The MAC is invalid.")
        try:
            iv = base64.b64decode(iv_text, validate=True)
            ciphertext = base64.b64decode(value_text, validate=True)
        except binascii.Error:
            raise _Refused(400, "The payload is invalid.") from None
        if len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
            raise _Refused(400, "The payload is invalid.")
        aes_key = self._key[:32].ljust(32, b"\0")  # openssl_encrypt's handling of the key PayKun passes
        decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            padded = decryptor.update(ciphertext) + decryptor.finalize()
            serialized = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise _Refused(400, "Could not decrypt the data.") from None
        return _php_unserialize_string(serialized)

    def _error_body(self, status: int, reason: str) -> dict[str, Any]:
        return {"status": False, "errors": {"errorMessage": reason}}


class DlocalSandbox(PartnerSandbox):
    """dLocal: checks the V2-HMAC-SHA256 signature and opens the card JWE; also sends signed webhooks."""

    partner = "dlocal"

    def __init__(self, secret: Mapping[str, str], *, private_key: str, pki: Pki | None = None) -> None:
        from joserfc.jwk import RSAKey

        super().__init__(pki=pki)
        self._login = _field(secret, self.partner, "x_login")
        self._trans_key = _field(secret, self.partner, "x_trans_key")
        self._secret_key = _field(secret, self.partner, "secret_key")
        try:
            self._private_key = RSAKey.import_key(private_key)
        except Exception:  # joserfc and cryptography raise many types; none may show the key
            raise ValueError("dlocal private key is not an RSA private key in PEM") from None
        if not self._private_key.is_private:
            raise ValueError("dlocal private key is a public key")
        self._payments: dict[str, str] = {}

    def notify(
        self,
        webhook_url: str,
        payload: dict[str, Any],
        *,
        ca_bundle: str | None = None,
        date: str | None = None,
        secret: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """POST ``payload`` as a dLocal notification signed V2-HMAC-SHA256; returns the status and JSON answer.

        ``date`` replaces the ``X-Date`` (stale notifications), ``secret`` the signing key (forged ones).
        ``http://`` is for the local API on 127.0.0.1; ``https://`` trusts ``ca_bundle`` (or the system's).
        An answer that is not a JSON object comes back as ``{"text": <body>}``.
        """
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        if date is None:
            date = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        key = (self._secret_key if secret is None else secret).encode("utf-8")
        signature = hmac.new(key, self._login.encode("utf-8") + date.encode("utf-8") + body, hashlib.sha256)
        headers = {
            "Content-Type": "application/json",
            "X-Date": date,
            "X-Login": self._login,
            "Authorization": f"V2-HMAC-SHA256, Signature: {signature.hexdigest()}",
        }
        parts = urlsplit(webhook_url)
        if parts.hostname is None or parts.scheme not in ("http", "https"):
            raise ValueError("webhook_url must be an http:// or https:// URL")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=ca_bundle)
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=NOTIFY_TIMEOUT, context=context
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=NOTIFY_TIMEOUT)
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            status, text = response.status, response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        return status, answer if isinstance(answer, dict) else {"text": text}

    def _check(self, request: Request) -> _Accepted:
        headers = {name: request.header(name) for name in ("X-Date", "X-Login", "X-Trans-Key", "X-Version")}
        for name, value in headers.items():
            if not value:
                raise _Refused(401, f"{name} is missing")
        date, login = headers["X-Date"] or "", headers["X-Login"] or ""
        if not _same(login, self._login) or not _same(headers["X-Trans-Key"], self._trans_key):
            raise _Refused(401, "Invalid credentials")
        try:
            if datetime.fromisoformat(date.replace("Z", "+00:00")).tzinfo is None:
                raise ValueError
        except ValueError:
            raise _Refused(401, "X-Date is not an ISO 8601 date-time with a zone") from None
        match = _DLOCAL_AUTHORIZATION.fullmatch((request.header("Authorization") or "").strip())
        if match is None:
            raise _Refused(401, "Authorization is not 'V2-HMAC-SHA256, Signature: <hex>'")
        message = login.encode("utf-8") + date.encode("utf-8") + request.body
        expected = hmac.new(self._secret_key.encode("utf-8"), message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), match[1].lower().encode("ascii")):
            raise _Refused(401, "Invalid signature")
        idempotency_key = request.header("X-Idempotency-Key")
        if not idempotency_key:
            raise _Refused(400, "X-Idempotency-Key is missing")
        _require_content_type(request, "application/json")
        body = _json_object(request.body)
        fields = self._open_card(body.get("card")) if "card" in body else ()
        return _Accepted(self._answer(request.path, body, idempotency_key), fields)

    def _open_card(self, card: object) -> tuple[str, ...]:
        """Names of the card fields found in ``encrypted_data``; refuses clear ones and bad tokens."""
        from joserfc import jwe
        from joserfc.errors import JoseError

        if not isinstance(card, dict):
            raise _Refused(400, "card is not an object")
        if any(name in card for name in _CARD_CLEAR_FIELDS):
            raise _Refused(400, "card number or cvv sent in clear")
        token = card.get("encrypted_data")
        if token is None:
            return ()  # a card token or saved card: nothing encrypted to check
        if not isinstance(token, str):
            raise _Refused(400, "card encrypted_data is not a string")
        try:
            plaintext = jwe.decrypt_compact(token, self._private_key, algorithms=_JWE_ALGORITHMS).plaintext
        except (JoseError, ValueError):
            raise _Refused(400, "card encrypted_data does not decrypt") from None
        opened = _json_value(plaintext or b"")
        if (
            not isinstance(opened, dict)
            or not isinstance(opened.get("number"), str)
            or not set(opened) <= set(_CARD_CLEAR_FIELDS)
            or not all(isinstance(value, str) and value for value in opened.values())
        ):
            raise _Refused(400, "card encrypted_data does not hold number and optional cvv")
        return tuple(f"card.{name}" for name in _CARD_CLEAR_FIELDS if name in opened)

    def _answer(self, path: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """A payment (or refund) as dLocal answers it; a repeated idempotency key gets the same id."""
        refund = path.endswith("/refunds")
        with self._lock:
            transaction_id = self._payments.setdefault(
                idempotency_key, f"{'REF' if refund else 'D'}-4-{uuid.uuid4()}"
            )
        echoed = {
            name: body[name]
            for name in ("amount", "currency", "order_id", "payment_id")
            if isinstance(body.get(name), str | int | float)
        }
        status = (
            {"status": "SUCCESS", "status_code": 200} if refund else {"status": "PAID", "status_code": "200"}
        )
        return {
            "id": transaction_id,
            **echoed,
            **status,
            "status_detail": "The refund was paid." if refund else "The payment was paid.",
            "created_date": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }

    def _error_body(self, status: int, reason: str) -> dict[str, Any]:
        return {"code": 3001 if status == 401 else 5000, "message": reason}


class Sandboxes:
    """The four partner sandboxes under one throwaway CA; a context manager that stops them all on exit."""

    def __init__(self, sandboxes: Mapping[str, PartnerSandbox], pki: Pki) -> None:
        self._sandboxes = dict(sandboxes)
        self._pki = pki

    @classmethod
    def start(
        cls, secrets: Mapping[str, Mapping[str, str]], *, dlocal_private_key: str, directory: Path
    ) -> Sandboxes:
        """Make the throwaway PKI in ``directory`` and start the four sandboxes.

        ``secrets`` are the partners' secrets as Secrets Manager holds them; ``dlocal_private_key`` is the PEM
        of the key whose public part is dLocal's ``jwe_public_key``.

        Raises
        ------
        ValueError
            A partner's secret is missing or lacks a field (the message names it, never a value).
        """
        for partner in PARTNERS:
            if partner not in secrets:
                raise ValueError(f"no secret for partner {partner}")
        pki = make_throwaway_pki(directory)
        sandboxes: dict[str, PartnerSandbox] = {
            "infosimples": InfosimplesSandbox(secrets["infosimples"], pki=pki),
            "netcore": NetcoreSandbox(secrets["netcore"], pki=pki),
            "paykun": PaykunSandbox(secrets["paykun"], pki=pki),
            "dlocal": DlocalSandbox(secrets["dlocal"], private_key=dlocal_private_key, pki=pki),
        }
        started = cls(sandboxes, pki)
        try:
            for sandbox in sandboxes.values():
                sandbox.start()
        except BaseException:
            started.stop()
            raise
        return started

    @property
    def ca_bundle(self) -> str:
        """Path of the throwaway CA certificate: the forward function's ``ca_bundle``."""
        return str(self._pki.ca_cert)

    @property
    def urls(self) -> dict[str, str]:
        """partner -> base URL (ending in ``/``): the forward function's base URL overrides."""
        return {partner: sandbox.url for partner, sandbox in self._sandboxes.items()}

    @property
    def dlocal(self) -> DlocalSandbox:
        """The dLocal sandbox, typed (for :meth:`DlocalSandbox.notify`)."""
        sandbox = self._sandboxes["dlocal"]
        assert isinstance(sandbox, DlocalSandbox)
        return sandbox

    def __getitem__(self, partner: str) -> PartnerSandbox:
        return self._sandboxes[partner]

    def stop(self) -> None:
        """Stop every sandbox (those not started are skipped)."""
        for sandbox in self._sandboxes.values():
            sandbox.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _routes(partner: str) -> dict[str, str]:
    """``/<operation path>`` -> method, read from the partner's profile JSON (no code of the layer runs)."""
    text = resources.files("sealgate.partners").joinpath("profiles", f"{partner}.json").read_text(encoding="utf-8")
    operations: dict[str, dict[str, str]] = json.loads(text)["operations"]
    return {"/" + op["path"]: op.get("method", "POST").upper() for op in operations.values()}


def _field(secret: Mapping[str, str], partner: str, name: str) -> str:
    value = secret.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{partner} secret: field {name} is missing or empty")
    return value


def _same(presented: str | None, expected: str) -> bool:
    """Constant-time equality of a received header and the expected credential."""
    return presented is not None and hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def _require_content_type(request: Request, expected: str) -> None:
    media_type = (request.header("Content-Type") or "").split(";", 1)[0].strip().lower()
    if media_type != expected:
        raise _Refused(400, f"Content-Type must be {expected}")


def _json_value(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _Refused(400, "content is not UTF-8 JSON") from None


def _json_object(data: bytes) -> dict[str, Any]:
    value = _json_value(data)
    if not isinstance(value, dict):
        raise _Refused(400, "body is not a JSON object")
    return value


def _php_unserialize_string(data: bytes) -> bytes:
    """The bytes of PHP's ``serialize()`` of one string, ``s:<byte length>:"<bytes>";``."""
    head = _PHP_STRING_HEAD.match(data)
    if head is None:
        raise _Refused(400, "payload is not a serialized PHP string")
    end = head.end() + int(head[1])
    if len(data) != end + 2 or data[end:] != b'";':
        raise _Refused(400, "payload is not a serialized PHP string")
    return data[head.end() : end]


def _json_response(status: int, answer: dict[str, Any]) -> Response:
    body = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, {"Content-Type": "application/json"}, body)
