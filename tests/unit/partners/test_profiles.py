"""Profiles load strictly: every mistake is an error naming the profile and the key, at cold start and here."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from sealgate.partners import ProfileError, load_profiles, parse_profile, served_by

CASES = json.loads((Path(__file__).parent / "bad_profiles.json").read_text(encoding="utf-8"))["cases"]


def shipped(name: str) -> dict[str, Any]:
    text = resources.files("sealgate.partners").joinpath(f"profiles/{name}.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def test_the_shipped_profiles_load_and_resolve_their_schemes() -> None:
    profiles = load_profiles()
    assert sorted(profiles) == ["dlocal", "infosimples", "netcore", "paykun"]
    assert {n: (p.scheme, p.protection.layout.name) for n, p in profiles.items()} == {
        "dlocal": ("jwe", "card"),
        "infosimples": ("aesbridge-gcm", "enc-params"),
        "netcore": ("aes-cbc-static", "wrap"),
        "paykun": ("laravel-cbc", "wrap"),
    }
    # Netcore's x-eCode comes from the protection scheme's own declaration.
    assert profiles["netcore"].signing is not None
    assert profiles["netcore"].signing.protection_attribute == "11256"
    assert sorted(served_by("sign", profiles)) == ["dlocal", "netcore", "paykun"]
    assert sorted(served_by("encrypt", profiles)) == sorted(profiles)


def test_hex_netcore_sends_its_own_ecode() -> None:
    document = shipped("netcore")
    document["protection"]["encoding"] = "hex"
    signing = parse_profile(document).signing
    assert signing is not None
    assert signing.protection_attribute == "11257"


@pytest.mark.parametrize("case", CASES, ids=[c["error"][:60] for c in CASES])
def test_a_mistake_is_an_error_naming_profile_and_key(case: dict[str, Any]) -> None:
    document = copy.deepcopy(shipped(case["profile"]))
    *parents, last = case.get("set") or case["delete"]
    node = document
    for key in parents:
        node = node[key]
    if "set" in case:
        node[last] = case["value"]
    else:
        del node[last]
    with pytest.raises(ProfileError, match=case["error"]):
        parse_profile(document)


def test_an_extra_folder_adds_a_partner_and_file_names_must_match(tmp_path: Path) -> None:
    acme = shipped("paykun") | {"name": "acme", "base_url": "https://api.acme.example/"}
    (tmp_path / "acme.json").write_text(json.dumps(acme), encoding="utf-8")
    assert "acme" in load_profiles([tmp_path])
    (tmp_path / "acme.json").rename(tmp_path / "other.json")
    with pytest.raises(ProfileError, match=r"file name must be acme\.json"):
        load_profiles([tmp_path])


def test_a_partner_defined_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "paykun.json").write_text(json.dumps(shipped("paykun")), encoding="utf-8")
    with pytest.raises(ProfileError, match="defined twice"):
        load_profiles([tmp_path])
