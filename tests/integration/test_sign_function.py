"""The sign function (``POST /v1/sign/{partner}``, ``POST /v1/webhooks/{partner}``) on moto, cold-started from
template.yaml's environment, driven by ``events/sign-*.json`` and ``events/webhook-*.json``.

dLocal signatures are made and checked with Python's ``hmac`` exactly as dLocal's documentation writes them;
notifications that pass are in the inbound queue. Every key is a throwaway key from
:mod:`sealgate_local.aws_stack`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sealgate import metric_names
from sealgate_local.aws_stack import StackResources
from tests.integration import oracles
from tests.integration.conftest import Function, Output, SecretsOutage, event, leaks, receive, secret_values

X_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def sign_fn(cold_start: Callable[..., Function]) -> Function:
    return cold_start("sign")


def x_date(when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def notification(
    stack: StackResources,
    *,
    secret_key: str | None = None,
    date: str | None = None,
    body: str | None = None,
    login: str | None = None,
) -> dict[str, Any]:
    """events/webhook-dlocal.json signed now (or at ``date``) as dLocal signs it, with ``secret_key``."""
    template = event("webhook-dlocal")
    raw = template["body"] if body is None else body
    secret = stack.secrets["dlocal"].value
    date = date or x_date()
    login = login or secret["x_login"]
    signature = oracles.dlocal_authorization(secret_key or secret["secret_key"], login, date, raw.encode())
    return event(
        "webhook-dlocal", body=raw, headers={"X-Date": date, "X-Login": login, "Authorization": signature}
    )


def stored_credentials(stack: StackResources) -> dict[str, str]:
    """The values signing attaches but must never hand back: trans key, bearer key, PayKun's headers."""
    return {
        "dlocal.x_trans_key": stack.secrets["dlocal"].value["x_trans_key"],
        "netcore.api_key": stack.secrets["netcore"].value["api_key"],
        "paykun.merchant_id": stack.secrets["paykun"].value["merchant_id"],
        "paykun.access_token": stack.secrets["paykun"].value["access_token"],
    }


def assert_nothing_secret(stack: StackResources, output: Output, *answers: str) -> None:
    for text in (*answers, output.text):
        assert leaks(text, secret_values(stack)) == []
        assert "Traceback" not in text


# A request that emits no metric is normal; Powertools warns about it on every such invocation.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

# --- sign --------------------------------------------------------------------------------------------------------


