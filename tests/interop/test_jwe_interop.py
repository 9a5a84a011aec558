"""dLocal card JWE against joserfc, a second JOSE implementation.

Directions: joserfc encrypts -> we decrypt (pinned vectors and live); we encrypt -> joserfc decrypts (both
algs, keys from PEM and JWK). Tokens joserfc makes with RSA1_5, dir, A128GCM, A256CBC-HS512 or zip are
refused; bit flips anywhere in a token are refused.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.codec import b64decode, b64encode
from sealgate.errors import BadAlgorithm, BadToken, SealgateError, TagMismatch
from sealgate.schemes import jwe

pytestmark = pytest.mark.interop

VECTORS = json.loads((Path(__file__).parent / "vectors" / "jwe.json").read_text(encoding="utf-8"))
HOW = "pip install joserfc (a dev dependency in pyproject.toml)"

# Throwaway test card data (a public test PAN); assertion messages never show these values.
NUMBER = "4111111111111111"
CVV = "737"

KEY_FORMS: dict[str, Callable[[str], str]] = {
    "pem": lambda side: VECTORS[f"{side}_pem"],
    "jwk": lambda side: json.dumps(VECTORS[f"{side}_jwk"]),
}


@pytest.fixture(scope="module")
def joserfc(oracle_module: Callable[[str, str], object]) -> SimpleNamespace:
    """joserfc's ``jwe`` and ``jwk`` modules, and the vectors' throwaway private key loaded by joserfc."""
    jwe = oracle_module("joserfc.jwe", HOW)
    jwk: Any = oracle_module("joserfc.jwk", HOW)
    return SimpleNamespace(jwe=jwe, jwk=jwk, key=jwk.RSAKey.import_key(VECTORS["private_pem"]))


@pytest.fixture(scope="module")
def private_key() -> Any:
    """The vectors' private key loaded once (PEM parsing validates the RSA key: tens of ms per call)."""
    return jwe.load_key(VECTORS["private_pem"])


@pytest.fixture(scope="module")
def tokens(joserfc: SimpleNamespace) -> dict[str, str]:
    """One token made by us and one by joserfc (with a ``kid``, so header flips can reach the tag check)."""
    return {
        "ours": jwe.encrypt(b'{"number":"x","cvv":"y"}', VECTORS["public_pem"]),
        "joserfc": _joserfc_encrypt(
            joserfc, {"alg": "RSA-OAEP", "enc": "A256GCM", "kid": "throwaway"}, b"payload", joserfc.key
        ),
    }


def _joserfc_encrypt(joserfc: SimpleNamespace, header: dict[str, str], plaintext: bytes, key: Any) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about RSA1_5, which is the point
        algorithms = [header["alg"], header["enc"], *([header["zip"]] if "zip" in header else [])]
        return str(joserfc.jwe.encrypt_compact(header, plaintext, key, algorithms=algorithms))


def _joserfc_decrypt(joserfc: SimpleNamespace, token: str, alg: str) -> Any:
    return joserfc.jwe.decrypt_compact(token, joserfc.key, algorithms=[alg, "A256GCM"])


# --- pinned vectors (made by joserfc) --------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(KEY_FORMS))
@pytest.mark.parametrize("vector", VECTORS["accepted"], ids=[v["name"] for v in VECTORS["accepted"]])
def test_joserfc_vectors_decrypt(vector: dict[str, Any], form: str) -> None:
    plaintext = jwe.decrypt(vector["token"], KEY_FORMS[form]("private"))
    assert plaintext == base64.b64decode(vector["plaintext_b64"]), "plaintext differs from the vector"


@pytest.mark.parametrize("vector", VECTORS["refused"], ids=[v["name"] for v in VECTORS["refused"]])
def test_joserfc_vectors_we_must_refuse(vector: dict[str, Any]) -> None:
    with pytest.raises(SealgateError) as caught:
        jwe.decrypt(vector["token"], VECTORS["private_pem"])
    assert caught.value.code == vector["code"]


def test_vectors_are_throwaway_and_cover_both_algs() -> None:
    assert "THROWAWAY" in VECTORS["_comment"]
    assert {v["header"]["alg"] for v in VECTORS["accepted"]} == set(jwe.ALLOWED_ALGS)
    assert {"RSA1_5", "dir"} <= {v["header"]["alg"] for v in VECTORS["refused"]}
    assert "A128GCM" in {v["header"]["enc"] for v in VECTORS["refused"]}


# --- we encrypt -> joserfc decrypts ----------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(KEY_FORMS))
@pytest.mark.parametrize("alg", jwe.ALLOWED_ALGS)
def test_joserfc_decrypts_our_tokens(joserfc: SimpleNamespace, alg: str, form: str) -> None:
    plaintext = bytes(range(256)) + "cartão 日本".encode()
    token = jwe.encrypt(plaintext, KEY_FORMS[form]("public"), alg=alg)
    opened = _joserfc_decrypt(joserfc, token, alg)
    assert opened.plaintext == plaintext, "joserfc decrypted something else"
    assert opened.protected == {"enc": "A256GCM", "alg": alg}


