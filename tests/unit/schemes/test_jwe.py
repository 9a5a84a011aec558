"""Behaviour of ``sealgate.schemes.jwe``: key loading, refusals, card fields (interop: tests/interop)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.codec import b64decode, b64encode
from sealgate.errors import BadAlgorithm, BadInput, BadKey, BadToken, SealgateError, TagMismatch
from sealgate.schemes import jwe

# Throwaway test card data (a public test PAN); assertion messages below never show these values.
NUMBER = "4111111111111111"
CVV = "737"


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return jwe.generate_keypair()


@pytest.fixture(scope="module")
def other_keypair() -> tuple[str, str]:
    return jwe.generate_keypair()


def _segments(token: str) -> list[str]:
    return token.split(".")


def _forge(header: object, token: str) -> str:
    """``token`` with its protected header replaced (the tag no longer matches, but parsing comes first)."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return ".".join([b64encode(raw, urlsafe=True), *_segments(token)[1:]])


# --- generate_keypair and load_key -----------------------------------------------------------------------


def test_generate_keypair_gives_pkcs8_and_spki_pem_of_one_key(keypair: tuple[str, str]) -> None:
    private_pem, public_pem = keypair
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public.decode() == public_pem


@pytest.mark.parametrize("bits", [1024, 2047, 16385])
def test_generate_keypair_refuses_weak_or_absurd_sizes(bits: int) -> None:
    with pytest.raises(BadInput):
        jwe.generate_keypair(bits)


def test_load_key_reads_pem_and_jwk_forms(keypair: tuple[str, str]) -> None:
    private_pem, public_pem = keypair
    private = jwe.load_key(private_pem)
    public = jwe.load_key(public_pem.encode())
    assert private.has_private
    assert not public.has_private
    assert jwe.load_key(private.export_private()).has_private
    assert not jwe.load_key(public.export_public()).has_private
    assert public["n"] == private["n"]


def test_load_key_passes_loaded_rsa_keys_through_and_checks_them(keypair: tuple[str, str]) -> None:
    from jwcrypto import jwk

    loaded = jwe.load_key(keypair[0])
    assert jwe.load_key(loaded) is loaded
    token = jwe.encrypt(b"payload", loaded)
    assert jwe.decrypt(token, loaded) == b"payload"
    assert jwe.decrypt(jwe.encrypt(b"payload", jwe.load_key(keypair[1])), loaded) == b"payload"
    assert loaded.has_private, "encrypt must not strip the caller's key"
    with pytest.raises(BadKey):
        jwe.load_key(jwk.JWK.generate(kty="oct", size=256))
    with pytest.raises(BadKey):
        jwe.load_key(jwk.JWK.generate(kty="RSA", size=1024))


def test_load_key_reads_a_certificate_public_key(keypair: tuple[str, str]) -> None:
    private = serialization.load_pem_private_key(keypair[0].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "throwaway test certificate")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    key = jwe.load_key(cert.public_bytes(serialization.Encoding.PEM))
    assert not key.has_private
    assert key["n"] == jwe.load_key(keypair[1])["n"]


def _ec_pem() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _small_rsa_pem() -> bytes:
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _encrypted_pem(private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"throwaway-password"),
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda pair: "",
        lambda pair: "not a key",
        lambda pair: pair[1][:120],  # truncated PEM
        lambda pair: pair[1].replace("A", "*", 3),
        lambda pair: _encrypted_pem(pair[0]),
        lambda pair: _ec_pem(),
        lambda pair: _small_rsa_pem(),
        lambda pair: '{"kty":"oct","k":"dGhyb3dhd2F5LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmch"}',
        lambda pair: '{"kty":"RSA"}',
        lambda pair: '{"kty":"RSA","n":"AQAB"',
        lambda pair: json.dumps({"keys": [json.loads(jwe.load_key(pair[1]).export_public())]}),
        lambda pair: "[1, 2]",
    ],
    ids=[
        "empty",
        "text",
        "truncated-pem",
        "corrupt-pem",
        "encrypted-pem",
        "ec-key",
        "rsa-1024",
        "oct-jwk",
        "jwk-without-n",
        "broken-json",
        "jwk-set",
        "json-array",
    ],
)
def test_load_key_refuses_everything_else_without_echoing_it(make: object, keypair: tuple[str, str]) -> None:
    assert callable(make)
    material = make(keypair)
    with pytest.raises(BadKey) as caught:
        jwe.load_key(material)
    text = material.decode() if isinstance(material, bytes) else material
    message = str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None
    for line in filter(None, text.splitlines()):
        if len(line) > 12:
            assert line not in message, "BadKey message echoes the key material"