@pytest.mark.interop
def test_dlocal_headers_verify_with_hmac_as_dlocal_documents(
    sign_fn: Function, stack: StackResources, output: Output
) -> None:
    request = json.loads(event("sign-dlocal")["body"])
    reply = sign_fn.call(event("sign-dlocal"))

    assert reply.status == 200
    headers = reply.body["headers"]
    secret = stack.secrets["dlocal"].value
    assert X_DATE.fullmatch(headers["X-Date"])
    sent_at = datetime.strptime(headers["X-Date"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - sent_at) < timedelta(seconds=30)
    assert headers == {
        "X-Date": headers["X-Date"],
        "X-Login": secret["x_login"],
        "X-Version": "2.1",
        "Authorization": oracles.dlocal_authorization(
            secret["secret_key"], secret["x_login"], headers["X-Date"], request["body"].encode()
        ),
        "X-Idempotency-Key": request["idempotency_key"],
    }
    assert reply.body["attached_by_gateway"] == ["X-Trans-Key"]
    (record,) = output.audits("sign")
    assert (record["partner"], record["outcome"]) == ("dlocal", "ok")
    assert record["fields"] == sorted(headers)
    assert "credentials_released" not in record
    assert_nothing_secret(stack, output)  # the headers go back to the caller, never to a log


def test_netcore_headers(sign_fn: Function, stack: StackResources, output: Output) -> None:
    request = json.loads(event("sign-netcore")["body"])
    reply = sign_fn.call(event("sign-netcore"))

    secret = stack.secrets["netcore"].value
    assert reply.status == 200
    assert reply.body["headers"] == {
        "x-eCode": "11256",
        "x-asset": secret["asset_id"],
        "Idempotency-Key": request["idempotency_key"],
    }
    assert reply.body["attached_by_gateway"] == ["Authorization"]  # the bearer API key is a credential
    assert_nothing_secret(stack, output)


@pytest.mark.parametrize("partner", ["dlocal", "netcore", "paykun"])
def test_sign_answers_carry_no_stored_credential(
    partner: str, sign_fn: Function, stack: StackResources, output: Output
) -> None:
    reply = sign_fn.call(event("sign-dlocal", partner=partner))

    assert reply.status == 200
    assert reply.body["attached_by_gateway"]
    assert leaks(reply.text, stored_credentials(stack)) == []
    for value in stack.secrets[partner].value.values():  # nothing secret either, bar what signing derives
        if value not in reply.body["headers"].values():
            assert value not in reply.text


def test_a_profile_may_opt_in_to_release_stored_credentials_and_each_release_is_audited(
    sign_fn: Function, stack: StackResources, output: Output
) -> None:
    from dataclasses import replace

    module = sign_fn.module
    module.runtime.profiles["paykun"] = replace(
        module.runtime.profiles["paykun"], release_stored_credentials=True
    )

    reply = sign_fn.call(event("sign-dlocal", partner="paykun"))

    secret = stack.secrets["paykun"].value
    assert reply.body["headers"]["AccessToken"] == secret["access_token"]
    (record,) = output.audits("sign")
    assert record["credentials_released"] is True
    assert secret["access_token"] not in output.text


SIGN_REFUSALS: dict[str, tuple[dict[str, Any], int, str]] = {
    "partner this function does not serve": ({"partner": "infosimples"}, 404, "unknown_partner"),
    "unknown partner": ({"partner": "acme"}, 404, "unknown_partner"),
    "body is not JSON": ({"body": "{"}, 400, "bad_json"),
    "body field not a string": ({"body": {"body": {"amount": 1}}}, 400, "bad_input"),
    "idempotency key with a space": ({"body": {"body": "{}", "idempotency_key": "a b"}}, 400, "bad_input"),
    "idempotency key not a string": ({"body": {"body": "{}", "idempotency_key": 7}}, 400, "bad_input"),
    "oversize body": ({"body": {"body": "x" * (300 * 1024)}}, 413, "payload_too_large"),
}


@pytest.mark.parametrize("case", sorted(SIGN_REFUSALS))
def test_sign_refusals(case: str, sign_fn: Function, stack: StackResources, output: Output) -> None:
    overrides, status, code = SIGN_REFUSALS[case]

    reply = sign_fn.call(event("sign-dlocal", **overrides))

    assert (reply.status, reply.code) == (status, code)
    assert set(reply.body) == {"code", "message"}
    (record,) = output.audits("sign")
    assert (record["outcome"], record["reason"]) == ("refused", code)
    assert_nothing_secret(stack, output, reply.text)


# --- webhooks ----------------------------------------------------------------------------------------------------


@pytest.mark.interop
def test_signed_notification_is_accepted_and_queued(
    sign_fn: Function, stack: StackResources, output: Output
) -> None:
    sent = notification(stack)

    reply = sign_fn.call(sent)

    assert reply.status == 200
    assert reply.body["status"] == "accepted"
    (message,) = receive(stack, "InboundQueue")
    queued = json.loads(message["Body"])
    assert queued["partner"] == "dlocal"
    assert queued["signed_at"] == sent["headers"]["X-Date"]
    assert queued["body"] == sent["body"]
    assert output.metric_total(metric_names.WEBHOOK_ACCEPTED) == 1
    assert output.metric_total(metric_names.SIGNATURE_CHECK_FAILED) == 0
    (record,) = output.audits("webhook")
    assert (record["outcome"], record["caller"]) == ("ok", sent["requestContext"]["identity"]["sourceIp"])
    assert_nothing_secret(stack, output, reply.text)


@pytest.mark.interop
def test_base64_encoded_notification_is_verified_over_the_raw_bytes(
    sign_fn: Function, stack: StackResources
) -> None:
    sent = notification(stack, body='{"id":"D-4-1","status":"PAID","holder":"José"}')
    sent["body"] = base64.b64encode(sent["body"].encode()).decode()
    sent["isBase64Encoded"] = True

    reply = sign_fn.call(sent)

    assert reply.status == 200


def wrong_signature(sent: dict[str, Any]) -> dict[str, Any]:
    sent["headers"]["Authorization"] = "V2-HMAC-SHA256, Signature: " + "0" * 64
    return sent


def without(*names: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def drop(sent: dict[str, Any]) -> dict[str, Any]:
        for name in names:
            del sent["headers"][name]
        return sent

    return drop


def altered_body(sent: dict[str, Any]) -> dict[str, Any]:
    sent["body"] = sent["body"].replace('"PAID"', '"REJECTED"')
    return sent


def malformed_signature(sent: dict[str, Any]) -> dict[str, Any]:
    sent["headers"]["Authorization"] = "Bearer not-a-signature"
    return sent


WEBHOOK_REFUSALS: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], int, str]] = {
    "wrong signature": (wrong_signature, 401, "signature_mismatch"),
    "altered body": (altered_body, 401, "signature_mismatch"),
    "no Authorization": (without("Authorization"), 401, "missing_signature"),
    "no X-Date": (without("X-Date"), 401, "missing_signature"),
    "malformed Authorization": (malformed_signature, 401, "signature_mismatch"),
    "no X-Login": (without("X-Login"), 401, "missing_signature"),
}


