"""Netcore's request authentication: a bearer API key, the asset id and the ``x-eCode`` of the cipher.

Headers::

    Authorization: Bearer <api_key>          a stored credential: attached by the gateway, never handed back
    x-asset:       <asset_id>
    x-eCode:       11256 | 11257 | 11258     what the protection cipher declares (see Cipher.attribute)

A profile whose protection cannot name its ``x-eCode`` is refused when profiles load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sealgate.errors import UnsupportedOperation
from sealgate.schemes import base

X_ECODE = "x-eCode"


@dataclass(frozen=True)
class Options(base.Options):
    """Which secret fields hold the API key and the asset id."""

    token: str = base.option(help="secret field holding the bearer API key (a stored credential)")
    asset: str = base.option(help="secret field holding the asset id")


class _NetcoreBearer(base.Signer[Options]):
    name = "netcore-bearer"
    options_type = Options
    secret_options = ("token", "asset")

    def requires(self, options: Options) -> str | None:
        return X_ECODE

    def sign(
        self,
        options: Options,
        secret: Mapping[str, str],
        body: bytes,
        *,
        protection: str | None,
        now: datetime | None = None,
    ) -> base.SignedHeaders:
        if protection is None:  # pragma: no cover - refused when profiles load
            raise UnsupportedOperation("the protection cipher has no x-eCode")
        return base.SignedHeaders(
            derived={X_ECODE: protection, "x-asset": secret[options.asset]},
            credentials={"Authorization": f"Bearer {secret[options.token]}"},
        )


#: the registry's entry (:mod:`sealgate.schemes`)
SIGNER = _NetcoreBearer()
