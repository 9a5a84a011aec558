"""enc_params: which params become enc_*, how values become text, receipts, and refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.errors import BadInput, BadKey, BadToken, TagMismatch
from sealgate.layouts.enc_params import ProtectedParams, protect, receipt, reveal
from sealgate.schemes.aesbridge_kdf import EncryptionKeys
from tests.unit.aesbridge_reference import open_gcm, seal_gcm

PASSPHRASE = "throwaway infosimples passphrase"
SECRET = PASSPHRASE.encode()
CPF = "12345678909"


def opened(token: object) -> str:
    """Text inside an Infosimples-form token, opened from the spec (not by the module under test)."""
    assert isinstance(token, str)
    assert not set(token) & set("+/=")
    return open_gcm(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), SECRET).decode()


def infosimples_token(text: str | bytes, passphrase: bytes = SECRET) -> str:
    raw = text.encode() if isinstance(text, str) else text
    data = seal_gcm(raw, passphrase, salt=bytes(range(16)), nonce=bytes(12))
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# --- receipt ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "md5"),
    [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),  # RFC 1321 test suite
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    ],
)
def test_receipt_is_lowercase_md5_hex(text: str | bytes, md5: str) -> None:
    assert receipt(text) == md5


def test_receipt_of_text_is_the_md5_of_its_utf8() -> None:
    assert receipt("São") == hashlib.md5("São".encode()).hexdigest()


# --- protect ------------------------------------------------------------------------------------------------


def test_protect_replaces_the_fields_in_place_and_passes_the_rest() -> None:
    extra = {"nested": True}
    sent = protect({"token": "t", "cpf": CPF, "origem": extra, "data": "2024-01-01"}, ["cpf"], PASSPHRASE)
    assert list(sent.params) == ["token", "enc_cpf", "origem", "data"]
    assert sent.params["token"] == "t"
    assert sent.params["origem"] is extra
    assert opened(sent.params["enc_cpf"]) == CPF
    assert sent.receipts == {"cpf": hashlib.md5(CPF.encode()).hexdigest()}


def test_protect_ignores_fields_that_are_absent() -> None:
    sent = protect({"cnpj": "00000000000191"}, ["cpf", "cnpj", "birthdate"], PASSPHRASE)
    assert list(sent.params) == ["enc_cnpj"]
    assert list(sent.receipts) == ["cnpj"]


def test_int_values_are_sent_as_decimal_text() -> None:
    sent = protect({"n": 12345678909, "neg": -7}, {"n", "neg"}, PASSPHRASE)
    assert opened(sent.params["enc_n"]) == "12345678909"
    assert opened(sent.params["enc_neg"]) == "-7"
    assert sent.receipts["n"] == hashlib.md5(b"12345678909").hexdigest()


def test_bytes_values_are_base64_standard_before_encryption() -> None:
    value = b"\xfb\xff\xbf\x00"  # "+/+/AA==" in the standard alphabet
    sent = protect({"doc": value}, ["doc"], PASSPHRASE)
    assert opened(sent.params["enc_doc"]) == "+/+/AA=="
    assert sent.receipts["doc"] == hashlib.md5(b"+/+/AA==").hexdigest()


def test_empty_string_is_encrypted_too() -> None:
    sent = protect({"obs": ""}, ["obs"], PASSPHRASE)
    assert opened(sent.params["enc_obs"]) == ""
    assert sent.receipts["obs"] == "d41d8cd98f00b204e9800998ecf8427e"


@pytest.mark.parametrize("value", [None, 3.14159, True, False, {"a": "b"}, ["x"], bytearray(b"x")])
def test_other_types_are_refused_naming_the_field_not_the_value(value: object) -> None:
    with pytest.raises(BadInput) as caught:
        protect({"secret_field": value}, ["secret_field"], PASSPHRASE)
    message = str(caught.value)
    assert "secret_field" in message
    assert repr(value) not in message


def test_lone_surrogate_is_refused_as_bad_input() -> None:
    with pytest.raises(BadInput, match="name"):
        protect({"name": "Jo\ud800o"}, ["name"], PASSPHRASE)


def test_huge_int_is_refused_as_bad_input() -> None:
    with pytest.raises(BadInput, match="n"):
        protect({"n": 10**5000}, ["n"], PASSPHRASE)


def test_name_and_enc_name_together_are_refused() -> None:
    with pytest.raises(BadInput, match="enc_cpf"):
        protect({"cpf": CPF, "enc_cpf": "x"}, ["cpf"], PASSPHRASE)


def test_a_single_string_of_fields_is_refused() -> None:
    with pytest.raises(BadInput):
        protect({"cpf": CPF}, "cpf", PASSPHRASE)


def test_empty_passphrase_is_a_bad_key() -> None:
    with pytest.raises(BadKey):
        protect({"cpf": CPF}, ["cpf"], "")


def test_receipts_stay_out_of_repr() -> None:
    sent = protect({"cpf": CPF}, ["cpf"], PASSPHRASE)
    assert isinstance(sent, ProtectedParams)
    assert sent.receipts["cpf"] not in repr(sent)
    assert CPF not in repr(sent)


def test_protect_uses_the_lease_it_is_given() -> None:
    keys = EncryptionKeys(max_uses=1)
    sent = protect({"a": "1", "b": "2"}, ["a", "b"], PASSPHRASE, keys=keys)
    salts = {
        base64.urlsafe_b64decode(str(token) + "=" * (-len(str(token)) % 4))[:16]
        for token in sent.params.values()
    }
    assert len(salts) == 2


# --- reveal -------------------------------------------------------------------------------------------------


def test_reveal_decrypts_enc_params_and_passes_the_rest() -> None:
    params = {"token": "t", "enc_cpf": infosimples_token(CPF), "timeout": 30}
    assert reveal(params, PASSPHRASE) == {"token": "t", "cpf": CPF, "timeout": 30}


def test_reveal_accepts_the_standard_alphabet_too() -> None:
    data = seal_gcm(b"abc", SECRET, salt=bytes(16), nonce=bytes(12))
    assert reveal({"enc_x": base64.b64encode(data).decode()}, PASSPHRASE) == {"x": "abc"}


def test_reveal_refuses_non_utf8_plaintext() -> None:
    with pytest.raises(BadToken, match="enc_blob"):
        reveal({"enc_blob": infosimples_token(b"\xff\xfe")}, PASSPHRASE)


def test_reveal_refuses_a_non_string_enc_param() -> None:
    with pytest.raises(BadToken, match="enc_n"):
        reveal({"enc_n": 5}, PASSPHRASE)


def test_reveal_refuses_name_and_enc_name_together() -> None:
    with pytest.raises(BadInput):
        reveal({"cpf": CPF, "enc_cpf": infosimples_token(CPF)}, PASSPHRASE)


def test_reveal_with_the_wrong_passphrase_is_a_tag_mismatch() -> None:
    with pytest.raises(TagMismatch):
        reveal({"enc_cpf": infosimples_token(CPF)}, PASSPHRASE + "!")


def test_reveal_leaves_a_bare_prefix_alone() -> None:
    assert reveal({"enc_": "x"}, PASSPHRASE) == {"enc_": "x"}


@settings(max_examples=10, deadline=None)
@given(
    values=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda k: not k.startswith("enc_")), st.text()
    )
)
def test_protect_then_reveal_gives_back_the_text(values: dict[str, str]) -> None:
    sent = protect(values, set(values), PASSPHRASE)
    assert reveal(sent.params, PASSPHRASE) == values
    assert sent.receipts == {name: hashlib.md5(text.encode()).hexdigest() for name, text in values.items()}
