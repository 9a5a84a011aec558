"""The AesBridge oracle (the ``aes-bridge`` reference package) and its vectors, for the interop tests.

``aes_bridge`` puts its own folder on ``sys.path`` and imports top-level ``cbc``, ``gcm``, ``legacy`` and
``common``: it is only ever imported here, through the ``oracle_module`` fixture, never by the layer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).parent / "vectors" / "aesbridge.json"
HOW = "pip install aes-bridge==2.0.4 (the dev extra)"


def load_oracle(oracle_module: Callable[[str, str], object]) -> Any:
    """The ``aes_bridge`` module, or fail (CI) / skip (elsewhere) when it is missing."""
    return oracle_module("aes_bridge", HOW)


@dataclass(frozen=True)
class Vector:
    passphrase: str | bytes
    plaintext: bytes
    token: str

    @property
    def label(self) -> str:
        """A test id that shows the case without the token."""
        kind = "text" if isinstance(self.passphrase, str) else "binary"
        return f"{kind}-pass-{len(self.plaintext)}-bytes"


def vectors(kind: str) -> list[Vector]:
    """The ``kind`` vectors (``gcm``, ``gcm_infosimples``, ``cbc``, ``legacy``) made by aes_bridge."""
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))[kind]
    return [
        Vector(
            passphrase=case["passphrase"] if "passphrase" in case else bytes.fromhex(case["passphrase_hex"]),
            plaintext=bytes.fromhex(case["plaintext_hex"]),
            token=case["token"],
        )
        for case in cases
    ]


def infosimples_form(token: bytes) -> str:
    """The Infosimples sample's own conversion of an ``aes_bridge.encrypt`` result (seed 000), verbatim."""
    return token.decode("ascii").replace("+", "-").replace("/", "_").replace("=", "")


def standard_form(token: str) -> bytes:
    """Back from the URL-safe unpadded form to what ``aes_bridge.decrypt`` reads (as Infosimples must)."""
    padded = token + "=" * (-len(token) % 4)
    return padded.replace("-", "+").replace("_", "/").encode("ascii")
