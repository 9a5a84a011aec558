"""The encrypt function (``POST /v1/encrypt/{partner}``, ``POST /v1/decrypt/{partner}``) on moto, cold-started
from template.yaml's environment, driven by ``events/encrypt-*.json`` and ``events/decrypt-*.json``.

Outputs are read by the partners' own implementations (aes_bridge, PHP, joserfc), and the decrypt route reads
what those implementations make. Every key is a throwaway key from :mod:`sealgate_local.aws_stack`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from sealgate import metric_names
from sealgate_local.aws_stack import StackResources
from tests.integration import oracles
from tests.integration.conftest import Function, Output, SecretsOutage, event, leaks, secret_values
from tests.interop.cipher_oracle import PhpBatch, ok

# Plaintext in the events (fake people, the public test card): never in a log line or a refusal.
PLAINTEXT = {
    "cpf": "52998224725",
    "birthdate": "1990-01-15",
    "card number": "4111111111111111",
    "payer name": "Thiago Gabriel",
    "customer email": "asha.rao@example.com",
    "mobile": "9999911111",
}
CARD_CVV = '"cvv":"123"'  # the CVV as it appears in a JSON body
PARTNERS = ("infosimples", "netcore", "paykun", "dlocal")
SYMMETRIC = ("infosimples", "netcore", "paykun")


@pytest.fixture
def encrypt_fn(cold_start: Callable[..., Function]) -> Function:
    return cold_start("encrypt")


def payload_of(name: str) -> Any:
    """The ``payload`` the event sends."""
    return json.loads(event(name)["body"])["payload"]


def assert_nothing_secret(stack: StackResources, output: Output, *answers: str) -> None:
    """No key, card number, CVV or stack trace in ``answers`` (response bodies), and no plaintext value either
    in anything printed."""
    printed = output.text
    for text in (*answers, printed):
        assert leaks(text, secret_values(stack)) == []
        assert leaks(text, {"card number": PLAINTEXT["card number"], "cvv": CARD_CVV}) == []
        assert "Traceback" not in text
    assert leaks(printed, PLAINTEXT) == []


# A request that emits no metric is normal; Powertools warns about it on every such invocation.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

# --- encrypt: the partner's implementation reads what we send ---------------------------------------------------


@pytest.mark.interop
def test_infosimples_params_read_by_aes_bridge_and_receipts_match(
    encrypt_fn: Function, stack: StackResources, aes_bridge: Any, output: Output
) -> None:
    sent = payload_of("encrypt-infosimples")
    reply = encrypt_fn.call(event("encrypt-infosimples"))

    assert reply.status == 200
    assert reply.body["scheme"] == "aesbridge-gcm"
    protected = reply.body["payload"]
    assert sorted(protected) == sorted(f"enc_{name}" for name in sent)
    passphrase = stack.secrets["infosimples"].value["encryption_key"]
    read = {
        name: oracles.infosimples_decrypt(aes_bridge, protected[f"enc_{name}"], passphrase) for name in sent
    }
    assert read == {name: value.encode() for name, value in sent.items()}
    assert reply.body["receipts"] == {name: oracles.md5(value) for name, value in sent.items()}
    assert_nothing_secret(stack, output)


@pytest.mark.interop
def test_netcore_events_read_by_php(
    encrypt_fn: Function, stack: StackResources, php_oracle: oracles.Php, output: Output
) -> None:
    reply = encrypt_fn.call(event("encrypt-netcore"))

    assert reply.status == 200
    secret = stack.secrets["netcore"].value
    token = reply.body["payload"]["encryptedRequest"]
    plaintext = php_oracle.netcore_decrypt(token, secret["key"], secret["iv"])
    assert json.loads(plaintext) == payload_of("encrypt-netcore")
    assert_nothing_secret(stack, output)


@pytest.mark.interop
def test_paykun_request_read_by_php(
    encrypt_fn: Function, stack: StackResources, php_oracle: oracles.Php, output: Output
) -> None:
    reply = encrypt_fn.call(event("encrypt-paykun"))

    assert reply.status == 200
    token = reply.body["payload"]["encrypted_request"]
    plaintext = php_oracle.paykun_decrypt(token, stack.secrets["paykun"].value["encryption_key"])
    assert json.loads(plaintext) == payload_of("encrypt-paykun")
    assert_nothing_secret(stack, output)


@pytest.mark.interop
def test_dlocal_card_read_by_joserfc(
    encrypt_fn: Function, stack: StackResources, joserfc: Any, output: Output
) -> None:
    sent = payload_of("encrypt-dlocal")
    reply = encrypt_fn.call(event("encrypt-dlocal"))

    assert reply.status == 200
    card = reply.body["payload"]["card"]
    assert "number" not in card
    assert "cvv" not in card
    private_pem = stack.secrets["dlocal"].partner_side["jwe_private_key"]
    opened = json.loads(oracles.jwe_decrypt(joserfc, card.pop("encrypted_data"), private_pem))
    assert opened == {"number": sent["card"]["number"], "cvv": sent["card"]["cvv"]}
    assert card == {k: v for k, v in sent["card"].items() if k not in ("number", "cvv")}
    assert {k: v for k, v in reply.body["payload"].items() if k != "card"} == {
        k: v for k, v in sent.items() if k != "card"
    }
    assert_nothing_secret(stack, output, reply.text)


# --- decrypt: we read what the partner's implementation makes ---------------------------------------------------


def oracle_payload(partner: str, stack: StackResources, aes_bridge: Any, php: oracles.Php, plain: Any) -> Any:
    """``plain`` protected by the partner's own implementation, as the decrypt route receives it."""
    secret = stack.secrets[partner].value
    if partner == "infosimples":
        key = secret["encryption_key"]
        return {
            f"enc_{name}": oracles.infosimples_encrypt(aes_bridge, value, key)
            for name, value in plain.items()
        }
    text = json.dumps(plain, separators=(",", ":")).encode()
    if partner == "netcore":
        return {"encryptedRequest": php.netcore_encrypt(text, secret["key"], secret["iv"])}
    return {"encrypted_request": php.paykun_encrypt(text, secret["encryption_key"])}