@pytest.mark.interop
@pytest.mark.parametrize("case", sorted(WEBHOOK_REFUSALS))
def test_bad_signatures_are_refused_counted_and_not_queued(
    case: str, sign_fn: Function, stack: StackResources, output: Output
) -> None:
    change, status, code = WEBHOOK_REFUSALS[case]

    reply = sign_fn.call(change(notification(stack)))

    assert (reply.status, reply.code) == (status, code)
    assert receive(stack, "InboundQueue") == []
    assert output.metric_total(metric_names.SIGNATURE_CHECK_FAILED) == 1
    assert output.metric_total(metric_names.SIGNATURE_CHECK_FAILED, partner="dlocal") == 1
    (record,) = output.audits("webhook")
    assert (record["outcome"], record["reason"]) == ("refused", code)
    assert_nothing_secret(stack, output, reply.text)


@pytest.mark.interop
def test_signed_with_another_secret_is_refused(
    sign_fn: Function, stack: StackResources, output: Output
) -> None:
    reply = sign_fn.call(notification(stack, secret_key="throwaway-not-the-secret"))

    assert (reply.status, reply.code) == (401, "signature_mismatch")
    assert output.metric_total(metric_names.SIGNATURE_CHECK_FAILED) == 1


@pytest.mark.interop
def test_stale_notification_is_refused(sign_fn: Function, stack: StackResources, output: Output) -> None:
    reply = sign_fn.call(notification(stack, date=x_date(datetime.now(UTC) - timedelta(minutes=10))))

    assert (reply.status, reply.code) == (401, "stale_notification")
    assert receive(stack, "InboundQueue") == []
    assert_nothing_secret(stack, output, reply.text)


@pytest.mark.interop
def test_duplicate_notification_is_409_and_queued_once(
    sign_fn: Function, stack: StackResources, output: Output
) -> None:
    sent = notification(stack)

    first, again = sign_fn.call(sent), sign_fn.call(sent)

    assert first.status == 200
    assert (again.status, again.code) == (409, "duplicate_notification")
    assert len(receive(stack, "InboundQueue")) == 1
    assert [r["outcome"] for r in output.audits("webhook")] == ["ok", "refused"]