# --- encrypt / decrypt -----------------------------------------------------------------------------------


def test_encrypt_writes_the_documented_header_and_shape(keypair: tuple[str, str]) -> None:
    for alg in jwe.ALLOWED_ALGS:
        token = jwe.encrypt(b"payload", keypair[1], alg=alg)
        header, encrypted_key, iv, ciphertext, tag = (b64decode(s) for s in _segments(token))
        assert header == f'{{"enc":"A256GCM","alg":"{alg}"}}'.encode()
        assert (len(encrypted_key), len(iv), len(ciphertext), len(tag)) == (256, 12, 7, 16)
    # The seed's example token starts with exactly this header.
    assert jwe.encrypt(b"x", keypair[1]).startswith("eyJlbmMiOiJBMjU2R0NNIiwiYW")


def test_encrypt_is_randomised(keypair: tuple[str, str]) -> None:
    assert jwe.encrypt(b"same", keypair[1]) != jwe.encrypt(b"same", keypair[1])


def test_encrypt_with_a_private_key_uses_its_public_part(keypair: tuple[str, str]) -> None:
    token = jwe.encrypt(b"payload", keypair[0])
    assert jwe.decrypt(token, keypair[0]) == b"payload"


@pytest.mark.parametrize("alg", ["RSA1_5", "dir", "A256KW", "RSA-OAEP-384", "rsa-oaep-256", ""])
def test_encrypt_refuses_other_algs(alg: str, keypair: tuple[str, str]) -> None:
    with pytest.raises(BadAlgorithm):
        jwe.encrypt(b"payload", keypair[1], alg=alg)


def test_encrypt_refuses_empty_plaintext(keypair: tuple[str, str]) -> None:
    with pytest.raises(BadInput):
        jwe.encrypt(b"", keypair[1])


def test_keys_restricted_to_signing_are_refused(keypair: tuple[str, str]) -> None:
    private = json.loads(jwe.load_key(keypair[0]).export_private())
    public = json.loads(jwe.load_key(keypair[1]).export_public())
    token = jwe.encrypt(b"payload", keypair[1])
    with pytest.raises(BadKey):
        jwe.encrypt(b"payload", json.dumps(public | {"use": "sig"}))
    with pytest.raises(BadKey):
        jwe.decrypt(token, json.dumps(private | {"key_ops": ["sign"]}))


def test_decrypt_needs_the_private_key(keypair: tuple[str, str]) -> None:
    token = jwe.encrypt(b"payload", keypair[1])
    with pytest.raises(BadKey):
        jwe.decrypt(token, keypair[1])


def test_decrypt_with_another_key_is_a_tag_mismatch(
    keypair: tuple[str, str], other_keypair: tuple[str, str]
) -> None:
    token = jwe.encrypt(b"payload", keypair[1])
    with pytest.raises(TagMismatch):
        jwe.decrypt(token, other_keypair[0])


@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=2048), alg=st.sampled_from(jwe.ALLOWED_ALGS))
def test_round_trip_arbitrary_bytes(plaintext: bytes, alg: str, keypair: tuple[str, str]) -> None:
    assert jwe.decrypt(jwe.encrypt(plaintext, keypair[1], alg=alg), keypair[0]) == plaintext


