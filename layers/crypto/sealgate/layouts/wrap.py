"""The whole payload becomes one token: ``{wrap_field: token}`` (Netcore, PayKun).

Bytes::

    plaintext = compact UTF-8 JSON of the payload (no spaces, non-ASCII kept)
    payload   = {wrap_field: cipher(plaintext)}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sealgate import strict_json
from sealgate.errors import AuthenticationFailed, BadInput, BadToken
from sealgate.schemes import base

#: the name audit records give the protected whole body
BODY_FIELD = "<body>"


def canonical_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON: the plaintext of a wrapped body, and the bytes of a JSON request."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Options(base.Options):
    """``wrap_field``: the one field of the protected body."""

    wrap_field: str = base.option(help="field that holds the token")


class _Wrap(base.Layout[Options]):
    name = "wrap"
    options_type = Options

    def protect(self, payload: Any, seal: Callable[[bytes], str], options: Options) -> base.Protected:
        return base.Protected(
            payload={options.wrap_field: seal(canonical_json(payload))}, fields=(BODY_FIELD,)
        )

    def reveal(
        self, payload: Any, unseal: Callable[[str], bytes], options: Options, *, authenticated: bool
    ) -> tuple[Any, tuple[str, ...]]:
        token = payload.get(options.wrap_field) if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise BadInput(f"payload must hold the token in {options.wrap_field!r}")
        plaintext = unseal(token)
        try:
            return strict_json.loads(plaintext), (BODY_FIELD,)
        except strict_json.StrictJsonError:
            if not authenticated:
                # Nothing authenticates such a cipher: a wrong key (the other version across a rotation) or an
                # altered token passes the padding check about once in 256 and yields garbage. Garbage is the
                # only sign, so it fails authentication like bad padding does, and the next key is tried.
                raise AuthenticationFailed(
                    "decrypted body is not JSON (wrong key or altered token)"
                ) from None
            raise BadToken("decrypted body is not UTF-8 JSON") from None


#: the registry's entry (:mod:`sealgate.schemes`)
LAYOUT = _Wrap()