@pytest.mark.interop
@pytest.mark.parametrize("partner", SYMMETRIC)
def test_decrypt_reads_what_the_partner_implementation_made(
    partner: str,
    encrypt_fn: Function,
    stack: StackResources,
    aes_bridge: Any,
    php_oracle: oracles.Php,
    output: Output,
) -> None:
    plain = payload_of(f"encrypt-{partner}")
    protected = oracle_payload(partner, stack, aes_bridge, php_oracle, plain)

    reply = encrypt_fn.call(event(f"decrypt-{partner}", body={"payload": protected}))

    assert reply.status == 200
    assert reply.body == {"partner": partner, "payload": plain}
    (record,) = output.audits("decrypt")
    assert record["outcome"] == "ok"
    assert_nothing_secret(stack, output)


def test_decrypt_is_refused_for_dlocal_public_key_scheme(
    encrypt_fn: Function, stack: StackResources, output: Output
) -> None:
    reply = encrypt_fn.call(event("decrypt-dlocal"))

    assert (reply.status, reply.code) == (400, "unsupported_operation")
    assert_nothing_secret(stack, output, reply.text)


def flip(text: str) -> str:
    """Change the middle character of a base64 text (it stays base64)."""
    middle = len(text) // 2
    return text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]


def tampered(partner: str, token: str) -> str:
    """The token with its ciphertext altered (PayKun's: inside the envelope, which stays well formed)."""
    if partner != "paykun":
        return flip(token)
    envelope = json.loads(base64.b64decode(token))
    envelope["value"] = flip(envelope["value"])
    return base64.b64encode(json.dumps(envelope).encode()).decode()


@pytest.mark.parametrize("partner", SYMMETRIC)
def test_tampered_token_is_422_and_counted(
    partner: str, encrypt_fn: Function, stack: StackResources, output: Output
) -> None:
    protected = encrypt_fn.call(event(f"encrypt-{partner}")).body["payload"]
    field = next(iter(protected))
    protected[field] = tampered(partner, protected[field])

    reply = encrypt_fn.call(event(f"decrypt-{partner}", body={"payload": protected}))

    assert reply.status == 422
    assert reply.code in {"tag_mismatch", "mac_mismatch", "bad_padding", "authentication_failed"}
    assert output.metric_total(metric_names.DECRYPTION_FAILED) == 1
    assert output.metric_total(metric_names.DECRYPTION_FAILED, partner=partner) == 1
    (record,) = output.audits("decrypt")
    assert (record["outcome"], record["reason"], record["status"]) == ("refused", reply.code, 422)
    assert_nothing_secret(stack, output, reply.text)


# --- refusals ----------------------------------------------------------------------------------------------------