def _malformed(token: str) -> dict[str, str]:
    header, encrypted_key, iv, ciphertext, tag = _segments(token)
    return {
        "four-segments": ".".join([header, encrypted_key, iv, ciphertext]),
        "six-segments": token + ".AAAA",
        "json-serialization": json.dumps(
            {"protected": header, "iv": iv, "ciphertext": ciphertext, "tag": tag}
        ),
        "standard-alphabet": ".".join(
            [header, encrypted_key[:4] + "+" + encrypted_key[5:], iv, ciphertext, tag]
        ),
        "padding": ".".join([header, encrypted_key, iv + "=", ciphertext, tag]),
        "space-inside": ".".join([header, encrypted_key[:5] + " " + encrypted_key[5:], iv, ciphertext, tag]),
        "non-canonical-tail": ".".join([header, encrypted_key, iv, ciphertext, tag[:-1] + "B"]),
        "empty-encrypted-key": ".".join([header, "", iv, ciphertext, tag]),
        "short-iv": ".".join([header, encrypted_key, iv[:-4], ciphertext, tag]),
        "short-tag": ".".join([header, encrypted_key, iv, ciphertext, tag[:-6]]),
        "empty-ciphertext": ".".join([header, encrypted_key, iv, "", tag]),
        "header-not-json": _forge(b"not json", token),
        "header-not-object": _forge(["RSA-OAEP-256", "A256GCM"], token),
        "header-not-utf8": _forge(b'{"alg":"\xff"}', token),
        "header-duplicate-alg": _forge(b'{"enc":"A256GCM","alg":"RSA-OAEP-256","alg":"RSA-OAEP-256"}', token),
        "crit": _forge({"enc": "A256GCM", "alg": "RSA-OAEP-256", "crit": ["exp"], "exp": 1}, token),
    }


@pytest.mark.parametrize("case", sorted(_malformed("h.e.i.c.t")))
def test_decrypt_refuses_malformed_tokens_as_bad_token(case: str, keypair: tuple[str, str]) -> None:
    token = _malformed(jwe.encrypt(b"payload", keypair[1]))[case]
    with pytest.raises(BadToken):
        jwe.decrypt(token, keypair[0])


@pytest.mark.parametrize(
    "header",
    [
        {"enc": "A256GCM"},
        {"alg": "RSA-OAEP-256"},
        {"enc": "A256GCM", "alg": "RSA1_5"},
        {"enc": "A256GCM", "alg": "dir"},
        {"enc": "A256GCM", "alg": "none"},
        {"enc": "A128GCM", "alg": "RSA-OAEP-256"},
        {"enc": "A256CBC-HS512", "alg": "RSA-OAEP"},
        {"enc": "A256GCM", "alg": ["RSA-OAEP-256"]},
        {"enc": "A256GCM", "alg": "RSA-OAEP-256", "zip": "DEF"},
    ],
)
def test_decrypt_refuses_other_algorithms(header: dict[str, object], keypair: tuple[str, str]) -> None:
    token = _forge(header, jwe.encrypt(b"payload", keypair[1]))
    with pytest.raises(BadAlgorithm):
        jwe.decrypt(token, keypair[0])


def test_decrypt_checks_the_token_before_reading_the_key(keypair: tuple[str, str]) -> None:
    with pytest.raises(BadToken):
        jwe.decrypt("not.a.jwe", "not a key either")


# --- cards -----------------------------------------------------------------------------------------------

CARD = {"holder_name": "Thiago Gabriel", "expiration_month": 10, "expiration_year": 2040}


def test_encrypt_card_replaces_number_and_cvv(keypair: tuple[str, str]) -> None:
    sealed = jwe.encrypt_card({**CARD, "number": NUMBER, "cvv": CVV}, keypair[1])
    assert set(sealed) == {*CARD, "encrypted_data"}
    assert {name: sealed[name] for name in CARD} == CARD
    token = sealed["encrypted_data"]
    assert isinstance(token, str)
    assert NUMBER not in token
    plaintext = jwe.decrypt(token, keypair[0])
    assert plaintext == f'{{"number":"{NUMBER}","cvv":"{CVV}"}}'.encode(), "card plaintext differs"


