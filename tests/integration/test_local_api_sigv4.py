"""The local API with ``iam_auth=True`` over real loopback sockets: signed by botocore, by ``curl --aws-sigv4``
and by ``scripts/call_sealgate.py``; refused unsigned or badly signed in the error contract, as API Gateway
answers, without invoking the function; the webhook route stays public.

The functions are stood in for by a recorder (the event each would get); the whole stack signed end to end is in
``test_local_run_sigv4.py`` (``make run``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sealgate_local.api_server import OPENAPI_PATH, ApiServer, routes_from_template
from sealgate_local.aws_stack import load_template
from sealgate_local.openapi import OPENAPI
from sealgate_local.sigv4 import sign
from sealgate_local.worker import Invocation

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"EncryptFunction": "encrypt", "SignFunction": "sign", "ForwardFunction": "forward"}
ACCOUNT = "123456789012"
REGION = "us-east-1"
BODY = b'{"payload":{"event":"signup"}}'
CURL_SIGV4 = (7, 75)  # the first curl with --aws-sigv4


class Recorder:
    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []

    def __call__(self, function: str, event: Mapping[str, Any], request_id: str) -> Invocation:
        self.events.append(event)
        body = json.dumps({"function": function})
        return Invocation(
            ok=True, result={"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body}
        )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def api(recorder: Recorder) -> Iterator[ApiServer]:
    routes = routes_from_template(load_template(), NAMES)
    refused: list[str] = []
    with ApiServer(
        routes,
        recorder,
        stage="dev",
        account_id=ACCOUNT,
        region=REGION,
        iam_auth=True,
        on_auth_refusal=refused.append,
    ) as server:
        server.refused = refused  # type: ignore[attr-defined]
        yield server


def send(
    api: ApiServer, method: str, path: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, Any, dict[str, str]]:
    url = urlsplit(api.base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        connection.request(method, url.path + path, body=body or None, headers=dict(headers))
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        connection.close()


def signed_headers(api: ApiServer, method: str, path: str, body: bytes) -> dict[str, str]:
    return sign(
        method,
        api.base_url + path,
        body=body,
        headers={"Content-Type": "application/json"},
        credentials=api.credentials,
        region=REGION,
    )


def test_a_signed_call_reaches_the_function_as_its_access_keys_identity(
    api: ApiServer, recorder: Recorder
) -> None:
    status, body, _ = send(
        api, "POST", "/v1/encrypt/netcore", BODY, signed_headers(api, "POST", "/v1/encrypt/netcore", BODY)
    )

    assert (status, body) == (200, {"function": "encrypt"})
    identity = recorder.events[-1]["requestContext"]["identity"]
    assert identity["accessKey"] == api.credentials.access_key
    assert identity["caller"] == identity["user"] == api.credentials.user_id
    assert identity["userArn"] == api.caller_arn == f"arn:aws:iam::{ACCOUNT}:user/local-developer"
    assert identity["accountId"] == ACCOUNT
    assert api.credentials.secret_key not in json.dumps(recorder.events[-1])


def test_an_unsigned_call_is_403_missing_authentication_and_invokes_nothing(
    api: ApiServer, recorder: Recorder
) -> None:
    status, body, headers = send(
        api, "POST", "/v1/encrypt/netcore", BODY, {"Content-Type": "application/json"}
    )

    assert status == 403
    assert body == {"code": "missing_authentication", "message": body["message"]}
    assert isinstance(body["message"], str)
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert headers["Cache-Control"] == "no-store"
    assert recorder.events == []


@pytest.mark.parametrize(
    ("sent_path", "sent_body"),
    [
        ("/v1/encrypt/netcore", BODY.replace(b"signup", b"signin")),
        ("/v1/decrypt/netcore", BODY),
        ("/v1/encrypt/paykun", BODY),
    ],
    ids=["body", "path-action", "path-partner"],
)
def test_a_call_changed_after_signing_is_403_invalid_signature(
    api: ApiServer, recorder: Recorder, sent_path: str, sent_body: bytes
) -> None:
    headers = signed_headers(api, "POST", "/v1/encrypt/netcore", BODY)
    status, body, answer_headers = send(api, "POST", sent_path, sent_body, headers)

    assert (status, set(body)) == (403, {"code", "message"})
    assert body["code"] == "invalid_signature"
    assert answer_headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert recorder.events == []
    assert api.refused[-1].endswith(
        "INVALID_SIGNATURE (the signature differs from the one computed for this request)"
    )  # type: ignore[attr-defined]
    assert api.credentials.access_key not in api.refused[-1]  # type: ignore[attr-defined]


def test_the_webhook_route_needs_no_signature(api: ApiServer, recorder: Recorder) -> None:
    status, body, _ = send(
        api, "POST", "/v1/webhooks/dlocal", b'{"id":"x"}', {"Content-Type": "application/json"}
    )

    assert (status, body) == (200, {"function": "sign"})
    assert recorder.events[-1]["requestContext"]["identity"]["userArn"] is None


def test_the_local_openapi_document_needs_no_signature(api: ApiServer, recorder: Recorder) -> None:
    if not OPENAPI.is_file():
        pytest.skip("no openapi.json (make generate writes it)")
    status, body, _ = send(api, "GET", OPENAPI_PATH, b"", {})

    assert status == 200
    assert "/v1/encrypt/{partner}" in body["paths"]
    assert recorder.events == []


def test_without_iam_auth_plain_requests_pass_as_the_local_caller(recorder: Recorder) -> None:
    routes = routes_from_template(load_template(), NAMES)
    with ApiServer(routes, recorder, stage="dev", account_id=ACCOUNT) as server:
        status, _, _ = send(server, "POST", "/v1/encrypt/netcore", BODY, {})

        assert status == 200
        assert recorder.events[-1]["requestContext"]["identity"]["userArn"] == server.caller_arn


def curl_version() -> tuple[int, ...] | None:
    curl = shutil.which("curl")
    if curl is None:
        return None
    first = subprocess.run([curl, "--version"], capture_output=True, text=True, check=False).stdout
    found = re.match(r"curl (\d+)\.(\d+)", first)
    return None if found is None else (int(found[1]), int(found[2]))


def test_curl_aws_sigv4_is_accepted_and_a_wrong_secret_refused(api: ApiServer, recorder: Recorder) -> None:
    version = curl_version()
    if version is None or version < CURL_SIGV4:
        pytest.skip(f"curl {version} has no --aws-sigv4 (7.75 or later)")
    credentials = api.credentials

    def curl(user: str, path: str, *extra: str) -> tuple[str, str]:
        done = subprocess.run(
            [
                "curl",
                "-s",
                "--aws-sigv4",
                f"aws:amz:{REGION}:execute-api",
                "--user",
                user,
                "-w",
                "\n%{http_code}",
                *extra,
                api.base_url + path,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        body, _, status = done.stdout.rpartition("\n")
        return status, body

    post = ("-X", "POST", "-H", "Content-Type: application/json", "-d", BODY.decode())
    assert curl(f"{credentials.access_key}:{credentials.secret_key}", "/v1/encrypt/netcore", *post) == (
        "200",
        '{"function": "encrypt"}',
    )
    assert recorder.events[-1]["requestContext"]["identity"]["accessKey"] == credentials.access_key
    assert curl(f"{credentials.access_key}:{credentials.secret_key}", "/v1/forward/abc-123?view=full") == (
        "200",
        '{"function": "forward"}',
    )
    status, body = curl(f"{credentials.access_key}:wrong-secret", "/v1/encrypt/netcore", *post)
    assert (status, json.loads(body)["code"]) == ("403", "invalid_signature")


def test_the_python_caller_signs_with_botocore_and_takes_credentials_from_the_environment(
    api: ApiServer, recorder: Recorder, tmp_path: Path
) -> None:
    credentials = api.credentials
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    def call(*arguments: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "call_sealgate.py"), *arguments],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**environment, **extra},
        )

    done = call("--region", REGION, "POST", api.base_url + "/v1/encrypt/netcore", BODY.decode())
    assert (done.returncode, json.loads(done.stdout), done.stderr.strip()) == (
        0,
        {"function": "encrypt"},
        "200",
    )
    assert recorder.events[-1]["requestContext"]["identity"]["accessKey"] == credentials.access_key

    # The region from the environment, and a body from a file.
    (tmp_path / "body.json").write_bytes(BODY)
    done = call(
        "POST", api.base_url + "/v1/sign/dlocal", "@" + str(tmp_path / "body.json"), AWS_REGION=REGION
    )
    assert (done.returncode, json.loads(done.stdout)) == (0, {"function": "sign"})

    refused = call("--region", "eu-west-1", "POST", api.base_url + "/v1/encrypt/netcore", BODY.decode())
    assert (refused.returncode, json.loads(refused.stdout)["code"]) == (1, "invalid_signature")