@pytest.mark.interop
def test_a_replay_with_the_signature_spelled_differently_is_still_a_duplicate(
    sign_fn: Function, stack: StackResources
) -> None:
    sent = notification(stack)
    respelled = json.loads(json.dumps(sent))
    signature = sent["headers"]["Authorization"].rsplit(" ", 1)[1]
    respelled["headers"]["Authorization"] = f"V2-HMAC-SHA256,Signature:{signature.upper()}"

    first, replay = sign_fn.call(sent), sign_fn.call(respelled)

    assert first.status == 200
    assert (replay.status, replay.code) == (409, "duplicate_notification")
    assert len(receive(stack, "InboundQueue")) == 1


@pytest.mark.interop
def test_a_notification_signed_for_another_merchant_is_refused(
    sign_fn: Function, stack: StackResources, output: Output
) -> None:
    reply = sign_fn.call(notification(stack, login="another-merchant"))

    assert (reply.status, reply.code) == (401, "signature_mismatch")
    assert receive(stack, "InboundQueue") == []
    assert output.metric_total(metric_names.SIGNATURE_CHECK_FAILED) == 1


@pytest.mark.interop
def test_the_same_notification_re_signed_with_a_new_date_is_a_duplicate(
    sign_fn: Function, stack: StackResources
) -> None:
    first = sign_fn.call(notification(stack, date=x_date(datetime.now(UTC) - timedelta(seconds=30))))
    again = sign_fn.call(notification(stack))

    assert first.status == 200
    assert (again.status, again.code) == (409, "duplicate_notification")
    assert len(receive(stack, "InboundQueue")) == 1


def test_partner_without_webhooks_is_404(sign_fn: Function, stack: StackResources, output: Output) -> None:
    reply = sign_fn.call(event("webhook-dlocal", partner="netcore"))

    assert (reply.status, reply.code) == (404, "not_found")
    assert receive(stack, "InboundQueue") == []


def test_webhook_for_an_unknown_partner_is_404(
    sign_fn: Function, stack: StackResources, output: Output
) -> None:
    reply = sign_fn.call(event("webhook-dlocal", partner="acme"))

    assert (reply.status, reply.code) == (404, "unknown_partner")


# --- rotation and outage -----------------------------------------------------------------------------------------


@pytest.mark.interop
def test_after_rotation_both_the_previous_and_the_new_secret_verify(
    cold_start: Callable[..., Function], stack: StackResources
) -> None:
    previous_key = stack.secrets["dlocal"].value["secret_key"]
    stack.rotate("dlocal")
    function = cold_start("sign")  # a new instance: AWSCURRENT is the new secret

    by_previous = function.call(notification(stack, secret_key=previous_key, body='{"id":"D-4-old"}'))
    by_new = function.call(notification(stack, body='{"id":"D-4-new"}'))

    assert (by_previous.status, by_new.status) == (200, 200)


@pytest.mark.interop
def test_a_warm_instance_verifies_a_secret_rotated_after_its_cold_start(
    sign_fn: Function, stack: StackResources
) -> None:
    assert sign_fn.call(notification(stack, body='{"id":"D-4-before"}')).status == 200
    stack.rotate("dlocal")

    reply = sign_fn.call(notification(stack, body='{"id":"D-4-after"}'))

    assert reply.status == 200


@pytest.mark.interop
def test_keys_unavailable_at_cold_start_then_recovered(
    secrets_outage: SecretsOutage, cold_start: Callable[..., Function], stack: StackResources, output: Output
) -> None:
    function = cold_start("sign")

    down = function.call(notification(stack))

    assert (down.status, down.code) == (503, "keys_unavailable")
    assert receive(stack, "InboundQueue") == []
    assert output.metric_total(metric_names.KEY_LOAD_FAILED) >= 1

    secrets_outage.end()
    back = function.call(notification(stack))

    assert back.status == 200
