"""What the AesBridge ciphers share: a passphrase rather than a raw key, made by ``keygen`` as URL-safe text,
and the URL-safe unpadded form of the tokens they write (Infosimples' ``enc_`` parameters)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sealgate.schemes import base

PASSPHRASE = base.KeySlot("key", "file holding the passphrase", generated="passphrase")


def new_passphrase() -> dict[str, str]:
    """A fresh passphrase: 32 random bytes as URL-safe text."""
    return {PASSPHRASE.generated: secrets.token_urlsafe(32)}


@dataclass(frozen=True)
class Options(base.Options):
    """``urlsafe``: the URL-safe alphabet without padding (Infosimples' ``enc_`` parameters)."""

    urlsafe: bool = base.option(
        False, help="URL-safe base64 without padding (Infosimples' enc_ form)", encrypt_only=True
    )


class PassphraseCipher(base.Cipher[Options]):
    """An authenticated AesBridge cipher keyed by a passphrase (PBKDF2, see :mod:`aesbridge_kdf`)."""

    options_type = Options
    authenticated = True
    key_slots = (PASSPHRASE,)

    def keygen(self, options: Options) -> dict[str, str]:
        return new_passphrase()