REFUSALS: dict[str, tuple[str, dict[str, Any], int, str]] = {
    # name: (event, overrides, status, code)
    "unknown partner": ("encrypt-paykun", {"partner": "acme"}, 404, "unknown_partner"),
    "unknown partner on decrypt": ("decrypt-paykun", {"partner": "acme"}, 404, "unknown_partner"),
    "body is not JSON": ("encrypt-paykun", {"body": '{"payload": {"order_id": '}, 400, "bad_json"),
    "body is a JSON list": ("encrypt-paykun", {"body": "[1, 2]"}, 400, "bad_json"),
    "body is empty": ("encrypt-paykun", {"body": None}, 400, "bad_json"),
    "body names a key twice": (  # readers disagree on which value wins: refused, neither value echoed
        "encrypt-netcore",
        {"body": '{"payload": {"mobile": "9999911111"}, "payload": {"mobile": "9999911111", "x": 1}}'},
        400,
        "bad_json",
    ),
    "payload missing": ("encrypt-netcore", {"body": {"events": []}}, 400, "bad_input"),
    "infosimples params not an object": (
        "encrypt-infosimples",
        {"body": {"payload": ["52998224725"]}},
        400,
        "bad_input",
    ),
    "infosimples param of a wrong type": (
        "encrypt-infosimples",
        {"body": {"payload": {"cpf": 52998224725.0}}},
        400,
        "bad_input",
    ),
    "dlocal card missing": ("encrypt-dlocal", {"body": {"payload": {"amount": 1}}}, 400, "bad_input"),
    "dlocal card number not a string": (
        "encrypt-dlocal",
        {"body": {"payload": {"card": {"number": 4111111111111111, "cvv": "123"}}}},
        400,
        "bad_input",
    ),
    "decrypt token missing": ("decrypt-netcore", {"body": {"payload": {}}}, 400, "bad_input"),
    "decrypt token not base64": (
        "decrypt-netcore",
        {"body": {"payload": {"encryptedRequest": "%%%"}}},
        400,
        "bad_token",
    ),
    "oversize body": ("encrypt-paykun", {"body": {"payload": "x" * (300 * 1024)}}, 413, "payload_too_large"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_have_a_stable_code_and_reveal_nothing(
    case: str, encrypt_fn: Function, stack: StackResources, output: Output
) -> None:
    name, overrides, status, code = REFUSALS[case]

    reply = encrypt_fn.call(event(name, **overrides))

    assert (reply.status, reply.code) == (status, code)
    assert set(reply.body) == {"code", "message"}
    assert reply.headers.get("Content-Type") == "application/json"
    assert leaks(reply.text, PLAINTEXT) == []
    (record,) = output.audits()
    assert (record["outcome"], record["reason"], record["status"]) == ("refused", code, status)
    assert_nothing_secret(stack, output, reply.text)


@pytest.mark.interop
def test_base64_encoded_body_is_read_as_sent(
    encrypt_fn: Function, stack: StackResources, php_oracle: oracles.Php
) -> None:
    original = event("encrypt-netcore")
    original["body"] = base64.b64encode(original["body"].encode()).decode()
    original["isBase64Encoded"] = True

    reply = encrypt_fn.call(original)

    assert reply.status == 200
    secret = stack.secrets["netcore"].value
    token = reply.body["payload"]["encryptedRequest"]
    assert json.loads(php_oracle.netcore_decrypt(token, secret["key"], secret["iv"])) == payload_of(
        "encrypt-netcore"
    )


def test_an_unknown_route_is_404(encrypt_fn: Function, output: Output) -> None:
    wrong = event("encrypt-paykun")
    wrong["path"] = "/v1/encrypt/paykun/extra"

    reply = encrypt_fn.call(wrong)

    assert (reply.status, reply.code) == (404, "not_found")


# --- audit ---------------------------------------------------------------------------------------------------------


def test_one_audit_record_per_action_with_names_never_values(
    encrypt_fn: Function, stack: StackResources, output: Output
) -> None:
    for partner in PARTNERS:
        assert encrypt_fn.call(event(f"encrypt-{partner}")).status == 200

    records = output.audits()

    assert [r["partner"] for r in records] == list(PARTNERS)
    sample = event("encrypt-paykun")
    for record in records:
        assert set(record) == {"action", "partner", "outcome", "reason", "request_id", "caller", "fields"}
        assert (record["action"], record["outcome"], record["reason"]) == ("encrypt", "ok", "ok")
        assert record["caller"] == sample["requestContext"]["identity"]["userArn"]
        assert record["request_id"]
    assert {r["partner"]: r["fields"] for r in records} == {
        "infosimples": ["birthdate", "cpf"],
        "netcore": ["<body>"],
        "paykun": ["<body>"],
        "dlocal": ["card.cvv", "card.number"],
    }
    assert len({r["request_id"] for r in records}) == len(PARTNERS)
    assert_nothing_secret(stack, output)


# --- Secrets Manager down at cold start ---------------------------------------------------------------------------


def test_keys_unavailable_at_cold_start_then_recovered(
    secrets_outage: SecretsOutage, cold_start: Callable[..., Function], stack: StackResources, output: Output
) -> None:
    function = cold_start("encrypt")  # the cold start itself must not raise

    down = function.call(event("encrypt-paykun"))

    assert (down.status, down.code) == (503, "keys_unavailable")
    assert output.metric_total(metric_names.KEY_LOAD_FAILED) >= 1
    (record,) = output.audits()
    assert (record["outcome"], record["reason"], record["status"]) == ("failed", "keys_unavailable", 503)
    assert_nothing_secret(stack, output, down.text)

    secrets_outage.end()
    back = function.call(event("encrypt-paykun"))

    assert back.status == 200
    assert back.body["payload"]["encrypted_request"]


# --- rotation ------------------------------------------------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("partner", ["netcore", "paykun"])
def test_rotation_previous_key_still_decrypts_and_encrypt_uses_the_new_one(
    partner: str,
    cold_start: Callable[..., Function],
    stack: StackResources,
    php_oracle: oracles.Php,
    aes_bridge: Any,
) -> None:
    plain = payload_of(f"encrypt-{partner}")
    made_before = oracle_payload(partner, stack, aes_bridge, php_oracle, plain)
    old = stack.secrets[partner].value
    stack.rotate(partner)
    new = stack.secrets[partner].value
    function = cold_start("encrypt")  # a new instance: AWSCURRENT is the new key

    opened = function.call(event(f"decrypt-{partner}", body={"payload": made_before}))
    assert (opened.status, opened.body["payload"]) == (200, plain)

    sealed = function.call(event(f"encrypt-{partner}")).body["payload"]
    token = next(iter(sealed.values()))
    if partner == "netcore":  # deterministic: the token is exactly what the new key and IV make
        text = json.dumps(plain, separators=(",", ":")).encode()
        assert token == php_oracle.netcore_encrypt(text, new["key"], new["iv"])
        assert token != php_oracle.netcore_encrypt(text, old["key"], old["iv"])
    else:
        assert json.loads(php_oracle.paykun_decrypt(token, new["encryption_key"])) == plain
        with pytest.raises(AssertionError, match="MAC is invalid"):
            php_oracle.paykun_decrypt(token, old["encryption_key"])


@pytest.mark.interop
def test_a_warm_instance_reads_a_token_made_under_a_key_rotated_after_its_cold_start(
    encrypt_fn: Function, stack: StackResources, php_oracle: oracles.Php
) -> None:
    assert encrypt_fn.call(event("encrypt-paykun")).status == 200  # AWSCURRENT is cached now
    stack.rotate("paykun")
    plain = {"order_id": "ORD-1"}
    token = php_oracle.paykun_encrypt(
        json.dumps(plain).encode(), stack.secrets["paykun"].value["encryption_key"]
    )

    reply = encrypt_fn.call(event("decrypt-paykun", body={"payload": {"encrypted_request": token}}))

    assert (reply.status, reply.body["payload"]) == (200, plain)


@pytest.mark.interop
def test_rotation_old_netcore_token_that_unpads_under_the_new_key_still_decrypts(
    cold_start: Callable[..., Function], stack: StackResources, php: str
) -> None:
    """Static-IV CBC has no MAC: about one old-key token in 256 passes the padding check under the new key and
    decrypts to garbage. That must count as a wrong key (try AWSPREVIOUS), not as a malformed token."""
    old = stack.secrets["netcore"].value
    stack.rotate("netcore")
    new = stack.secrets["netcore"].value
    plains = [
        json.dumps([{"activity_name": "x", "n": n}], separators=(",", ":")).encode() for n in range(3000)
    ]
    encrypting = PhpBatch()
    for plain in plains:
        encrypting.add(
            "cbc_encrypt", encoding="base64", text=plain, key=old["key"].encode(), iv=old["iv"].encode()
        )
    tokens = [ok(result) for result in encrypting.run(php)]
    unpadding = PhpBatch()
    for token in tokens:
        unpadding.add(
            "cbc_decrypt", encoding="base64", token=token, key=new["key"].encode(), iv=new["iv"].encode()
        )
    garbage = [index for index, result in enumerate(unpadding.run(php)) if isinstance(result, bytes)]
    assert garbage, "no old-key token unpads under the new key (odds about 1e-5): rerun"
    index = garbage[0]
    function = cold_start("encrypt")

    reply = function.call(
        event("decrypt-netcore", body={"payload": {"encryptedRequest": tokens[index].decode()}})
    )

    assert (reply.status, reply.body["payload"]) == (200, json.loads(plains[index]))
