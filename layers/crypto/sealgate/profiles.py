"""Partner profiles: which scheme protects which fields, how requests are signed, where they go.

A profile is a JSON file in ``sealgate/profiles/`` (shipped in the layer). Adding a partner that uses
existing schemes is adding a file: no code. Profiles are checked when loaded, so a typo fails the deploy's
tests rather than a request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

#: protection schemes a profile may name, and the option keys each one reads from the partner's secret.
PROTECTION_SCHEMES: dict[str, tuple[str, ...]] = {
    "infosimples-params": ("key",),
    "aes-cbc-static": ("key", "iv"),
    "aes-gcm": ("key",),
    "laravel-cbc": ("key",),
    "jwe-card": ("key",),
}
#: signing schemes, and the option keys that name secret fields.
SIGNING_SCHEMES: dict[str, tuple[str, ...]] = {
    "dlocal-v2": ("login", "trans_key", "secret"),
    "netcore-bearer": ("token", "asset"),
    "static-headers": (),
}
BODY_FORMATS = ("json", "form")


class ProfileError(ValueError):
    """A profile file is invalid (a deployment error, caught by the tests)."""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str


@dataclass(frozen=True)
class Profile:
    """One partner, as its JSON file describes it."""

    name: str
    base_url: str
    secret_fields: tuple[str, ...]
    protection: Mapping[str, Any]
    signing: Mapping[str, Any] | None
    webhook: Mapping[str, Any] | None
    operations: Mapping[str, Operation]
    body_format: str = "json"
    idempotency_header: str = "Idempotency-Key"
    store_response_body: bool = False
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return str(self.protection["scheme"])

    @property
    def symmetric(self) -> bool:
        """Whether Sealgate can also decrypt what it protects (all but public-key JWE)."""
        return self.scheme != "jwe-card"


def _require(condition: bool, name: str, problem: str) -> None:
    if not condition:
        raise ProfileError(f"profile {name}: {problem}")


def parse_profile(data: Mapping[str, Any]) -> Profile:
    """Check one profile's JSON object and build the :class:`Profile`."""
    name = data.get("name")
    _require(isinstance(name, str) and name.isidentifier() and name.islower(), str(name), "bad name")
    assert isinstance(name, str)
    base_url = data.get("base_url")
    _require(isinstance(base_url, str) and base_url.startswith("https://"), name, "base_url must be https://")
    assert isinstance(base_url, str)
    secret_fields = tuple(data.get("secret_fields", ()))
    _require(all(isinstance(f, str) for f in secret_fields), name, "secret_fields must be strings")

    protection = dict(data.get("protection") or {})
    scheme = protection.get("scheme")
    _require(scheme in PROTECTION_SCHEMES, name, f"unknown protection scheme {scheme!r}")
    for option in PROTECTION_SCHEMES[str(scheme)]:
        _require(
            protection.get(option) in secret_fields, name, f"protection.{option} must name a secret field"
        )
    if scheme in ("aes-cbc-static", "aes-gcm", "laravel-cbc"):
        _require(isinstance(protection.get("wrap_field"), str), name, "protection.wrap_field is required")
    if scheme == "infosimples-params":
        fields = protection.get("fields")
        _require(isinstance(fields, list) and bool(fields), name, "protection.fields must be a list")

    signing = data.get("signing")
    if signing is not None:
        _require(signing.get("scheme") in SIGNING_SCHEMES, name, "unknown signing scheme")
        for option in SIGNING_SCHEMES[signing["scheme"]]:
            _require(signing.get(option) in secret_fields, name, f"signing.{option} must name a secret field")
        if signing["scheme"] == "static-headers":
            headers = signing.get("headers")
            _require(isinstance(headers, dict) and bool(headers), name, "signing.headers is required")
            assert isinstance(headers, dict)
            _require(
                all(v in secret_fields for v in headers.values()), name, "headers must name secret fields"
            )
    webhook = data.get("webhook")
    if webhook is not None:
        _require(webhook.get("scheme") == "dlocal-v2", name, "webhook.scheme must be dlocal-v2")
        _require(webhook.get("secret") in secret_fields, name, "webhook.secret must name a secret field")

    operations: dict[str, Operation] = {}
    for op_name, op in dict(data.get("operations") or {}).items():
        method = str(op.get("method", "POST")).upper()
        path = op.get("path")
        _require(
            method in {"GET", "POST", "PUT", "PATCH", "DELETE"}, name, f"operation {op_name}: bad method"
        )
        _require(isinstance(path, str) and "://" not in path and not path.startswith("/"), name, "bad path")
        assert isinstance(path, str)
        operations[op_name] = Operation(method=method, path=path)
    _require(bool(operations), name, "at least one operation is required")
    body_format = data.get("body_format", "json")
    _require(body_format in BODY_FORMATS, name, "body_format must be json or form")

    known = {
        "name",
        "base_url",
        "secret_fields",
        "protection",
        "signing",
        "webhook",
        "operations",
        "body_format",
        "idempotency_header",
        "store_response_body",
        "description",
    }
    return Profile(
        name=name,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        secret_fields=secret_fields,
        protection=protection,
        signing=signing,
        webhook=webhook,
        operations=operations,
        body_format=str(body_format),
        idempotency_header=str(data.get("idempotency_header", "Idempotency-Key")),
        store_response_body=bool(data.get("store_response_body", False)),
        description=str(data.get("description", "")),
        extra={k: v for k, v in data.items() if k not in known},
    )


def load_profiles() -> dict[str, Profile]:
    """Every profile shipped in ``sealgate/profiles/``, by name."""
    found: dict[str, Profile] = {}
    for entry in resources.files("sealgate").joinpath("profiles").iterdir():
        if not entry.name.endswith(".json"):
            continue
        profile = parse_profile(json.loads(entry.read_text(encoding="utf-8")))
        if profile.name != entry.name.removesuffix(".json"):
            raise ProfileError(f"profile {profile.name}: file name must be {profile.name}.json")
        found[profile.name] = profile
    return found


def required_secret_fields(profiles: Mapping[str, Profile]) -> dict[str, tuple[str, ...]]:
    """partner -> secret fields its profile needs (for :class:`sealgate.partner_keys.PartnerSecrets`)."""
    return {name: profile.secret_fields for name, profile in profiles.items()}
