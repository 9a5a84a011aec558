"""The local API Gateway: routes read from template.yaml, the proxy event it builds, and its answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealgate_local.api_server import (
    ApiServer,
    GatewayResponse,
    Route,
    gateway_responses_from_template,
    routes_from_template,
)
from sealgate_local.aws_stack import load_template
from sealgate_local.worker import Invocation

NAMES = {"EncryptFunction": "encrypt", "SignFunction": "sign", "ForwardFunction": "forward"}


class Recorder:
    """Stands in for the workers: records each event and answers ``answer``."""

    def __init__(self, answer: Invocation) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Mapping[str, Any]]] = []

    def __call__(self, function: str, event: Mapping[str, Any], request_id: str) -> Invocation:
        self.calls.append((function, event))
        return self.answer


def api(answer: Invocation) -> tuple[ApiServer, Recorder]:
    recorder = Recorder(answer)
    server = ApiServer(
        routes_from_template(load_template(), NAMES), recorder, stage="dev", account_id="123456789012"
    )
    return server, recorder


def ok(body: str = "{}", **extra: Any) -> Invocation:
    return Invocation(
        ok=True,
        result={"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body, **extra},
    )


def test_routes_and_auth_come_from_the_template() -> None:
    routes = {
        (r.method, r.path): (r.function, r.public) for r in routes_from_template(load_template(), NAMES)
    }

    assert routes[("POST", "/v1/encrypt/{partner}")] == ("encrypt", False)
    assert routes[("POST", "/v1/sign/{partner}")] == ("sign", False)
    assert routes[("POST", "/v1/webhooks/{partner}")] == ("sign", True)  # Auth: Authorizer: NONE
    assert all(function in NAMES.values() for function, _ in routes.values())
    assert sum(public for _, public in routes.values()) == 1


def test_an_iam_route_gets_a_rest_proxy_event_with_the_local_caller() -> None:
    server, recorder = api(ok('{"done":true}'))
    status, headers, body = server.handle(
        "POST",
        "/dev/v1/encrypt/netcore?x=1&x=2",
        [("Content-Type", "application/json"), ("X-Tag", "a"), ("X-Tag", "b")],
        b'{"payload":{}}',
        "127.0.0.1",
    )

    assert (status, body) == (200, b'{"done":true}')
    assert ("Content-Type", "application/json") in headers
    function, event = recorder.calls[0]
    assert function == "encrypt"
    assert event["resource"] == "/v1/encrypt/{partner}"
    assert event["path"] == "/v1/encrypt/netcore"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"partner": "netcore"}
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert event["headers"]["X-Tag"] == "b"
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"]
    assert (event["body"], event["isBase64Encoded"]) == ('{"payload":{}}', False)
    context = event["requestContext"]
    assert (context["stage"], context["path"], context["resourcePath"]) == (
        "dev",
        "/dev/v1/encrypt/netcore",
        "/v1/encrypt/{partner}",
    )
    assert (
        context["identity"]["userArn"]
        == server.caller_arn
        == "arn:aws:iam::123456789012:user/local-developer"
    )
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == dict(headers)["x-amzn-RequestId"]


def test_the_webhook_route_is_public_and_a_binary_body_arrives_as_base64() -> None:
    server, recorder = api(ok())
    server.handle("POST", "/dev/v1/webhooks/dlocal", [], b"\xff\x00", "198.51.100.23")

    event = recorder.calls[0][1]
    identity = event["requestContext"]["identity"]
    assert (identity["userArn"], identity["caller"], identity["sourceIp"]) == (None, None, "198.51.100.23")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00"


@pytest.mark.parametrize(
    "target",
    [
        "/v1/encrypt/netcore",
        "/dev/v1/nowhere",
        "/dev/v1/encrypt",
        "/dev/v1/encrypt/a/b",
        "/prod/v1/encrypt/netcore",
    ],
)
def test_unknown_routes_are_404_not_found_without_invoking(target: str) -> None:
    server, recorder = api(ok())
    status, _, body = server.handle("POST", target, [], b"", "127.0.0.1")

    assert status == 404
    assert json.loads(body)["code"] == "not_found"
    assert recorder.calls == []


def test_the_method_matters() -> None:
    server, recorder = api(ok())
    status, _, _ = server.handle("GET", "/dev/v1/encrypt/netcore", [], b"", "127.0.0.1")

    assert status == 404
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("invocation", "status"),
    [
        (Invocation(ok=False, error_type="KeyError"), 502),
        (Invocation(ok=False, error_type="TimedOut"), 504),
        (Invocation(ok=True, result={"no": "statusCode"}), 502),
    ],
)
def test_function_failures_are_answered_as_api_gateway_does(invocation: Invocation, status: int) -> None:
    server, _ = api(invocation)
    assert server.handle("POST", "/dev/v1/sign/dlocal", [], b"{}", "127.0.0.1")[0] == status


def test_a_base64_answer_is_decoded() -> None:
    server, _ = api(ok(base64.b64encode(b"\x00\x01").decode(), isBase64Encoded=True))
    assert server.handle("POST", "/dev/v1/sign/dlocal", [], b"{}", "127.0.0.1")[2] == b"\x00\x01"


@given(
    st.text(alphabet=st.characters(categories=["L", "N"], include_characters="-_.~"), min_size=1, max_size=40)
)
def test_a_path_variable_takes_any_one_segment(value: str) -> None:
    route = Route("forward", "GET", "/v1/forward/{target}", public=False)
    server = ApiServer([route], Recorder(ok()), stage="dev", account_id="1")

    assert server.match("GET", route.fill(value)) == (route, {"target": value})
    assert server.match("GET", route.fill(value) + "/extra") is None


def test_fill_takes_the_last_values_for_fewer_variables() -> None:
    assert Route("f", "GET", "/v1/forward/{target}", public=False).fill("paykun", "abc") == "/v1/forward/abc"
    assert (
        Route("f", "GET", "/v1/forward/{p}/{id}", public=False).fill("paykun", "abc")
        == "/v1/forward/paykun/abc"
    )


def api_with_gateway_responses(configured: Mapping[str, Any]) -> Mapping[str, GatewayResponse]:
    template = {
        "Resources": {"Api": {"Type": "AWS::Serverless::Api", "Properties": {"GatewayResponses": configured}}}
    }
    return gateway_responses_from_template(template)


def contract(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "ResponseParameters": {"Headers": {"Cache-Control": "'no-store'"}},
        "ResponseTemplates": {"application/json": json.dumps({"code": code, "message": code})},
        **extra,
    }


def test_gateway_responses_are_read_with_their_static_headers_and_status() -> None:
    read = api_with_gateway_responses(
        {"DEFAULT_5XX": contract("e"), "THROTTLED": contract("t", StatusCode="429")}
    )

    assert read["THROTTLED"] == GatewayResponse(
        status=429,
        headers=(("Cache-Control", "no-store"), ("Content-Type", "application/json")),
        body=b'{"code": "t", "message": "t"}',
    )
    assert read["DEFAULT_5XX"].status is None


@pytest.mark.parametrize(
    "entry",
    [
        {**contract("x"), "ResponseParameters": {"Headers": {"X-Echo": "method.request.header.X-Echo"}}},
        {"ResponseTemplates": {"text/plain": "no"}},
        {},
    ],
)
def test_a_gateway_response_that_could_echo_the_request_or_is_not_json_is_refused(entry: Any) -> None:
    with pytest.raises(ValueError, match="gateway response"):
        api_with_gateway_responses({"DEFAULT_4XX": entry})


def test_an_unconfigured_refusal_falls_back_to_default_4xx_or_5xx_with_its_own_status() -> None:
    responses = api_with_gateway_responses({"DEFAULT_4XX": contract("four"), "DEFAULT_5XX": contract("five")})
    server = ApiServer([], Recorder(ok()), stage="dev", account_id="1", gateway_responses=responses)

    status, _, body = server.handle("GET", "/dev/anything", [], b"", "127.0.0.1")
    assert (status, json.loads(body)["code"]) == (404, "four")
    assert server.refusal("INTEGRATION_TIMEOUT")[::2] == (504, responses["DEFAULT_5XX"].body)
    assert server.refusal("REQUEST_TOO_LARGE")[::2] == (413, responses["DEFAULT_4XX"].body)


def test_the_local_api_refuses_to_start_without_the_gateway_responses_it_answers_with() -> None:
    with pytest.raises(ValueError, match="DEFAULT_5XX"):
        ApiServer(
            [],
            Recorder(ok()),
            stage="dev",
            account_id="1",
            gateway_responses=api_with_gateway_responses({"DEFAULT_4XX": contract("four")}),
        )
