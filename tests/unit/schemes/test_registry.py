"""The scheme registry: every name resolves to a scheme of that name, listing imports nothing, options are strict."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from sealgate import schemes
from sealgate.schemes.base import Cipher, Layout, OptionError, Signer, Verifier

KINDS = {"cipher": Cipher, "signer": Signer, "verifier": Verifier, "layout": Layout}


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k in KINDS for n in schemes.names(k)])  # type: ignore[arg-type]
def test_every_registered_name_is_a_scheme_of_that_name(kind: schemes.Kind, name: str) -> None:
    found = schemes.lookup(kind, name)
    assert isinstance(found, KINDS[kind])
    assert found.name == name
    assert schemes.summary(kind, name)
    for spec in fields(found.options_type):
        assert spec.metadata.get("help"), f"{name}: option {spec.name} has no help"


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(schemes.UnknownScheme, match="aes-gcm"):
        schemes.lookup("cipher", "aes-gmc")


def test_listing_and_summaries_import_no_scheme_module() -> None:
    code = (
        "import sys\nfrom sealgate import schemes\n"
        "[schemes.summary(k, n) for k in ('cipher','signer','verifier','layout') for n in schemes.names(k)]\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sealgate.schemes.', 'sealgate.layouts.', 'jwcrypto', 'cryptography'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"encodng": "hex"}, "unknown option 'encodng'"),
        ({"encoding": "base32"}, "option 'encoding' must be one of base64, hex"),
        ({"encoding": 16}, "option 'encoding' has the wrong type"),
    ],
)
def test_options_are_strict_and_name_the_option(values: dict[str, object], message: str) -> None:
    cipher = schemes.lookup("cipher", "aes-cbc-static")
    with pytest.raises(OptionError, match=message):
        cipher.options(values)


def test_required_options_are_named_when_missing() -> None:
    with pytest.raises(OptionError, match="option 'wrap_field' is required"):
        schemes.lookup("layout", "wrap").options({})


@pytest.mark.parametrize("name", schemes.names("cipher"))
def test_every_cipher_round_trips_with_its_own_keys(name: str) -> None:
    cipher = schemes.lookup("cipher", name)
    options = cipher.options({})
    generated = cipher.keygen(options)
    if not cipher.can_encrypt:
        with pytest.raises(Exception, match="decrypt only"):
            cipher.encrypt(b"x", {}, options)
        return
    slots = {slot.name: generated[slot.generated] for slot in cipher.key_slots}
    token = cipher.encrypt(b'{"cpf":"12345678909"}', cipher.prepare(slots, decrypting=False), options)
    slots = {slot.name: generated[slot.decrypting_value] for slot in cipher.key_slots}
    assert cipher.decrypt(token, cipher.prepare(slots, decrypting=True), options) == b'{"cpf":"12345678909"}'


def test_an_aes_profile_never_imports_jwcrypto() -> None:
    code = (
        "import sys, json\nfrom sealgate.partners import parse_profile\nfrom importlib import resources\n"
        "doc = json.loads(resources.files('sealgate.partners').joinpath('profiles/netcore.json').read_text())\n"
        "p = parse_profile(doc)\n"
        "secret = {'key': 'k' * 32, 'iv': 'i' * 16, 'api_key': 'a', 'asset_id': 's'}\n"
        "p.protection.protect({'a': 1}, secret)\n"
        "print('jwcrypto' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_loading_a_jwe_profile_defers_jwcrypto_to_its_first_token() -> None:
    # A function serving dLocal beside AES partners resolves the jwe scheme at cold start; jwcrypto comes in
    # only when a JWE is made (so an AES partner's first answer does not pay for it).
    code = (
        "import sys, json\nfrom sealgate.partners import parse_profile\nfrom importlib import resources\n"
        "doc = json.loads(resources.files('sealgate.partners').joinpath('profiles/dlocal.json').read_text())\n"
        "p = parse_profile(doc)\n"
        "before = 'jwcrypto' in sys.modules\n"
        "from sealgate.schemes import jwe\n"
        "private, public = jwe.generate_keypair()\n"
        "jwe.encrypt(b'4111', public)\n"
        "print(before, 'jwcrypto' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
