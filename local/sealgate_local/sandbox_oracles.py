"""The partner's side of every scheme, written independently of Sealgate: what the partner sandboxes check with.

A sandbox (:mod:`sealgate_local.sandboxes`) is composed, for any partner profile, of one oracle per name the
profile gives: its ``body_format``, its ``signing`` scheme (none: nothing to check), its protection ``layout``
and cipher ``scheme``, and its ``webhook`` scheme (for the notifications the sandbox sends). :data:`ORACLES` is
the one table from those names to the oracles, as ``make bench`` has its references: a profile naming something
that has no oracle here is refused when the sandboxes start, with the partner and the name in the message.
The kinds compose freely (any layout with any cipher, any signing): a partner recombining existing schemes
needs no oracle of its own.

Each oracle opens or checks what Sealgate sent with code of its own (``aes_bridge``, ``cryptography``,
``joserfc``, the standard library), never with ``sealgate``'s scheme or layout modules: a bug shared by both
sides would otherwise pass unseen. Of the layer, only a loaded profile's declared names and options are read
(:meth:`ProfileTerms.of`: which secret field holds what, ``encoding``, ``wrap_field``, ``fields``...), with the
defaults the profile's schemes give them; nothing of the layer protects, reveals, signs or verifies here.

What each oracle checks (the first failure answers 400, or 401 for credentials and signatures)::

  body_format
    json            Content-Type application/json; a JSON object
    form            Content-Type application/x-www-form-urlencoded; no repeated names
  signing
    dlocal-v2       X-Date (ISO 8601 with a zone, at most 5 minutes from now: dLocal refuses stale requests),
                    X-Login == <login>, X-Trans-Key == <trans_key>, X-Version present,
                    Authorization == "V2-HMAC-SHA256, Signature: " + hex(HMAC-SHA256(<secret>,
                    X-Login + X-Date + raw body)) in constant time                              (else 401)
    netcore-bearer  Authorization == "Bearer " + <token>, x-asset == <asset>                     (else 401)
                    x-eCode == the code Netcore registers for the profile's cipher and encoding:
                    aes-cbc-static base64 11256, hex 11257; aes-gcm 11258 (the key must fit it: checked at start)
    static-headers  every configured header == its secret field                                (else 401)
  layout
    wrap            the body's <wrap_field> is a token; it opens to UTF-8 JSON; field "<body>"
    enc-params      every enc_<name> opens to UTF-8 text; receipt = hex MD5(text); a name of <fields> that
                    arrives in the clear is refused (the partner would store it unprotected)
    card            <card_field> (if any) has no clear number/cvv; its encrypted_data opens to
                    {"number", "cvv"?}; fields "<card_field>.number", "<card_field>.cvv"
  cipher
    aesbridge-gcm   base64url_nopad -> "+/" alphabet, "=" padding -> aes_bridge.decrypt(token, <key>)
    aes-cbc-static  base64 or hex (the profile's encoding) of AES-256-CBC(<key>[32], <iv>[16], PKCS7(...))
    aes-gcm         base64(nonce[12] | AES-256-GCM(b64decode(<key>)[32], ...) | tag[16])
    laravel-cbc     base64(JSON {"iv", "value", "mac"}); mac == hex(HMAC-SHA256(key, iv + value)) in constant
                    time first; AES-256-CBC(key NUL-padded/truncated to 32, iv) -> PKCS7 -> s:<n>:"<bytes>";
                    key = b64decode(the secret after "base64:"), else its UTF-8 bytes (as Laravel)
    jwe             compact JWE (RSA-OAEP-256 or RSA-OAEP, A256GCM) opened with joserfc and the partner's
                    private key (the stack's partner-side ``jwe_private_key``)
  webhook
    dlocal-v2       notifications sent with X-Date, X-Login = <login> and the V2-HMAC-SHA256 Authorization
                    over the exact body, keyed with <secret>

``<name>`` is the secret field the profile's section names for it. Reasons are fixed text and names from the
profile, never a received value.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar
from urllib.parse import parse_qsl

from sealgate_local.https_server import Request

if TYPE_CHECKING:
    from joserfc.jwk import RSAKey

    from sealgate.partners import Profile

#: The name Sealgate gives a whole protected body (``sealgate.layouts.wrap.BODY_FIELD``), restated, not imported.
BODY_FIELD = "<body>"
#: How far from now dLocal accepts an ``X-Date``.
DLOCAL_MAX_SKEW = timedelta(minutes=5)

_ENC_PREFIX = "enc_"
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]+={0,2}", re.ASCII)
_PHP_STRING_HEAD = re.compile(rb's:(0|[1-9][0-9]{0,18}):"')
_DLOCAL_AUTHORIZATION = re.compile(r"V2-HMAC-SHA256,\s*Signature:\s*([0-9A-Fa-f]{64})", re.ASCII)
_JWE_ALGORITHMS = ("RSA-OAEP-256", "RSA-OAEP", "A256GCM")
_CARD_CLEAR_FIELDS = ("number", "cvv")
#: (cipher, encoding) -> the x-eCode Netcore registers for it.
_NETCORE_ECODES = {
    ("aes-cbc-static", "base64"): "11256",
    ("aes-cbc-static", "hex"): "11257",
    ("aes-gcm", None): "11258",
}


class Refused(Exception):
    """A check failed: answered with ``status`` and the fixed ``reason`` (never a received value)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- what a sandbox knows of its partner --------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileTerms:
    """What a sandbox reads of a partner profile: the names it gives and their options, nothing else.

    ``protection`` is the profile's protection section as loaded: the secret field of each key slot (``key``,
    ``iv``) and the cipher's and layout's options, defaults included; ``signing_options`` and
    ``webhook_options`` likewise (secret fields named by option, e.g. ``token``, ``headers``).
    """

    name: str
    routes: Mapping[str, str]  # "/<operation path>" -> method
    body_format: str
    idempotency_header: str
    cipher: str
    layout: str
    protection: Mapping[str, Any]
    signing: str | None = None
    signing_options: Mapping[str, Any] = field(default_factory=dict)
    webhook: str | None = None
    webhook_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, profile: Profile) -> ProfileTerms:
        """The names and options of a loaded profile (``sealgate.partners.load_profiles``)."""
        protection = profile.protection
        return cls(
            name=profile.name,
            routes={"/" + op.path: op.method.upper() for op in profile.operations.values()},
            body_format=profile.body_format,
            idempotency_header=profile.idempotency_header,
            cipher=protection.cipher.name,
            layout=protection.layout.name,
            protection={
                **protection.key_fields,
                **_options(protection.cipher_options),
                **_options(protection.layout_options),
            },
            signing=None if profile.signing is None else profile.signing.signer.name,
            signing_options={} if profile.signing is None else _options(profile.signing.options),
            webhook=None if profile.webhook is None else profile.webhook.verifier.name,
            webhook_options={} if profile.webhook is None else _options(profile.webhook.options),
        )


