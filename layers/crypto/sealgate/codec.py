"""Text forms of binary tokens: base64 (standard or URL-safe, padded or not) and hex.

Decoders are strict about the alphabet and raise :class:`~sealgate.errors.BadToken`; they tolerate only
surrounding whitespace.
"""

from __future__ import annotations

import base64
import binascii

from sealgate.errors import BadInput, BadToken

_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def as_bytes(value: str | bytes) -> bytes:
    """``str`` is UTF-8 encoded; ``bytes`` pass through. A lone surrogate is :class:`BadInput`."""
    if not isinstance(value, str):
        return bytes(value)
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("text is not encodable as UTF-8") from None


def b64encode(data: bytes, *, urlsafe: bool = False) -> str:
    """Standard base64 with ``=`` padding, or the URL-safe alphabet (``-``, ``_``) without padding."""
    if urlsafe:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str | bytes, *, what: str = "token") -> bytes:
    """Decode base64 in either alphabet, with or without ``=`` padding.

    Raises :class:`BadToken` for any character outside the alphabets or an impossible length.
    """
    try:
        raw = as_bytes(text).strip()
    except BadInput:
        raise BadToken(f"{what} is not base64") from None
    if (b"+" in raw or b"/" in raw) and (b"-" in raw or b"_" in raw):
        raise BadToken(f"{what} mixes the standard and URL-safe base64 alphabets")
    raw = raw.translate(_URLSAFE_TO_STANDARD)
    unpadded = raw.rstrip(b"=")
    if len(raw) - len(unpadded) > 2 or len(unpadded) % 4 == 1:
        raise BadToken(f"{what} has an impossible base64 length")
    padded = unpadded + b"=" * (-len(unpadded) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise BadToken(f"{what} is not base64") from None
    if base64.b64encode(data).rstrip(b"=") != unpadded:  # unused low bits set: not what any encoder writes
        raise BadToken(f"{what} is not canonical base64")
    return data


def hexdecode(text: str | bytes, *, what: str = "token") -> bytes:
    """Decode hex (either case); raises :class:`BadToken` otherwise."""
    try:
        return bytes.fromhex(as_bytes(text).strip().decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise BadToken(f"{what} is not hex") from None
