"""The profile document's shape, checked against ``profile.schema.json`` with ``fastjsonschema``.

The schema is compiled once per process, on the first profile checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "profile.schema.json"


def document() -> dict[str, Any]:
    """The JSON Schema of a profile."""
    text = resources.files("sealgate.partners").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return dict(json.loads(text))


@cache
def _validator() -> Callable[[Any], Any]:
    import fastjsonschema

    return fastjsonschema.compile(document())


def check(profile: Mapping[str, Any], name: str) -> None:
    """Raise :class:`~sealgate.partners.profile.ProfileError` naming the profile and the offending key."""
    from fastjsonschema import JsonSchemaValueException

    from sealgate.partners.profile import ProfileError

    try:
        _validator()(profile)
    except JsonSchemaValueException as error:
        where = str(error.name or "data").replace("data", "profile", 1)
        message = str(error.message).replace(str(error.name), where, 1) if error.name else str(error.message)
        raise ProfileError(f"profile {name}: {message}") from None
