"""The one registry of schemes: ciphers, request signers, webhook verifiers and payload layouts.

Each scheme lives in its own module and describes itself there (:mod:`sealgate.schemes.base` has the
contracts). This table only maps a name to the module that holds it and a one-line summary, so that
listing schemes imports nothing and looking one up imports only its module, as ``codecs.lookup`` does.
Adding a scheme is one module and one line here; the CLI, profiles, signing, webhooks, the local stack and
``make bench`` all ask this registry.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal, overload

from sealgate.errors import InputError

if TYPE_CHECKING:
    from sealgate.schemes.base import Cipher, Layout, Signer, Verifier

Kind = Literal["cipher", "signer", "verifier", "layout"]

#: kind -> name -> (module, attribute, summary)
_REGISTRY: dict[str, dict[str, tuple[str, str, str]]] = {
    "cipher": {
        "aesbridge-gcm": (
            "sealgate.schemes.aesbridge_gcm",
            "CIPHER",
            "AesBridge AES-256-GCM, PBKDF2 passphrase (Infosimples)",
        ),
        "aesbridge-cbc": (
            "sealgate.schemes.aesbridge_cbc",
            "CIPHER",
            "AesBridge AES-256-CBC + HMAC-SHA256, PBKDF2 passphrase",
        ),
        "aesbridge-legacy": (
            "sealgate.schemes.aesbridge_legacy",
            "CIPHER",
            "AesBridge legacy OpenSSL 'Salted__' CBC (decrypt only, unauthenticated)",
        ),
        "laravel-cbc": (
            "sealgate.schemes.laravel_cbc",
            "CIPHER",
            "Laravel envelope AES-256-CBC + HMAC-SHA256 around PHP serialize() (PayKun)",
        ),
        "aes-cbc-static": (
            "sealgate.schemes.aes_cbc_static",
            "CIPHER",
            "AES-256-CBC, static key and IV, base64 or hex (Netcore 11256/11257)",
        ),
        "aes-gcm": ("sealgate.schemes.aes_gcm", "CIPHER", "AES-256-GCM, base64 raw key (Netcore 11258)"),
        "jwe": (
            "sealgate.schemes.jwe",
            "CIPHER",
            "compact JWE RSA-OAEP-256/RSA-OAEP + A256GCM (dLocal card data)",
        ),
    },
    "signer": {
        "dlocal-v2": ("sealgate.schemes.dlocal_v2", "SIGNER", "dLocal V2-HMAC-SHA256 request signature"),
        "netcore-bearer": (
            "sealgate.schemes.netcore_bearer",
            "SIGNER",
            "Netcore bearer API key, asset and x-eCode",
        ),
        "static-headers": (
            "sealgate.schemes.static_headers",
            "SIGNER",
            "stored header values, sent as they are",
        ),
    },
    "verifier": {
        "dlocal-v2": (
            "sealgate.schemes.dlocal_v2",
            "VERIFIER",
            "dLocal V2-HMAC-SHA256 notification signature",
        ),
    },
    "layout": {
        "wrap": (
            "sealgate.layouts.wrap",
            "LAYOUT",
            "the whole body, as compact JSON, becomes {wrap_field: token}",
        ),
        "enc-params": (
            "sealgate.layouts.enc_params",
            "LAYOUT",
            "listed parameters become enc_<name> tokens, with MD5 receipts (Infosimples)",
        ),
        "card": (
            "sealgate.layouts.card",
            "LAYOUT",
            "a card's number and cvv become one encrypted_data token (dLocal)",
        ),
    },
}


class UnknownScheme(InputError):
    code = "unknown_scheme"
    default_message = "unknown scheme"


def names(kind: Kind) -> tuple[str, ...]:
    """Registered names of ``kind``, in registry order (imports nothing)."""
    return tuple(_REGISTRY[kind])


def summary(kind: Kind, name: str) -> str:
    """One line about scheme ``name`` (imports nothing)."""
    return _entry(kind, name)[2]


@overload
def lookup(kind: Literal["cipher"], name: str) -> Cipher[Any]: ...
@overload
def lookup(kind: Literal["signer"], name: str) -> Signer[Any]: ...
@overload
def lookup(kind: Literal["verifier"], name: str) -> Verifier[Any]: ...
@overload
def lookup(kind: Literal["layout"], name: str) -> Layout[Any]: ...
def lookup(kind: Kind, name: str) -> Any:
    """The scheme ``name`` of ``kind``, importing its module on first use; :class:`UnknownScheme` otherwise."""
    module, attribute, _ = _entry(kind, name)
    return getattr(import_module(module), attribute)


def _entry(kind: Kind, name: str) -> tuple[str, str, str]:
    found = _REGISTRY[kind].get(name) if isinstance(name, str) else None
    if found is None:
        raise UnknownScheme(f"unknown {kind} scheme {name!r}; known: {', '.join(_REGISTRY[kind])}")
    return found
