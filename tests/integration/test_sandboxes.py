"""The partner sandboxes (``sealgate_local.sandboxes``) against requests built by Sealgate's layer.

Requests are built by the forward function's own code: the payload protected as ``POST /v1/forward`` protects
it (``profile.protection.protect``), then serialised and signed by ``sealgate.actions.deliver.request_for``, and
sent with ``sealgate.partner_http.send`` over verified TLS. Each sandbox is composed from its profile and opens
them with its own implementation (aes_bridge, cryptography, joserfc), so an accepted request is an interop
check of the whole path; a tampered one, or one the real partner would refuse, must be refused with
``ok=False``.

Every key here is a throwaway test key, made fresh for this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sealgate import outbound, partner_http
from sealgate.actions.deliver import PartnerRequest, request_for
from sealgate.errors import PartnerUnreachable, SignatureMismatch
from sealgate.layouts.wrap import canonical_json
from sealgate.partner_http import PartnerResponse
from sealgate.partner_keys import SecretFields
from sealgate.partners import Profile, load_profiles, parse_profile
from sealgate.schemes import dlocal_v2
from sealgate.schemes.base import Protected
from sealgate_local.aws_stack import ThrowawaySecret
from sealgate_local.https_server import HttpsServer, Request, Response
from sealgate_local.sandboxes import PartnerSandbox, Sandboxes, Verification
from sealgate_local.tls import THROWAWAY_MARKER

PROFILES = load_profiles()
TIMEOUT = 5.0

# Throwaway test values: a public test PAN and a CPF-shaped number; assertions never print them.
CPF = "12345678909"
NUMBER = "4111111111111111"
CVV = "737"

#: partner -> (operation, payload)
PAYLOADS: dict[str, tuple[str, Any]] = {
    "infosimples": ("receita-federal/cpf", {"cpf": CPF, "birthdate": "1990-01-01", "origem": "web"}),
    "netcore": (
        "activity",
        [
            {
                "activity_name": "form_submitted",
                "identity": "9999911111",
                "activity_params": {"day": "Tuesday"},
            }
        ],
    ),
    "paykun": ("payment", {"order_id": "ORD-1", "amount": "10.00", "customer": {"name": "Test Payer"}}),
    "dlocal": (
        "payments",
        {
            "amount": 120,
            "currency": "BRL",
            "country": "BR",
            "payment_method_id": "CARD",
            "payment_method_flow": "DIRECT",
            "order_id": "ORD-1",
            "card": {
                "holder_name": "Test Payer",
                "number": NUMBER,
                "cvv": CVV,
                "expiration_month": 10,
                "expiration_year": 2040,
            },
        },
    ),
}
PARTNERS = tuple(PAYLOADS)


def _token(prefix: str = "throwaway-") -> str:
    return prefix + secrets.token_urlsafe(18)


def _alphanumeric(size: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(size))


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    """Throwaway secrets shaped as Secrets Manager holds them, and dLocal's throwaway private key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return {
        "secrets": {
            "infosimples": {"encryption_key": _token()},
            "netcore": {
                "key": _alphanumeric(32),
                "iv": _alphanumeric(16),
                "api_key": _token(),
                "asset_id": _token("asset-"),
            },
            "paykun": {
                "encryption_key": "base64:" + base64.b64encode(secrets.token_bytes(32)).decode("ascii"),
                "merchant_id": _token("merchant-"),
                "access_token": _token(),
            },
            "dlocal": {
                "x_login": _token("login-"),
                "x_trans_key": _token(),
                "secret_key": _token(),
                "jwe_public_key": public_pem,
            },
        },
        "dlocal_private_key": private_pem,
    }


def stored(
    secrets_: Mapping[str, dict[str, str]], private_key: str, **replaced: dict[str, str]
) -> dict[str, ThrowawaySecret]:
    """The secrets as the local stack gives them to the sandboxes: dLocal's partner side holds its private key."""
    return {
        partner: ThrowawaySecret(
            name=f"sealgate/test/{partner}",
            value=replaced.get(partner, value),
            partner_side={"jwe_private_key": private_key} if partner == "dlocal" else {},
        )
        for partner, value in secrets_.items()
    }