@pytest.mark.parametrize("alg", jwe.ALLOWED_ALGS)
def test_joserfc_decrypts_our_card(joserfc: SimpleNamespace, alg: str) -> None:
    card = {"holder_name": "Thiago Gabriel", "expiration_month": 10, "number": NUMBER, "cvv": CVV}
    sealed = jwe.encrypt_card(card, VECTORS["public_pem"], alg=alg)
    opened = json.loads(_joserfc_decrypt(joserfc, str(sealed["encrypted_data"]), alg).plaintext)
    assert opened == {"number": NUMBER, "cvv": CVV}, "joserfc sees other card fields"


@settings(max_examples=20, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=4096), alg=st.sampled_from(jwe.ALLOWED_ALGS))
def test_joserfc_decrypts_arbitrary_plaintexts(joserfc: SimpleNamespace, plaintext: bytes, alg: str) -> None:
    token = jwe.encrypt(plaintext, VECTORS["public_pem"], alg=alg)
    assert _joserfc_decrypt(joserfc, token, alg).plaintext == plaintext


# --- joserfc encrypts -> we decrypt ----------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(KEY_FORMS))
@pytest.mark.parametrize("alg", jwe.ALLOWED_ALGS)
def test_we_decrypt_joserfc_tokens(joserfc: SimpleNamespace, alg: str, form: str) -> None:
    plaintext = json.dumps({"number": NUMBER, "cvv": CVV}).encode()
    token = _joserfc_encrypt(joserfc, {"alg": alg, "enc": "A256GCM"}, plaintext, joserfc.key)
    assert jwe.decrypt(token, KEY_FORMS[form]("private")) == plaintext, "decrypted something else"
    card = jwe.decrypt_card({"holder_name": "T", "encrypted_data": token}, KEY_FORMS[form]("private"))
    assert card == {"holder_name": "T", "number": NUMBER, "cvv": CVV}, "card fields differ"


@settings(max_examples=20, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=4096), alg=st.sampled_from(jwe.ALLOWED_ALGS))
def test_we_decrypt_arbitrary_joserfc_tokens(
    joserfc: SimpleNamespace, private_key: Any, plaintext: bytes, alg: str
) -> None:
    token = _joserfc_encrypt(joserfc, {"alg": alg, "enc": "A256GCM"}, plaintext, joserfc.key)
    assert jwe.decrypt(token, private_key) == plaintext


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "RSA1_5", "enc": "A256GCM"},
        {"alg": "dir", "enc": "A256GCM"},
        {"alg": "RSA-OAEP-256", "enc": "A128GCM"},
        {"alg": "RSA-OAEP", "enc": "A192GCM"},
        {"alg": "RSA-OAEP-256", "enc": "A256CBC-HS512"},
        {"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "DEF"},
    ],
    ids=lambda header: "+".join(header.values()),
)
def test_we_refuse_other_algorithms_from_joserfc(joserfc: SimpleNamespace, header: dict[str, str]) -> None:
    key = joserfc.jwk.OctKey.generate_key(256) if header["alg"] == "dir" else joserfc.key
    token = _joserfc_encrypt(joserfc, header, b'{"number":"x"}', key)
    with pytest.raises(BadAlgorithm):
        jwe.decrypt(token, VECTORS["private_pem"])


# --- bit flips -------------------------------------------------------------------------------------------

SEGMENTS = ("header", "encrypted_key", "iv", "ciphertext", "tag")


@pytest.mark.parametrize("origin", ["ours", "joserfc"])
@pytest.mark.parametrize("segment", range(5), ids=SEGMENTS)
def test_decoded_bit_flips_in_any_segment_are_refused(
    tokens: dict[str, str], private_key: Any, origin: str, segment: int
) -> None:
    token = tokens[origin]
    parts = token.split(".")
    raw = b64decode(parts[segment])
    for position in sorted({0, 1, len(raw) // 2, len(raw) - 1}):
        for bit in (0, 7):
            flipped = bytearray(raw)
            flipped[position] ^= 1 << bit
            altered = ".".join(
                [*parts[:segment], b64encode(bytes(flipped), urlsafe=True), *parts[segment + 1 :]]
            )
            with pytest.raises(SealgateError) as caught:
                jwe.decrypt(altered, private_key)
            # Header flips may break the JSON or the alg name before the tag is checked.
            expected = (BadToken, BadAlgorithm, TagMismatch) if segment == 0 else (TagMismatch,)
            assert isinstance(caught.value, expected), f"{SEGMENTS[segment]}[{position}] bit {bit}"


@settings(max_examples=150, deadline=None)
@given(data=st.data(), origin=st.sampled_from(["ours", "joserfc"]))
def test_character_bit_flips_anywhere_are_refused(
    tokens: dict[str, str], private_key: Any, data: st.DataObject, origin: str
) -> None:
    token = tokens[origin]
    position = data.draw(st.integers(0, len(token) - 1), label="position")
    bit = data.draw(st.integers(0, 6), label="bit")
    altered = token[:position] + chr(ord(token[position]) ^ (1 << bit)) + token[position + 1 :]
    segment = token[:position].count(".")
    with pytest.raises(SealgateError) as caught:
        jwe.decrypt(altered, private_key)
    expected = (BadToken, BadAlgorithm, TagMismatch) if segment == 0 else (BadToken, TagMismatch)
    assert isinstance(caught.value, expected)
