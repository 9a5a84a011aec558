"""A partner profile, checked strictly and resolved against the scheme registry when it loads.

A profile is one JSON file (see ``profile.schema.json`` beside this module and the README). Loading it checks
the document against the schema, then asks each scheme it names to parse its options: an unknown key, a
misspelled option, a secret field missing from ``secret_fields`` or a signer that cannot describe the
protection (Netcore's ``x-eCode``) is a :class:`ProfileError` naming the profile and the key.

The resolved profile does the partner's work through its schemes: :meth:`Protection.protect` /
:meth:`Protection.reveal`, :meth:`Signing.sign` and :meth:`Webhook.verify`. Nothing here branches on a
scheme's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sealgate.errors import BadInput, UnsupportedOperation
from sealgate.schemes import UnknownScheme, lookup
from sealgate.schemes.base import (
    Cipher,
    Layout,
    Notification,
    OptionError,
    Options,
    Protected,
    SignedHeaders,
    Signer,
    Verifier,
)

MAX_IDEMPOTENCY_KEY = 128
DEFAULT_IDEMPOTENCY_HEADER = "Idempotency-Key"


class ProfileError(ValueError):
    """A profile is invalid: a deployment error, raised at cold start and by ``make test``."""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str


@dataclass(frozen=True)
class Protection:
    """A cipher applied through a layout, with the secret fields that hold the cipher's key slots."""

    cipher: Cipher[Any]
    cipher_options: Options
    layout: Layout[Any]
    layout_options: Options
    key_fields: Mapping[str, str]  # key slot -> secret field

    @property
    def scheme(self) -> str:
        return self.cipher.name

    @property
    def symmetric(self) -> bool:
        """Whether Sealgate can also decrypt what it protects (not for public-key schemes)."""
        return self.cipher.symmetric

    def require_symmetric(self) -> None:
        """:class:`UnsupportedOperation` unless Sealgate can decrypt what this protection makes."""
        if not self.symmetric:
            raise UnsupportedOperation("this partner's scheme is public-key: only the partner can decrypt")

    def keys(self, secret: Mapping[str, str], *, decrypting: bool) -> Mapping[str, Any]:
        return self.cipher.prepare(
            {slot: secret[name] for slot, name in self.key_fields.items()}, decrypting=decrypting
        )

    def same_keys(self, one: Mapping[str, str], other: Mapping[str, str]) -> bool:
        """Whether two versions of the secret hold the same key material for this protection."""
        return all(one.get(name) == other.get(name) for name in self.key_fields.values())

    def protect(self, payload: Any, secret: Mapping[str, str]) -> Protected:
        """``payload`` protected the partner's way with the keys in ``secret``."""
        keys = self.keys(secret, decrypting=False)
        return self.layout.protect(
            payload,
            lambda plaintext: self.cipher.encrypt(plaintext, keys, self.cipher_options),
            self.layout_options,
        )

    def reveal(self, payload: Any, secret: Mapping[str, str]) -> tuple[Any, tuple[str, ...]]:
        """Undo :meth:`protect` (symmetric schemes only); the payload and the names revealed."""
        self.require_symmetric()
        keys = self.keys(secret, decrypting=True)
        return self.layout.reveal(
            payload,
            lambda token: self.cipher.decrypt(token, keys, self.cipher_options),
            self.layout_options,
            authenticated=self.cipher.authenticated,
        )


@dataclass(frozen=True)
class Signing:
    """A request signer with its options, and what it needs of the protection (``x-eCode``)."""

    signer: Signer[Any]
    options: Options
    protection_attribute: str | None

    def sign(self, secret: Mapping[str, str], body: bytes, *, now: datetime | None = None) -> SignedHeaders:
        return self.signer.sign(self.options, secret, body, protection=self.protection_attribute, now=now)


