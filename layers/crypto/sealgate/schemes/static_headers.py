"""Stored header values sent as they are (PayKun's ``MerchantId`` and ``AccessToken``).

``headers`` maps each header name to a field of the partner's secret. Every value is a stored credential:
the gateway attaches it to the requests it forwards and never hands it back to a caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sealgate.schemes import base


@dataclass(frozen=True)
class Options(base.Options):
    """Header name -> secret field."""

    headers: Mapping[str, str] = base.option(help="header name -> secret field holding its value")


class _StaticHeaders(base.Signer[Options]):
    name = "static-headers"
    options_type = Options
    secret_options = ("headers",)

    def sign(
        self,
        options: Options,
        secret: Mapping[str, str],
        body: bytes,
        *,
        protection: str | None,
        now: datetime | None = None,
    ) -> base.SignedHeaders:
        return base.SignedHeaders(
            derived={}, credentials={header: secret[name] for header, name in options.headers.items()}
        )


#: the registry's entry (:mod:`sealgate.schemes`)
SIGNER = _StaticHeaders()
