"""Headers that authenticate a request to a partner, by the profile's ``signing.scheme``.

- ``dlocal-v2``: ``X-Date``, ``X-Login``, ``X-Trans-Key``, ``X-Version``, ``Authorization:
  V2-HMAC-SHA256, Signature: hex(HMAC-SHA256(secret, X-Login + X-Date + body))`` over the exact body bytes.
- ``netcore-bearer``: ``x-eCode`` (from the protection scheme), ``x-asset``, ``Authorization: Bearer``.
- ``static-headers``: header -> secret field, copied as they are.

Every scheme adds the profile's idempotency header when a key is given. The result holds credentials: it goes
to the partner (or back to the internal caller) and never to a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sealgate.errors import BadInput, UnsupportedOperation
from sealgate.profiles import Profile

MAX_IDEMPOTENCY_KEY = 128


def check_idempotency_key(key: str | None) -> str | None:
    """An idempotency key is printable ASCII without spaces, at most 128 characters."""
    if key is None:
        return None
    if not isinstance(key, str) or not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii():
        raise BadInput("idempotency_key must be 1-128 printable ASCII characters")
    if not key.isprintable() or " " in key:
        raise BadInput("idempotency_key must be 1-128 printable ASCII characters")
    return key


def netcore_ecode(profile: Profile) -> str:
    """Netcore's x-eCode for the profile's protection scheme (11256, 11257 or 11258)."""
    if profile.scheme == "aes-gcm":
        from sealgate.schemes import aes_gcm

        return aes_gcm.X_ECODE
    from sealgate.schemes import aes_cbc_static

    return aes_cbc_static.X_ECODE[str(profile.protection.get("encoding", "base64"))]


def request_headers(
    profile: Profile,
    secret: Mapping[str, str],
    body: bytes,
    *,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers to send with ``body`` (exact bytes) to ``profile``'s partner."""
    signing = profile.signing
    if signing is None:
        raise UnsupportedOperation("this partner's requests are not signed")
    headers: dict[str, str] = {}
    scheme = signing["scheme"]
    if scheme == "dlocal-v2":
        from sealgate.schemes import dlocal_v2

        login = secret[signing["login"]]
        date = dlocal_v2.format_x_date(now)
        headers.update(
            {
                "X-Date": date,
                "X-Login": login,
                "X-Trans-Key": secret[signing["trans_key"]],
                "X-Version": str(signing.get("version", "2.1")),
                "Authorization": dlocal_v2.authorization(secret[signing["secret"]], login, date, body),
            }
        )
    elif scheme == "netcore-bearer":
        headers.update(
            {
                "x-eCode": netcore_ecode(profile),
                "x-asset": secret[signing["asset"]],
                "Authorization": f"Bearer {secret[signing['token']]}",
            }
        )
    else:
        headers.update({header: secret[name] for header, name in signing["headers"].items()})
    key = check_idempotency_key(idempotency_key)
    if key is not None:
        headers[profile.idempotency_header] = key
    return headers