def test_encrypt_card_without_cvv_and_with_null_cvv(keypair: tuple[str, str]) -> None:
    for card in ({**CARD, "number": NUMBER}, {**CARD, "number": NUMBER, "cvv": None}):
        sealed = jwe.encrypt_card(card, keypair[1])
        assert "cvv" not in sealed
        plaintext = jwe.decrypt(str(sealed["encrypted_data"]), keypair[0])
        assert json.loads(plaintext).keys() == {"number"}


def test_encrypt_card_does_not_touch_its_input(keypair: tuple[str, str]) -> None:
    card = {**CARD, "number": NUMBER, "cvv": CVV}
    jwe.encrypt_card(card, keypair[1])
    assert set(card) == {*CARD, "number", "cvv"}


@pytest.mark.parametrize(
    ("card", "field"),
    [
        (CARD, "number"),
        ({**CARD, "cvv": CVV}, "number"),
        ({**CARD, "number": ""}, "number"),
        ({**CARD, "number": int(NUMBER)}, "number"),
        ({**CARD, "number": NUMBER, "cvv": int(CVV)}, "cvv"),
        ({**CARD, "number": NUMBER, "cvv": ""}, "cvv"),
        ({**CARD, "number": NUMBER, "encrypted_data": "x"}, "encrypted_data"),
    ],
    ids=["no-number", "cvv-only", "empty-number", "int-number", "int-cvv", "empty-cvv", "already-sealed"],
)
def test_encrypt_card_refusals_name_the_field_never_the_value(
    card: dict[str, object], field: str, keypair: tuple[str, str]
) -> None:
    with pytest.raises(BadInput) as caught:
        jwe.encrypt_card(card, keypair[1])
    message = str(caught.value)
    assert field in message
    assert NUMBER not in message, "error message shows the card number"
    assert CVV not in message, "error message shows the CVV"


def test_decrypt_card_restores_the_fields(keypair: tuple[str, str]) -> None:
    sealed = jwe.encrypt_card({**CARD, "number": NUMBER, "cvv": CVV}, keypair[1])
    opened = jwe.decrypt_card(sealed, keypair[0])
    assert opened == {**CARD, "number": NUMBER, "cvv": CVV}, "decrypted card differs"


@pytest.mark.parametrize(
    "plaintext",
    [b"not json", b"[]", b'{"cvv":"737"}', b'{"number":4111111111111111}', b'{"number":"4111","pin":"1"}'],
    ids=["not-json", "array", "no-number", "int-number", "extra-field"],
)
def test_decrypt_card_refuses_payloads_that_are_not_cards(plaintext: bytes, keypair: tuple[str, str]) -> None:
    card = {**CARD, "encrypted_data": jwe.encrypt(plaintext, keypair[1])}
    with pytest.raises(BadInput) as caught:
        jwe.decrypt_card(card, keypair[0])
    assert "4111" not in str(caught.value), "error message shows card data"


@pytest.mark.parametrize(
    "card",
    [CARD, {**CARD, "encrypted_data": 5}, {**CARD, "encrypted_data": "a.b.c.d.e", "number": NUMBER}],
    ids=["missing", "not-a-string", "clear-number-too"],
)
def test_decrypt_card_refuses_cards_without_a_single_sealed_form(
    card: dict[str, object], keypair: tuple[str, str]
) -> None:
    with pytest.raises(BadInput):
        jwe.decrypt_card(card, keypair[0])


def test_decrypt_card_with_an_altered_token_is_refused(keypair: tuple[str, str]) -> None:
    sealed = jwe.encrypt_card({**CARD, "number": NUMBER}, keypair[1])
    header, encrypted_key, iv, ciphertext, tag = _segments(str(sealed["encrypted_data"]))
    flipped = b64encode(bytes([b64decode(ciphertext)[0] ^ 1]) + b64decode(ciphertext)[1:], urlsafe=True)
    sealed["encrypted_data"] = ".".join([header, encrypted_key, iv, flipped, tag])
    with pytest.raises(SealgateError) as caught:
        jwe.decrypt_card(sealed, keypair[0])
    assert isinstance(caught.value, TagMismatch)