@pytest.fixture(scope="module")
def boxes(keys: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    with Sandboxes.start(
        PROFILES,
        stored(keys["secrets"], keys["dlocal_private_key"]),
        directory=tmp_path_factory.mktemp("sandboxes"),
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _modes_back_to_ok(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "boxes" in request.fixturenames:
        boxes: Sandboxes = request.getfixturevalue("boxes")
        for partner in PARTNERS:
            boxes[partner].mode = "ok"


# --- building requests the way Sealgate's forward function does ----------------------------------------------


@dataclass(frozen=True)
class _Secrets:
    secret: Mapping[str, str]

    def current(self, partner: str) -> SecretFields:
        return SecretFields(self.secret)


@dataclass(frozen=True)
class _Settings:
    url: str

    def base_url(self, partner: str, default: str) -> str:
        return self.url


@dataclass(frozen=True)
class Forwarder:
    """What ``request_for`` reads of the forward function's runtime: the partner's current secret, and its base
    URL (here a sandbox's, as ``SEALGATE_BASE_URL_<PARTNER>`` sets it for the local stack)."""

    secrets: _Secrets
    settings: _Settings


def operation_path(partner: str) -> str:
    """The path (relative to the base URL) of the partner's operation in :data:`PAYLOADS`."""
    return PROFILES[partner].operation(PAYLOADS[partner][0]).path


def build(
    profile: Profile,
    payload: Any,
    secret: dict[str, str],
    *,
    key: str = "idem-1",
    base_url: str = "https://sandbox.invalid/",
    operation: str | None = None,
) -> tuple[PartnerRequest, Protected]:
    """The partner request for ``payload`` and the protection result: protected as ``POST /v1/forward`` queues
    it, then serialised and signed by ``deliver.request_for``, as the delivery does. ``operation`` defaults to
    the partner's in :data:`PAYLOADS`."""
    protected = profile.protection.protect(payload, secret)
    message = outbound.Protected(
        outcome_id=outbound.forward_id(profile.name, key),
        partner=profile.name,
        operation=PAYLOADS[profile.name][0] if operation is None else operation,
        idempotency_key=key,
        protected=protected.payload,
        key_version=None,  # protected under the current secret: sent as it is
        fields=protected.fields,
    )
    request = request_for(Forwarder(_Secrets(secret), _Settings(base_url)), profile, message)
    assert request.fields == protected.fields
    return request, protected


def post(sandbox: PartnerSandbox, request: PartnerRequest) -> tuple[PartnerResponse, Verification]:
    """Send, and return the answer and the one verification the sandbox recorded for it."""
    before = len(sandbox.verifications)
    response = partner_http.send(
        request.method,
        request.url,
        headers=request.headers,
        body=request.body,
        timeout=TIMEOUT,
        ca_bundle=sandbox.ca_bundle,
    )
    after = sandbox.verifications
    assert len(after) == before + 1
    return response, after[-1]


def build_for(
    boxes: Sandboxes, keys: dict[str, Any], partner: str, payload: Any = None, *, key: str = "idem-1"
) -> tuple[PartnerRequest, Protected]:
    """The request for ``partner``'s sandbox (its payload in :data:`PAYLOADS` unless one is given)."""
    return build(
        PROFILES[partner],
        PAYLOADS[partner][1] if payload is None else payload,
        keys["secrets"][partner],
        key=key,
        base_url=boxes[partner].url,
    )


def send_payload(
    boxes: Sandboxes, keys: dict[str, Any], partner: str, *, key: str = "idem-1"
) -> tuple[PartnerResponse, Verification, Protected]:
    request, protected = build_for(boxes, keys, partner, key=key)
    response, verification = post(boxes[partner], request)
    return response, verification, protected


def flip(text: str, index: int) -> str:
    """``text`` with the base64 character at ``index`` replaced by another one."""
    replacement = "B" if text[index] == "A" else "A"
    return text[:index] + replacement + text[index + 1 :]


# --- each sandbox accepts what Sealgate sends ----------------------------------------------------------------


@pytest.mark.parametrize("partner", PARTNERS)
def test_each_sandbox_accepts_what_sealgate_sends(
    boxes: Sandboxes, keys: dict[str, Any], partner: str
) -> None:
    response, verification, protected = send_payload(boxes, keys, partner, key=f"accept-{partner}")
    assert response.status == 200
    assert verification.ok, verification.reason
    assert (verification.partner, verification.reason) == (partner, "ok")
    assert verification.path == "/" + operation_path(partner)
    assert verification.idempotency_key == f"accept-{partner}"
    assert sorted(verification.fields) == sorted(protected.fields)
    assert isinstance(json.loads(response.body), dict)


def test_infosimples_keeps_and_answers_the_md5_receipts(boxes: Sandboxes, keys: dict[str, Any]) -> None:
    response, verification, protected = send_payload(boxes, keys, "infosimples")
    assert sorted(verification.fields) == ["birthdate", "cpf"]
    assert (
        verification.md5s == protected.receipts
    )  # Sealgate's MD5 of what it sent = Infosimples' of what it opened
    answer = json.loads(response.body)
    assert (answer["code"], answer["receipts"]) == (200, verification.md5s)


def test_dlocal_answers_like_a_payment_and_replays_an_idempotency_key(
    boxes: Sandboxes, keys: dict[str, Any]
) -> None:
    first = json.loads(send_payload(boxes, keys, "dlocal", key="pay-once")[0].body)
    again = json.loads(send_payload(boxes, keys, "dlocal", key="pay-once")[0].body)
    other = json.loads(send_payload(boxes, keys, "dlocal", key="pay-other")[0].body)
    assert first["status"] == "PAID"
    assert first["id"].startswith("D-")
    assert (first["amount"], first["currency"], first["order_id"]) == (120, "BRL", "ORD-1")
    assert again["id"] == first["id"]
    assert other["id"] != first["id"]


def test_dlocal_card_without_cvv(boxes: Sandboxes, keys: dict[str, Any]) -> None:
    payload = PAYLOADS["dlocal"][1]
    card = {name: value for name, value in payload["card"].items() if name != "cvv"}
    request, _ = build_for(boxes, keys, "dlocal", {**payload, "card": card})
    response, verification = post(boxes["dlocal"], request)
    assert (response.status, verification.ok, verification.fields) == (200, True, ("card.number",))


def shipped(partner: str) -> dict[str, Any]:
    """A shipped profile's JSON document (to change and load as another profile)."""
    text = resources.files("sealgate.partners").joinpath("profiles", f"{partner}.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def _netcore_profile(*, drop: tuple[str, ...] = (), **protection_options: str) -> Profile:
    """Netcore's shipped profile with its protection changed: ``drop`` options, set others."""
    data = shipped("netcore")
    for name in drop:
        del data["protection"][name]
    data["protection"].update(protection_options)
    return parse_profile(data)


def test_netcore_hex_encoding(boxes: Sandboxes, keys: dict[str, Any]) -> None:
    profile = _netcore_profile(encoding="hex")
    secret = keys["secrets"]["netcore"]
    # An account registered for the hex form (11257): its sandbox is made from that profile.
    with PartnerSandbox(profile, secret) as sandbox:
        request, _ = build(profile, PAYLOADS["netcore"][1], secret, base_url=sandbox.url)
        assert request.headers["x-eCode"] == "11257"
        response, verification = post(sandbox, request)
        assert (response.status, verification.ok) == (200, True)
    # The shipped account is registered for base64 (11256): the hex method is not its own.
    request, _ = build(profile, PAYLOADS["netcore"][1], secret, base_url=boxes["netcore"].url)
    response, verification = post(boxes["netcore"], request)
    assert (response.status, verification.ok) == (400, False)
    assert "x-eCode" in verification.reason


def test_netcore_gcm(keys: dict[str, Any]) -> None:
    secret = {**keys["secrets"]["netcore"], "key": base64.b64encode(secrets.token_bytes(32)).decode("ascii")}
    profile = _netcore_profile(scheme="aes-gcm", drop=("iv", "encoding"))  # one form, a nonce per token
    with PartnerSandbox(profile, secret) as sandbox:
        request, _ = build(profile, PAYLOADS["netcore"][1], secret, base_url=sandbox.url)
        assert request.headers["x-eCode"] == "11258"
        response, verification = post(sandbox, request)
        assert (response.status, verification.ok) == (200, True)
        # a CBC code for an account registered for GCM
        cbc_code = replace(request, headers={**request.headers, "x-eCode": "11256"})
        response, verification = post(sandbox, cbc_code)
        assert (response.status, verification.ok) == (400, False)


# --- each sandbox refuses a tampered request -----------------------------------------------------------------

Tamper = Callable[[dict[str, str], bytes, dict[str, str]], tuple[dict[str, str], bytes]]


def _form_flip(headers: dict[str, str], body: bytes, secret: dict[str, str]) -> tuple[dict[str, str], bytes]:
    params = dict(parse_qsl(body.decode("ascii")))
    params["enc_cpf"] = flip(params["enc_cpf"], 30)
    return headers, urlencode(params).encode("ascii")


def _netcore_flip(
    headers: dict[str, str], body: bytes, secret: dict[str, str]
) -> tuple[dict[str, str], bytes]:
    raw = bytearray(base64.b64decode(json.loads(body)["encryptedRequest"]))
    raw[-1] ^= 0x01  # the last block: its padding no longer checks out (or the JSON is garbled)
    return headers, json.dumps({"encryptedRequest": base64.b64encode(bytes(raw)).decode("ascii")}).encode()


def _paykun_value(
    headers: dict[str, str], body: bytes, secret: dict[str, str]
) -> tuple[dict[str, str], bytes]:
    envelope = json.loads(base64.b64decode(json.loads(body)["encrypted_request"]))
    envelope["value"] = flip(envelope["value"], 5)
    token = base64.b64encode(json.dumps(envelope).encode("ascii")).decode("ascii")
    return headers, json.dumps({"encrypted_request": token}).encode()


def _paykun_flip(
    headers: dict[str, str], body: bytes, secret: dict[str, str]
) -> tuple[dict[str, str], bytes]:
    token = json.loads(body)["encrypted_request"]
    return headers, json.dumps({"encrypted_request": flip(token, 40)}).encode()


def _header(name: str, value: str | None) -> Tamper:
    def tamper(headers: dict[str, str], body: bytes, secret: dict[str, str]) -> tuple[dict[str, str], bytes]:
        changed = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        if value is not None:
            changed[name] = value
        return changed, body

    return tamper


def _dlocal_body_after_signing(
    headers: dict[str, str], body: bytes, secret: dict[str, str]
) -> tuple[dict[str, str], bytes]:
    return headers, body.replace(b'"amount":120', b'"amount":999')


def _dlocal_other_secret(
    headers: dict[str, str], body: bytes, secret: dict[str, str]
) -> tuple[dict[str, str], bytes]:
    forged = dlocal_v2.authorization(_token(), headers["X-Login"], headers["X-Date"], body)
    return {**headers, "Authorization": forged}, body


def _dlocal_resign(body: bytes, secret: dict[str, str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update(PROFILES["dlocal"].request_headers(secret, body, idempotency_key="resigned").all())
    return headers


def _dlocal_clear_card(
    headers: dict[str, str], body: bytes, secret: dict[str, str]
) -> tuple[dict[str, str], bytes]:
    clear = canonical_json(PAYLOADS["dlocal"][1])  # signed correctly, but the card is in clear
    return _dlocal_resign(clear, secret), clear


def _dlocal_jwe_flip(
    headers: dict[str, str], body: bytes, secret: dict[str, str]
) -> tuple[dict[str, str], bytes]:
    payload = json.loads(body)
    token = payload["card"]["encrypted_data"]
    ciphertext_at = token.rindex(".", 0, token.rindex(".")) + 3  # inside the ciphertext segment
    payload["card"]["encrypted_data"] = flip(token, ciphertext_at)
    changed = canonical_json(payload)
    return _dlocal_resign(changed, secret), changed


TAMPERS: dict[str, tuple[str, Tamper, int, str]] = {
    "infosimples-flipped-token": ("infosimples", _form_flip, 400, "an enc_ parameter does not decrypt"),
    "infosimples-not-a-form": (
        "infosimples",
        _header("Content-Type", "application/json"),
        400,
        "Content-Type must be application/x-www-form-urlencoded",
    ),
    "netcore-flipped-byte": ("netcore", _netcore_flip, 400, ""),
    "netcore-wrong-bearer": ("netcore", _header("Authorization", "Bearer nope"), 401, "Authorization"),
    "netcore-missing-asset": ("netcore", _header("x-asset", None), 401, "x-asset"),
    "netcore-missing-ecode": ("netcore", _header("x-eCode", None), 400, "x-eCode"),
    "paykun-altered-value": ("paykun", _paykun_value, 400, "The MAC is invalid."),
    "paykun-flipped-token": ("paykun", _paykun_flip, 400, ""),
    "paykun-wrong-access-token": ("paykun", _header("AccessToken", "nope"), 401, "AccessToken"),
    "paykun-missing-merchant": ("paykun", _header("MerchantId", None), 401, "MerchantId"),
    "dlocal-body-changed-after-signing": ("dlocal", _dlocal_body_after_signing, 401, "Invalid signature"),
    "dlocal-wrong-signature": ("dlocal", _dlocal_other_secret, 401, "Invalid signature"),
    "dlocal-wrong-version": (
        "dlocal",
        _header("Authorization", "V1-HMAC-SHA256, Signature: " + "0" * 64),
        401,
        "Authorization",
    ),
    "dlocal-missing-date": ("dlocal", _header("X-Date", None), 401, "X-Date is missing"),
    "dlocal-wrong-trans-key": ("dlocal", _header("X-Trans-Key", "nope"), 401, "Invalid credentials"),
    "dlocal-missing-idempotency-key": (
        "dlocal",
        _header("X-Idempotency-Key", None),
        400,
        "X-Idempotency-Key is missing",
    ),
    "dlocal-clear-card": ("dlocal", _dlocal_clear_card, 400, "card number or cvv sent in clear"),
    "dlocal-flipped-jwe": ("dlocal", _dlocal_jwe_flip, 400, "card encrypted_data does not decrypt"),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_each_sandbox_refuses_a_tampered_request(boxes: Sandboxes, keys: dict[str, Any], case: str) -> None:
    partner, tamper, status, reason = TAMPERS[case]
    secret = keys["secrets"][partner]
    request, _ = build_for(boxes, keys, partner, key=f"tampered-{case}")
    headers, body = tamper(dict(request.headers), request.body, secret)
    response, verification = post(boxes[partner], replace(request, headers=headers, body=body))
    assert response.status == status
    assert not verification.ok
    assert reason in verification.reason
    assert (verification.fields, verification.md5s) == ((), {})
    assert reason in response.body.decode("utf-8")


def _laravel_envelope_without_serialize(secret: dict[str, str], plaintext: bytes) -> str:
    """Laravel's ``encryptString`` shape (no ``serialize``), built here with a correct MAC."""
    key = base64.b64decode(secret["encryption_key"].removeprefix("base64:"))
    iv = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()
    iv_b64, value_b64 = base64.b64encode(iv).decode(), base64.b64encode(ciphertext).decode()
    mac = hmac.new(key, (iv_b64 + value_b64).encode(), hashlib.sha256).hexdigest()
    envelope = json.dumps({"iv": iv_b64, "value": value_b64, "mac": mac}).encode()
    return base64.b64encode(envelope).decode()


def test_sandboxes_check_more_than_sealgate_gets_wrong(boxes: Sandboxes, keys: dict[str, Any]) -> None:
    """Requests Sealgate never sends, crafted here: the sandboxes' own checks refuse them."""
    paykun = keys["secrets"]["paykun"]
    request, _ = build_for(boxes, keys, "paykun")
    token = _laravel_envelope_without_serialize(paykun, b'{"order_id":"ORD-1"}')
    body = json.dumps({"encrypted_request": token}).encode()
    response, verification = post(boxes["paykun"], replace(request, body=body))
    assert (response.status, verification.reason) == (400, "payload is not a serialized PHP string")

    request, _ = build_for(boxes, keys, "infosimples", {"origem": "web"})
    response, verification = post(boxes["infosimples"], replace(request, body=request.body + b"&origem=app"))
    assert (response.status, verification.reason) == (400, "a parameter is repeated")

    dlocal = keys["secrets"]["dlocal"]
    request, _ = build_for(boxes, keys, "dlocal")
    headers = dict(request.headers)
    headers["X-Date"] = "20 minutes ago"
    headers["Authorization"] = dlocal_v2.authorization(
        dlocal["secret_key"], dlocal["x_login"], headers["X-Date"], request.body
    )
    response, verification = post(boxes["dlocal"], replace(request, headers=headers))
    assert (response.status, verification.reason) == (401, "X-Date is not an ISO 8601 date-time with a zone")


def test_infosimples_refuses_a_listed_parameter_in_the_clear(boxes: Sandboxes, keys: dict[str, Any]) -> None:
    """A profile that forgot ``cpf`` sends it in clear: Infosimples expects it as ``enc_cpf`` and refuses."""
    document = shipped("infosimples")
    document["protection"]["fields"] = ["birthdate"]
    request, protected = build(
        parse_profile(document),
        PAYLOADS["infosimples"][1],
        keys["secrets"]["infosimples"],
        base_url=boxes["infosimples"].url,
    )
    assert protected.fields == ("birthdate",)
    response, verification = post(boxes["infosimples"], request)
    assert (response.status, verification.ok) == (400, False)
    assert verification.reason == "parameter cpf arrived in the clear, not as enc_cpf"
    assert CPF not in response.body.decode("utf-8")


@pytest.mark.parametrize(
    ("age", "status"),
    [(timedelta(minutes=4), 200), (timedelta(minutes=6), 401), (-timedelta(minutes=6), 401)],
)
def test_dlocal_refuses_an_x_date_more_than_5_minutes_away(
    boxes: Sandboxes, keys: dict[str, Any], age: timedelta, status: int
) -> None:
    """Correctly signed, but sent (or replayed) with an X-Date 6 minutes old or ahead: dLocal refuses it."""
    dlocal = keys["secrets"]["dlocal"]
    request, _ = build_for(boxes, keys, "dlocal", key=f"dated-{age.total_seconds()}")
    headers = dict(request.headers)
    headers["X-Date"] = dlocal_v2.format_x_date(datetime.now(UTC) - age)
    headers["Authorization"] = dlocal_v2.authorization(
        dlocal["secret_key"], dlocal["x_login"], headers["X-Date"], request.body
    )
    response, verification = post(boxes["dlocal"], replace(request, headers=headers))
    assert response.status == status
    if status == 401:
        assert verification.reason == "X-Date is more than 5 minutes from now"
        assert json.loads(response.body) == {"code": 3001, "message": verification.reason}


# --- a partner that is only a profile -------------------------------------------------------------------------

#: new partners recombining existing schemes: (profile document, secret fields -> throwaway values, payload)
NEW_PARTNERS: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, Any]]] = {
    "enc-params+aes-gcm+static-headers": (
        {
            "name": "acme",
            "base_url": "https://api.acme.example/",
            "secret_fields": ["lookup_key", "api_key"],
            "protection": {
                "scheme": "aes-gcm",
                "layout": "enc-params",
                "key": "lookup_key",
                "fields": ["cpf"],
            },
            "signing": {"scheme": "static-headers", "headers": {"X-Api-Key": "api_key"}},
            "body_format": "form",
            "operations": {"lookup": {"method": "POST", "path": "v1/lookup"}},
        },
        {"lookup_key": base64.b64encode(secrets.token_bytes(32)).decode("ascii"), "api_key": _token()},
        {"cpf": CPF, "origem": "web"},
    ),
    "wrap+aesbridge-gcm, unsigned": (
        {
            "name": "acme",
            "base_url": "https://api.acme.example/v2/",
            "secret_fields": ["passphrase"],
            "protection": {
                "scheme": "aesbridge-gcm",
                "layout": "wrap",
                "key": "passphrase",
                "wrap_field": "data",
            },
            "operations": {"events": {"method": "PUT", "path": "events"}},
        },
        {"passphrase": _token()},
        {"event": "signup", "cpf": CPF},
    ),
}


@pytest.mark.parametrize("case", sorted(NEW_PARTNERS))
def test_a_new_partner_gets_a_sandbox_from_its_profile_alone(case: str) -> None:
    document, secret, payload = NEW_PARTNERS[case]
    profile = parse_profile(document)
    operation = next(iter(profile.operations))
    with PartnerSandbox(profile, secret) as sandbox:
        assert not sandbox.sends_webhooks
        request, protected = build(profile, payload, secret, base_url=sandbox.url, operation=operation)
        response, verification = post(sandbox, request)
        assert (response.status, verification.ok, verification.partner) == (200, True, "acme")
        assert verification.path == "/" + profile.operations[operation].path
        assert sorted(verification.fields) == sorted(protected.fields)
        assert verification.md5s == protected.receipts
        answer = json.loads(response.body)
        assert answer["status"] == "ok"  # the generic answer: no partner's own is known
        assert answer.get("receipts", {}) == protected.receipts

        flipped = (
            json.loads(request.body)
            if profile.body_format == "json"
            else dict(parse_qsl(request.body.decode()))
        )
        name = next(n for n in flipped if n.startswith("enc_") or n == "data")
        flipped[name] = flip(flipped[name], 20)
        body = json.dumps(flipped).encode() if profile.body_format == "json" else urlencode(flipped).encode()
        response, verification = post(sandbox, replace(request, body=body))
        assert (response.status, verification.ok) == (400, False)
        assert json.loads(response.body) == {"status": "error", "message": verification.reason}
        assert "does not decrypt" in verification.reason

        if profile.signing is not None:
            unsigned = {k: v for k, v in request.headers.items() if k != "X-Api-Key"}
            response, verification = post(sandbox, replace(request, headers=unsigned))
            assert (response.status, verification.reason) == (401, "X-Api-Key is missing or wrong")


def test_a_profile_naming_what_no_sandbox_checks_is_refused_at_start(tmp_path: Path) -> None:
    document = {
        "name": "acme",
        "base_url": "https://api.acme.example/",
        "secret_fields": ["passphrase"],
        "protection": {
            "scheme": "aesbridge-cbc",
            "layout": "wrap",
            "key": "passphrase",
            "wrap_field": "data",
        },
        "operations": {"events": {"method": "POST", "path": "events"}},
    }
    secret = ThrowawaySecret(name="sealgate/test/acme", value={"passphrase": _token()})
    with pytest.raises(
        ValueError, match=r"partner acme: the sandboxes have no oracle for cipher 'aesbridge-cbc'"
    ):
        Sandboxes.start({"acme": parse_profile(document)}, {"acme": secret}, directory=tmp_path)


def test_the_sandboxes_import_nothing_of_the_layer() -> None:
    """The oracles are independent code: importing the sandboxes brings in no ``sealgate`` module."""
    code = (
        "import sys\n"
        "from sealgate_local import sandbox_oracles, sandboxes\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sealgate'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_an_unknown_path_is_refused(boxes: Sandboxes, keys: dict[str, Any]) -> None:
    request, _ = build_for(boxes, keys, "paykun")
    response, verification = post(
        boxes["paykun"], replace(request, url=boxes["paykun"].url + "not/an/operation")
    )
    assert (response.status, verification.ok, verification.reason) == (404, False, "unknown path")


def test_verifications_hold_no_values(boxes: Sandboxes, keys: dict[str, Any]) -> None:
    for partner in PARTNERS:
        send_payload(boxes, keys, partner)
    shown = "".join(repr(v) for partner in PARTNERS for v in boxes[partner].verifications)
    assert CPF not in shown
    assert NUMBER not in shown
    assert "md5s" not in shown  # receipts are as secret as the values they hash


# --- failure modes --------------------------------------------------------------------------------------------


def _post_raw(sandbox: PartnerSandbox, timeout: float = TIMEOUT) -> PartnerResponse:
    path = operation_path(sandbox.partner)
    return partner_http.send(
        "POST", sandbox.url + path, headers={}, body=b"{}", timeout=timeout, ca_bundle=sandbox.ca_bundle
    )


def test_error500_answers_without_checking(boxes: Sandboxes) -> None:
    sandbox = boxes["netcore"]
    sandbox.mode = "error500"
    before, received = len(sandbox.verifications), len(sandbox.requests)
    assert _post_raw(sandbox).status == 500
    assert (len(sandbox.verifications), len(sandbox.requests)) == (before, received + 1)


def test_throttle429_sends_retry_after(boxes: Sandboxes) -> None:
    sandbox = boxes["dlocal"]
    sandbox.mode = "throttle429"
    sandbox.retry_after = "7"
    response = _post_raw(sandbox)
    assert response.status == 429
    assert partner_http.retry_after(response.headers) == 7.0


def test_hang_times_the_client_out_and_ok_recovers(boxes: Sandboxes, keys: dict[str, Any]) -> None:
    sandbox = boxes["infosimples"]
    sandbox.mode = "hang"
    received = len(sandbox.requests)
    with pytest.raises(PartnerUnreachable, match="timeout"):
        _post_raw(sandbox, timeout=0.3)
    assert len(sandbox.requests) == received + 1
    sandbox.mode = "ok"
    assert send_payload(boxes, keys, "infosimples")[0].status == 200


def test_modes_outside_the_sandbox_set_are_refused(boxes: Sandboxes) -> None:
    with pytest.raises(ValueError, match="unknown sandbox mode"):
        boxes["paykun"].mode = "trickle"  # type: ignore[assignment]
    assert boxes["paykun"].mode == "ok"


def test_concurrent_requests_are_all_recorded(boxes: Sandboxes, keys: dict[str, Any]) -> None:
    sandbox = boxes["paykun"]
    before = len(sandbox.verifications)
    statuses: list[int] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        request, _ = build_for(boxes, keys, "paykun", key=f"concurrent-{index}")
        response = partner_http.send(
            request.method,
            request.url,
            headers=request.headers,
            body=request.body,
            timeout=TIMEOUT,
            ca_bundle=sandbox.ca_bundle,
        )
        with lock:
            statuses.append(response.status)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorded = sandbox.verifications[before:]
    assert statuses == [200] * 8
    assert sorted(v.idempotency_key or "" for v in recorded) == sorted(f"concurrent-{i}" for i in range(8))
    assert all(v.ok for v in recorded)


# --- dLocal notifications -------------------------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[HttpsServer]:
    """A stand-in for the local API's webhook route (plain http on 127.0.0.1)."""

    def accept(request: Request) -> Response:
        return Response(200, {"Content-Type": "application/json"}, b'{"status":"accepted"}')

    with HttpsServer(accept, plain_http=True) as server:
        yield server


NOTIFICATION = {"id": "D-4-throwaway", "status": "PAID", "amount": 120, "currency": "BRL"}


def test_notify_is_signed_so_sealgate_accepts_it(
    boxes: Sandboxes, keys: dict[str, Any], webhook: HttpsServer
) -> None:
    secret = keys["secrets"]["dlocal"]
    status, answer = boxes.dlocal.notify(webhook.url + "/v1/webhooks/dlocal", NOTIFICATION)
    assert (status, answer) == (200, {"status": "accepted"})
    [received] = webhook.requests
    assert (received.method, received.path) == ("POST", "/v1/webhooks/dlocal")
    assert json.loads(received.body) == NOTIFICATION
    date, authorization = received.header("X-Date"), received.header("Authorization")
    assert date is not None
    assert authorization is not None
    assert received.header("X-Login") == secret["x_login"]
    dlocal_v2.verify(secret["secret_key"], secret["x_login"], date, received.body, authorization)
    assert dlocal_v2.is_fresh(date)


def test_notify_with_a_given_date_and_a_forged_secret(
    boxes: Sandboxes, keys: dict[str, Any], webhook: HttpsServer
) -> None:
    secret = keys["secrets"]["dlocal"]
    boxes.dlocal.notify(webhook.url + "/hook", NOTIFICATION, date="2020-01-01T00:00:00.000Z", secret="forged")
    [received] = webhook.requests
    assert received.header("X-Date") == "2020-01-01T00:00:00.000Z"
    with pytest.raises(SignatureMismatch):
        dlocal_v2.verify(
            secret["secret_key"],
            secret["x_login"],
            "2020-01-01T00:00:00.000Z",
            received.body,
            received.header("Authorization") or "",
        )


def test_notify_over_https_trusts_the_given_ca(boxes: Sandboxes) -> None:
    with HttpsServer() as server:  # its own throwaway CA, and the default "ok" text answer
        assert boxes.dlocal.notify(server.url + "/", NOTIFICATION, ca_bundle=server.ca_bundle) == (
            200,
            {"text": "ok"},
        )


def test_only_partners_with_a_webhook_send_notifications(boxes: Sandboxes, webhook: HttpsServer) -> None:
    assert {p for p in PARTNERS if boxes[p].sends_webhooks} == {"dlocal"}
    with pytest.raises(ValueError, match="partner paykun sends no notifications"):
        boxes["paykun"].notify(webhook.url + "/hook", NOTIFICATION)
    assert webhook.requests == []


# --- the set of sandboxes -------------------------------------------------------------------------------------


def test_sandboxes_share_one_throwaway_ca(boxes: Sandboxes) -> None:
    assert sorted(boxes.urls) == sorted(PARTNERS)
    for partner, url in boxes.urls.items():
        assert url.startswith("https://127.0.0.1:")
        assert url.endswith("/")
        assert boxes[partner].ca_bundle == boxes.ca_bundle
    assert THROWAWAY_MARKER in Path(boxes.ca_bundle).read_text("ascii")
    with pytest.raises(KeyError):
        boxes["unknown"]


def test_start_refuses_an_incomplete_secret_without_showing_values(
    keys: dict[str, Any], tmp_path: Path
) -> None:
    netcore = {**keys["secrets"]["netcore"], "iv": ""}
    incomplete = stored(keys["secrets"], keys["dlocal_private_key"], netcore=netcore)
    with pytest.raises(ValueError, match="netcore secret: field iv") as caught:
        Sandboxes.start(PROFILES, incomplete, directory=tmp_path)
    assert keys["secrets"]["netcore"]["key"] not in str(caught.value)
    public_only = stored(keys["secrets"], keys["secrets"]["dlocal"]["jwe_public_key"])
    with pytest.raises(ValueError, match="public key"):
        Sandboxes.start(PROFILES, public_only, directory=tmp_path)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="not the private half of secret field jwe_public_key"):
        Sandboxes.start(PROFILES, stored(keys["secrets"], other.decode("ascii")), directory=tmp_path)
    missing = {name: secret for name, secret in incomplete.items() if name != "paykun"}
    with pytest.raises(ValueError, match="no secret for partner paykun"):
        Sandboxes.start(PROFILES, missing, directory=tmp_path)


def test_exit_stops_every_sandbox(keys: dict[str, Any], tmp_path: Path) -> None:
    with Sandboxes.start(
        PROFILES, stored(keys["secrets"], keys["dlocal_private_key"]), directory=tmp_path
    ) as running:
        assert sorted(running.urls) == sorted(PROFILES)
    for partner in PARTNERS:
        with pytest.raises(RuntimeError):
            _ = running[partner].url