@dataclass(frozen=True)
class Webhook:
    verifier: Verifier[Any]
    options: Options

    def verify(
        self,
        secret: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> Notification:
        return self.verifier.verify(self.options, secret, headers, body, now=now)


@dataclass(frozen=True)
class Profile:
    """One partner, as its JSON file describes it, resolved against the scheme registry."""

    name: str
    base_url: str
    secret_fields: tuple[str, ...]
    protection: Protection
    signing: Signing | None
    webhook: Webhook | None
    operations: Mapping[str, Operation]
    body_format: Literal["json", "form"] = "json"
    idempotency_header: str = DEFAULT_IDEMPOTENCY_HEADER
    store_response_body: bool = False
    release_stored_credentials: bool = False
    description: str = ""

    @property
    def scheme(self) -> str:
        return self.protection.scheme

    def operation(self, name: object) -> Operation:
        found = self.operations.get(name) if isinstance(name, str) else None
        if found is None:
            raise BadInput("operation must be one of the partner's operations")
        return found

    def request_headers(
        self,
        secret: Mapping[str, str],
        body: bytes,
        *,
        idempotency_key: str | None,
        now: datetime | None = None,
    ) -> SignedHeaders:
        """What signing adds to ``body`` (exact bytes), and the idempotency header when a key is given."""
        signed = self.signing.sign(secret, body, now=now) if self.signing else SignedHeaders({}, {})
        key = check_idempotency_key(idempotency_key)
        if key is not None:
            signed.derived[self.idempotency_header] = key
        return signed


def check_idempotency_key(key: object) -> str | None:
    """An idempotency key is printable ASCII without spaces, at most 128 characters."""
    if key is None:
        return None
    if not isinstance(key, str) or not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii():
        raise BadInput("idempotency_key must be 1-128 printable ASCII characters")
    if not key.isprintable() or " " in key:
        raise BadInput("idempotency_key must be 1-128 printable ASCII characters")
    return key


# --- parsing -------------------------------------------------------------------------------------------------


def parse_profile(document: Mapping[str, Any]) -> Profile:
    """Check one profile document (schema, then each scheme's options) and resolve it."""
    from sealgate.partners import schema

    name = str(document.get("name")) if isinstance(document, Mapping) else "?"
    schema.check(document, name)
    secret_fields = tuple(document["secret_fields"])
    where = f"profile {name}"
    try:
        protection = _protection(document["protection"], secret_fields, f"{where}: protection")
        signing = _signing(document.get("signing"), protection, secret_fields, f"{where}: signing")
        webhook = _webhook(document.get("webhook"), secret_fields, f"{where}: webhook")
    except (OptionError, UnknownScheme) as error:
        raise ProfileError(error.message) from None
    base_url = str(document["base_url"])
    return Profile(
        name=name,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        secret_fields=secret_fields,
        protection=protection,
        signing=signing,
        webhook=webhook,
        operations={
            op: Operation(spec["method"], spec["path"]) for op, spec in document["operations"].items()
        },
        body_format=document.get("body_format", "json"),
        idempotency_header=document.get("idempotency_header", DEFAULT_IDEMPOTENCY_HEADER),
        store_response_body=bool(document.get("store_response_body", False)),
        release_stored_credentials=bool(document.get("release_stored_credentials", False)),
        description=str(document.get("description", "")),
    )


def _secret_field(value: str, secret_fields: tuple[str, ...], where: str) -> str:
    if value not in secret_fields:
        raise OptionError(f"{where} names {value!r}, which is not in secret_fields")
    return value


def _protection(section: Mapping[str, Any], secret_fields: tuple[str, ...], where: str) -> Protection:
    cipher = lookup("cipher", section["scheme"])
    layout = lookup("layout", section["layout"])
    if not cipher.can_encrypt:
        raise OptionError(f"{where}: scheme {cipher.name!r} cannot encrypt")
    slots = {slot.name for slot in cipher.key_slots}
    cipher_names = set(cipher.options_type.names())
    layout_names = set(layout.options_type.names())
    clash = (slots | cipher_names) & layout_names
    if clash:  # pragma: no cover - a registry inconsistency, caught by the scheme tests
        raise OptionError(f"{where}: options {sorted(clash)} are ambiguous between scheme and layout")
    known = {"scheme", "layout"} | slots | cipher_names | layout_names
    for key in section:
        if key not in known:
            raise OptionError(f"{where}: unknown option {key!r} (known: {', '.join(sorted(known))})")
    key_fields: dict[str, str] = {}
    for slot in sorted(slots):
        if slot not in section:
            raise OptionError(f"{where}: option {slot!r} (the secret field holding the {slot}) is required")
        if not isinstance(section[slot], str):
            raise OptionError(f"{where}: option {slot!r} must name a secret field")
        key_fields[slot] = _secret_field(section[slot], secret_fields, f"{where}: option {slot!r}")
    return Protection(
        cipher=cipher,
        cipher_options=cipher.options({k: v for k, v in section.items() if k in cipher_names}, where=where),
        layout=layout,
        layout_options=layout.options({k: v for k, v in section.items() if k in layout_names}, where=where),
        key_fields=key_fields,
    )


def _signing(
    section: Mapping[str, Any] | None, protection: Protection, secret_fields: tuple[str, ...], where: str
) -> Signing | None:
    if section is None:
        return None
    signer = lookup("signer", section["scheme"])
    options = signer.options({k: v for k, v in section.items() if k != "scheme"}, where=where)
    for field in signer.secret_fields(options):
        _secret_field(field, secret_fields, where)
    wanted = signer.requires(options)
    attribute = None
    if wanted is not None:
        attribute = protection.cipher.attribute(protection.cipher_options, wanted)
        if attribute is None:
            raise OptionError(
                f"{where}: {signer.name} sends {wanted}, which protection scheme {protection.scheme!r} "
                "cannot describe"
            )
    return Signing(signer=signer, options=options, protection_attribute=attribute)


def _webhook(section: Mapping[str, Any] | None, secret_fields: tuple[str, ...], where: str) -> Webhook | None:
    if section is None:
        return None
    verifier = lookup("verifier", section["scheme"])
    options = verifier.options({k: v for k, v in section.items() if k != "scheme"}, where=where)
    for field in verifier.secret_fields(options):
        _secret_field(field, secret_fields, where)
    return Webhook(verifier=verifier, options=options)