def _options(options: Any) -> dict[str, Any]:
    """An options dataclass as a plain mapping (its values as they are: mappings stay read-only)."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}


@dataclass(frozen=True)
class PartnerKeys:
    """The partner's copy of its secret (as Secrets Manager holds it) and what only the partner holds."""

    partner: str
    secret: Mapping[str, str] = field(repr=False)
    partner_side: Mapping[str, str] = field(repr=False, default_factory=dict)

    def field(self, name: str) -> str:
        """Secret field ``name``; a :class:`ValueError` naming it (never a value) if missing or empty."""
        value = self.secret.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{self.partner} secret: field {name} is missing or empty")
        return value

    def own(self, name: str) -> str:
        """Partner-side key material ``name`` (``jwe_private_key``)."""
        value = self.partner_side.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{self.partner}: partner-side {name} is missing")
        return value


@dataclass(frozen=True)
class Opened:
    """What a layout found protected: Sealgate's names for it, and the MD5 receipts (kept out of repr)."""

    fields: tuple[str, ...] = ()
    md5s: dict[str, str] = field(default_factory=dict, repr=False)


# --- the kinds of oracle ----------------------------------------------------------------------------------


class BodyFormat:
    """How the partner reads a request body."""

    content_type: ClassVar[str]

    def __init__(self, terms: ProfileTerms) -> None:
        self.terms = terms

    def read(self, request: Request) -> dict[str, Any]:
        media_type = (request.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        if media_type != self.content_type:
            raise Refused(400, f"Content-Type must be {self.content_type}")
        return self.parse(request.body)

    def parse(self, data: bytes) -> dict[str, Any]:
        raise NotImplementedError


class RequestCheck:
    """How the partner authenticates a request (the profile's ``signing``)."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        self.terms = terms

    def check(self, request: Request) -> None:
        """Raises :class:`Refused`."""
        raise NotImplementedError


class TokenOpener:
    """How the partner opens one token (the profile's cipher ``scheme``)."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        self.terms = terms

    def open(self, token: str, what: str) -> bytes:
        """The plaintext of ``token``; refusals name ``what`` (where the token was: ``encryptedRequest``)."""
        raise NotImplementedError


class BodyOpener:
    """Where the partner finds tokens in a body (the profile's ``layout``)."""

    def __init__(self, terms: ProfileTerms) -> None:
        self.terms = terms

    def open(self, body: dict[str, Any], cipher: TokenOpener) -> Opened:
        raise NotImplementedError


class Notifier:
    """How the partner signs the notifications it sends (the profile's ``webhook``)."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        self.terms = terms

    def headers(self, body: bytes, *, date: str | None = None, secret: str | None = None) -> dict[str, str]:
        """Headers for ``body``; ``date`` replaces the send time, ``secret`` the signing key (forgeries)."""
        raise NotImplementedError


# --- body formats -------------------------------------------------------------------------------------------


class JsonBody(BodyFormat):
    content_type = "application/json"

    def parse(self, data: bytes) -> dict[str, Any]:
        return json_object(data)


class FormBody(BodyFormat):
    content_type = "application/x-www-form-urlencoded"

    def parse(self, data: bytes) -> dict[str, Any]:
        try:
            pairs = parse_qsl(data.decode("ascii"), keep_blank_values=True, strict_parsing=bool(data))
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "body is not a form") from None
        form = dict(pairs)
        if len(form) != len(pairs):
            raise Refused(400, "a parameter is repeated")
        return form


# --- request authentication -----------------------------------------------------------------------------------


class DlocalV2Check(RequestCheck):
    """dLocal's V2-HMAC-SHA256 request signature, its credentials headers and a fresh ``X-Date``."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        super().__init__(terms, keys)
        options = terms.signing_options
        self._login = keys.field(options["login"])
        self._trans_key = keys.field(options["trans_key"])
        self._secret = keys.field(options["secret"])

    def check(self, request: Request) -> None:
        headers = {name: request.header(name) for name in ("X-Date", "X-Login", "X-Trans-Key", "X-Version")}
        for name, value in headers.items():
            if not value:
                raise Refused(401, f"{name} is missing")
        date, login = headers["X-Date"] or "", headers["X-Login"] or ""
        if not same(login, self._login) or not same(headers["X-Trans-Key"], self._trans_key):
            raise Refused(401, "Invalid credentials")
        when: datetime | None
        try:
            when = datetime.fromisoformat(date.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise Refused(401, "X-Date is not an ISO 8601 date-time with a zone")
        match = _DLOCAL_AUTHORIZATION.fullmatch((request.header("Authorization") or "").strip())
        if match is None:
            raise Refused(401, "Authorization is not 'V2-HMAC-SHA256, Signature: <hex>'")
        message = login.encode("utf-8") + date.encode("utf-8") + request.body
        expected = hmac.new(self._secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), match[1].lower().encode("ascii")):
            raise Refused(401, "Invalid signature")
        if abs(datetime.now(UTC) - when) > DLOCAL_MAX_SKEW:
            raise Refused(401, "X-Date is more than 5 minutes from now")


class NetcoreBearerCheck(RequestCheck):
    """Netcore's bearer API key, asset id and the ``x-eCode`` registered for the account's cipher."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        super().__init__(terms, keys)
        options = terms.signing_options
        self._token = keys.field(options["token"])
        self._asset = keys.field(options["asset"])
        code = _NETCORE_ECODES.get((terms.cipher, terms.protection.get("encoding")))
        if code is None:
            raise ValueError(
                f"partner {terms.name}: Netcore registers no x-eCode for cipher {terms.cipher!r}"
                f" (netcore-bearer needs aes-cbc-static or aes-gcm)"
            )
        self._ecode = code

    def check(self, request: Request) -> None:
        if not same(request.header("Authorization"), f"Bearer {self._token}"):
            raise Refused(401, "Authorization is missing or wrong")
        if not same(request.header("x-asset"), self._asset):
            raise Refused(401, "x-asset is missing or wrong")
        if request.header("x-eCode") != self._ecode:
            raise Refused(400, "x-eCode is missing or not the registered method")


class StaticHeadersCheck(RequestCheck):
    """Stored credentials sent as headers (PayKun's ``MerchantId`` and ``AccessToken``)."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        super().__init__(terms, keys)
        headers: Mapping[str, str] = terms.signing_options["headers"]
        self._expected = {header: keys.field(name) for header, name in headers.items()}

    def check(self, request: Request) -> None:
        for header, expected in self._expected.items():
            if not same(request.header(header), expected):
                raise Refused(401, f"{header} is missing or wrong")


# --- ciphers ------------------------------------------------------------------------------------------------


class AesBridgeGcmOpener(TokenOpener):
    """``aes_bridge.decrypt`` after undoing the URL-safe, unpadded form, as Infosimples' sample does."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        super().__init__(terms, keys)
        self._passphrase = keys.field(terms.protection["key"])

    def open(self, token: str, what: str) -> bytes:
        import aes_bridge
        from cryptography.exceptions import InvalidTag

        if _BASE64_TEXT.fullmatch(token) is None:
            raise Refused(400, f"{what} is not base64")
        standard = token.replace("-", "+").replace("_", "/").rstrip("=")
        standard += "=" * (-len(standard) % 4)
        try:
            plaintext: bytes = aes_bridge.decrypt(standard, self._passphrase)
        except (ValueError, InvalidTag):  # binascii.Error is a ValueError
            raise Refused(400, f"{what} does not decrypt") from None
        return plaintext


class AesCbcStaticOpener(TokenOpener):
    """AES-256-CBC with the registered key and IV, PKCS7, written in the profile's encoding."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        super().__init__(terms, keys)
        key_field, iv_field = terms.protection["key"], terms.protection["iv"]
        self._key = keys.field(key_field).encode("utf-8")
        self._iv = keys.field(iv_field).encode("utf-8")
        if len(self._key) != 32 or len(self._iv) != 16:
            raise ValueError(
                f"{terms.name} secret: field {key_field} must be 32 bytes and field {iv_field} 16 "
                "(AES-256-CBC with a static IV)"
            )
        self._encoding: str = terms.protection.get("encoding", "base64")

    def open(self, token: str, what: str) -> bytes:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        try:
            raw = bytes.fromhex(token) if self._encoding == "hex" else base64.b64decode(token, validate=True)
        except ValueError:  # binascii.Error is one
            raise Refused(400, f"{what} is not {self._encoding}") from None
        if not raw or len(raw) % 16:
            raise Refused(400, f"{what} is not whole AES blocks")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            padded = decryptor.update(raw) + decryptor.finalize()
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise Refused(400, f"{what} does not decrypt") from None


class AesGcmOpener(TokenOpener):
    """AES-256-GCM: ``base64(nonce[12] | ciphertext | tag[16])`` under a base64 32-byte key."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        super().__init__(terms, keys)
        key_field = terms.protection["key"]
        try:
            self._key = base64.b64decode(keys.field(key_field), validate=True)
        except binascii.Error:
            self._key = b""
        if len(self._key) != 32:
            raise ValueError(
                f"{terms.name} secret: field {key_field} must be base64 of 32 bytes (AES-256-GCM)"
            )

    def open(self, token: str, what: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            raw = base64.b64decode(token, validate=True)
        except binascii.Error:
            raise Refused(400, f"{what} is not base64") from None
        if len(raw) < 12 + 16:
            raise Refused(400, f"{what} is too short")
        try:
            return AESGCM(self._key).decrypt(raw[:12], raw[12:], None)
        except InvalidTag:
            raise Refused(400, f"{what} does not decrypt") from None


class LaravelCbcOpener(TokenOpener):
    """Laravel's ``Encrypter::decrypt`` (unserialize included) with PayKun's key handling."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        super().__init__(terms, keys)
        key_field = terms.protection["key"]
        app_key = keys.field(key_field)
        if app_key.startswith("base64:"):
            try:
                self._key = base64.b64decode(app_key.removeprefix("base64:"), validate=True)
            except binascii.Error:
                raise ValueError(
                    f"{terms.name} secret: field {key_field} after base64: is not base64"
                ) from None
        else:
            self._key = app_key.encode("utf-8")

    def open(self, token: str, what: str) -> bytes:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        try:
            envelope = json.loads(base64.b64decode(token, validate=True))
        except (ValueError, RecursionError):
            raise Refused(400, f"{what} is not a Laravel envelope") from None
        if not isinstance(envelope, dict) or not all(
            isinstance(envelope.get(name), str) for name in ("iv", "value", "mac")
        ):
            raise Refused(400, f"{what} is not a Laravel envelope")
        iv_text, value_text, mac = envelope["iv"], envelope["value"], envelope["mac"]
        expected = hmac.new(self._key, (iv_text + value_text).encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), mac.encode("utf-8")):
            raise Refused(400, "The MAC is invalid.")
        try:
            iv = base64.b64decode(iv_text, validate=True)
            ciphertext = base64.b64decode(value_text, validate=True)
        except binascii.Error:
            raise Refused(400, "The payload is invalid.") from None
        if len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
            raise Refused(400, "The payload is invalid.")
        aes_key = self._key[:32].ljust(32, b"\0")  # openssl_encrypt's handling of the key PayKun passes
        decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            padded = decryptor.update(ciphertext) + decryptor.finalize()
            serialized = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise Refused(400, "Could not decrypt the data.") from None
        return php_unserialize_string(serialized)


class JweOpener(TokenOpener):
    """Compact JWE opened with ``joserfc`` and the partner's own private key."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        from joserfc.jwk import RSAKey

        super().__init__(terms, keys)
        name = terms.cipher.replace("-", "_") + "_private_key"  # the stack's partner-side naming
        public_field = terms.protection["key"]
        private_pem, public_pem = keys.own(name), keys.field(public_field)
        try:
            self._private_key: RSAKey = RSAKey.import_key(private_pem)
        except Exception:  # joserfc and cryptography raise many types; none may show the key
            raise ValueError(f"{terms.name}: partner-side {name} is not an RSA private key in PEM") from None
        if not self._private_key.is_private:
            raise ValueError(f"{terms.name}: partner-side {name} is a public key")
        try:
            public = RSAKey.import_key(public_pem).as_dict(private=False)
        except Exception:  # as above
            public = {}
        mine = self._private_key.as_dict(private=False)
        if (public.get("n"), public.get("e")) != (mine.get("n"), mine.get("e")):
            raise ValueError(
                f"{terms.name}: partner-side {name} is not the private half of secret field {public_field}"
            )

    def open(self, token: str, what: str) -> bytes:
        from joserfc import jwe
        from joserfc.errors import JoseError

        try:
            plaintext = jwe.decrypt_compact(token, self._private_key, algorithms=_JWE_ALGORITHMS).plaintext
        except (JoseError, ValueError):
            raise Refused(400, f"{what} does not decrypt") from None
        return plaintext or b""


# --- layouts ------------------------------------------------------------------------------------------------


class WrapOpener(BodyOpener):
    """The whole JSON payload in one token, ``{wrap_field: token}``."""

    def open(self, body: dict[str, Any], cipher: TokenOpener) -> Opened:
        wrap_field: str = self.terms.protection["wrap_field"]
        token = body.get(wrap_field)
        if not isinstance(token, str) or not token:
            raise Refused(400, f"{wrap_field} is missing")
        json_value(cipher.open(token, wrap_field))
        return Opened((BODY_FIELD,))


class EncParamsOpener(BodyOpener):
    """Infosimples' ``enc_<name>`` parameters, each opened to UTF-8 text, with an MD5 receipt per name."""

    def open(self, body: dict[str, Any], cipher: TokenOpener) -> Opened:
        protected: tuple[str, ...] = self.terms.protection["fields"]
        for name in protected:
            if name in body:
                raise Refused(400, f"parameter {name} arrived in the clear, not as {_ENC_PREFIX}{name}")
        md5s: dict[str, str] = {}
        for name, value in body.items():
            if not name.startswith(_ENC_PREFIX) or name == _ENC_PREFIX:
                continue
            if name.removeprefix(_ENC_PREFIX) in body:
                raise Refused(400, "a parameter arrived both in the clear and as enc_")
            if not isinstance(value, str):
                raise Refused(400, "an enc_ parameter is not a string")
            text = cipher.open(value, "an enc_ parameter")
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:
                raise Refused(400, "an enc_ parameter does not decrypt") from None
            md5s[name.removeprefix(_ENC_PREFIX)] = hashlib.md5(text, usedforsecurity=False).hexdigest()
        return Opened(tuple(md5s), md5s)


class CardOpener(BodyOpener):
    """dLocal's card: ``number`` and ``cvv`` only inside ``encrypted_data``."""

    def open(self, body: dict[str, Any], cipher: TokenOpener) -> Opened:
        card_field: str = self.terms.protection["card_field"]
        if card_field not in body:
            return Opened()  # a refund, or a payment by card token: nothing encrypted to check
        card = body[card_field]
        if not isinstance(card, dict):
            raise Refused(400, f"{card_field} is not an object")
        if any(name in card for name in _CARD_CLEAR_FIELDS):
            raise Refused(400, f"{card_field} number or cvv sent in clear")
        token = card.get("encrypted_data")
        if token is None:
            return Opened()  # a card token or saved card
        if not isinstance(token, str):
            raise Refused(400, f"{card_field} encrypted_data is not a string")
        opened = json_value(cipher.open(token, f"{card_field} encrypted_data"))
        if (
            not isinstance(opened, dict)
            or not isinstance(opened.get("number"), str)
            or not set(opened) <= set(_CARD_CLEAR_FIELDS)
            or not all(isinstance(value, str) and value for value in opened.values())
        ):
            raise Refused(400, f"{card_field} encrypted_data does not hold number and optional cvv")
        return Opened(tuple(f"{card_field}.{name}" for name in _CARD_CLEAR_FIELDS if name in opened))


# --- webhooks -----------------------------------------------------------------------------------------------


class DlocalV2Notifier(Notifier):
    """dLocal's notification headers: ``X-Date``, ``X-Login`` and the V2-HMAC-SHA256 ``Authorization``."""

    def __init__(self, terms: ProfileTerms, keys: PartnerKeys) -> None:
        super().__init__(terms, keys)
        self._secret = keys.field(terms.webhook_options["secret"])
        self._login = keys.field(terms.webhook_options["login"])

    def headers(self, body: bytes, *, date: str | None = None, secret: str | None = None) -> dict[str, str]:
        if date is None:
            date = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        key = (self._secret if secret is None else secret).encode("utf-8")
        signature = hmac.new(key, self._login.encode("utf-8") + date.encode("utf-8") + body, hashlib.sha256)
        return {
            "X-Date": date,
            "X-Login": self._login,
            "Authorization": f"V2-HMAC-SHA256, Signature: {signature.hexdigest()}",
        }


# --- the one table ------------------------------------------------------------------------------------------


class OracleTable(TypedDict):
    body_format: dict[str, type[BodyFormat]]
    signing: dict[str, type[RequestCheck]]
    layout: dict[str, type[BodyOpener]]
    cipher: dict[str, type[TokenOpener]]
    webhook: dict[str, type[Notifier]]


#: kind -> the name a profile gives -> the independent oracle for it.
ORACLES: OracleTable = {
    "body_format": {"json": JsonBody, "form": FormBody},
    "signing": {
        "dlocal-v2": DlocalV2Check,
        "netcore-bearer": NetcoreBearerCheck,
        "static-headers": StaticHeadersCheck,
    },
    "layout": {"wrap": WrapOpener, "enc-params": EncParamsOpener, "card": CardOpener},
    "cipher": {
        "aesbridge-gcm": AesBridgeGcmOpener,
        "aes-cbc-static": AesCbcStaticOpener,
        "aes-gcm": AesGcmOpener,
        "laravel-cbc": LaravelCbcOpener,
        "jwe": JweOpener,
    },
    "webhook": {"dlocal-v2": DlocalV2Notifier},
}

_OracleT = TypeVar("_OracleT")


def _oracle(table: Mapping[str, _OracleT], kind: str, name: str, partner: str) -> _OracleT:
    found = table.get(name)
    if found is None:
        raise ValueError(
            f"partner {partner}: the sandboxes have no oracle for {kind} {name!r} "
            f"(they have: {', '.join(table)}); add one to sealgate_local.sandbox_oracles.ORACLES"
        )
    return found


@dataclass(frozen=True)
class PartnerChecks:
    """One partner's checks, composed from the oracles its profile names (see :func:`compose`)."""

    body_format: BodyFormat
    authentication: RequestCheck | None
    layout: BodyOpener
    cipher: TokenOpener
    notifier: Notifier | None

    def check(self, request: Request) -> tuple[dict[str, Any], Opened]:
        """The partner's checks on a request to one of its routes: the body read, and what was opened in it.

        Raises :class:`Refused`.
        """
        if self.authentication is not None:
            self.authentication.check(request)
        body = self.body_format.read(request)
        return body, self.layout.open(body, self.cipher)


def compose(terms: ProfileTerms, keys: PartnerKeys) -> PartnerChecks:
    """The checks for ``terms`` from :data:`ORACLES`, with the partner's keys.

    Raises
    ------
    ValueError
        A name the profile gives has no oracle, the combination cannot be checked (netcore-bearer without an
        x-eCode), or the keys lack a field or do not fit; the message names the partner and what, never a value.
    """
    partner = terms.name
    # Every name is looked up first, so a profile with several unknown names fails on the first in this order.
    body_format = _oracle(ORACLES["body_format"], "body_format", terms.body_format, partner)
    signing = (
        None if terms.signing is None else _oracle(ORACLES["signing"], "signing", terms.signing, partner)
    )
    layout = _oracle(ORACLES["layout"], "layout", terms.layout, partner)
    cipher = _oracle(ORACLES["cipher"], "cipher", terms.cipher, partner)
    webhook = (
        None if terms.webhook is None else _oracle(ORACLES["webhook"], "webhook", terms.webhook, partner)
    )
    return PartnerChecks(
        body_format=body_format(terms),
        authentication=None if signing is None else signing(terms, keys),
        layout=layout(terms),
        cipher=cipher(terms, keys),
        notifier=None if webhook is None else webhook(terms, keys),
    )


# --- shared helpers -----------------------------------------------------------------------------------------


def same(presented: str | None, expected: str) -> bool:
    """Constant-time equality of a received header and the expected credential."""
    return presented is not None and hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def json_value(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise Refused(400, "content is not UTF-8 JSON") from None


def json_object(data: bytes) -> dict[str, Any]:
    value = json_value(data)
    if not isinstance(value, dict):
        raise Refused(400, "body is not a JSON object")
    return value


def php_unserialize_string(data: bytes) -> bytes:
    """The bytes of PHP's ``serialize()`` of one string, ``s:<byte length>:"<bytes>";``."""
    head = _PHP_STRING_HEAD.match(data)
    if head is None:
        raise Refused(400, "payload is not a serialized PHP string")
    end = head.end() + int(head[1])
    if len(data) != end + 2 or data[end:] != b'";':
        raise Refused(400, "payload is not a serialized PHP string")
    return data[head.end() : end]
