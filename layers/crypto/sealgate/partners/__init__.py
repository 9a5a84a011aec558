"""Partners are configuration: one JSON profile per partner, loaded and checked at cold start.

Profiles ship in ``sealgate/partners/profiles/``; a deployment (or a test) may add a folder of its own with
``SEALGATE_PROFILES_DIR``. Which partners a function serves follows from the profiles: every partner is
encrypted for and forwarded to; the sign function serves those that sign requests or send webhooks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Literal

from sealgate.partners.profile import (
    Operation,
    Profile,
    ProfileError,
    check_idempotency_key,
    parse_profile,
)

__all__ = [
    "Function",
    "Operation",
    "Profile",
    "ProfileError",
    "check_idempotency_key",
    "load_profiles",
    "parse_profile",
    "served_by",
]

Function = Literal["encrypt", "sign", "forward"]


def _files(extra_dirs: Iterable[str | Path]) -> list[tuple[str, str]]:
    found = [
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in resources.files("sealgate.partners").joinpath("profiles").iterdir()
        if entry.name.endswith(".json")
    ]
    for folder in extra_dirs:
        found.extend(
            (path.name, path.read_text(encoding="utf-8")) for path in sorted(Path(folder).glob("*.json"))
        )
    return found


def load_profiles(extra_dirs: Iterable[str | Path] = ()) -> dict[str, Profile]:
    """Every profile shipped with the package, plus those in ``extra_dirs``, by name (checked strictly)."""
    profiles: dict[str, Profile] = {}
    for file_name, text in sorted(_files(extra_dirs)):
        stem = file_name.removesuffix(".json")
        try:
            document = json.loads(text)
        except ValueError:
            raise ProfileError(f"profile {stem}: not valid JSON") from None
        profile = parse_profile(document)
        if profile.name != stem:
            raise ProfileError(f"profile {profile.name}: file name must be {profile.name}.json")
        if profile.name in profiles:
            raise ProfileError(f"profile {profile.name}: defined twice")
        profiles[profile.name] = profile
    return profiles


def served_by(function: Function, profiles: Mapping[str, Profile]) -> dict[str, Profile]:
    """The partners ``function`` serves: the sign function only those that sign or send webhooks."""
    if function == "sign":
        return {n: p for n, p in profiles.items() if p.signing is not None or p.webhook is not None}
    return dict(profiles)
