"""PartnerSecrets when Secrets Manager is down at cold start, then comes back on the same endpoint.

The endpoint is a closed port on 127.0.0.1 (boto3's standard ``AWS_ENDPOINT_URL``), later served by moto's
server. Every secret value here is a throwaway test key.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from sealgate.errors import KeysUnavailable
from sealgate.partner_keys import PartnerSecrets

PREFIX = "sealgate/test/"
SECRETS = {  # throwaway test keys
    "netcore": {"key": "THROWAWAY-netcore-key", "iv": "THROWAWAY-netcore-iv"},
    "paykun": {"encryption_key": "THROWAWAY-paykun-key"},
}
REQUIRED = {"netcore": ("key", "iv"), "paykun": ("encryption_key",)}
A_FEW_SECONDS = 8.0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """A Secrets Manager endpoint nobody listens on yet; dummy credentials and region."""
    url = f"http://127.0.0.1:{closed_port()}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_ENDPOINT_URL": url,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    return url


@pytest.fixture
def bring_back(endpoint: str) -> Iterator[Any]:
    """Call to start moto's server on the endpoint and create the partners' secrets."""
    servers: list[ThreadedMotoServer] = []

    def start() -> None:
        port = int(endpoint.rsplit(":", 1)[1])
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        servers.append(server)
        client = boto3.client("secretsmanager", endpoint_url=endpoint)
        for partner, value in SECRETS.items():
            client.create_secret(Name=PREFIX + partner, SecretString=json.dumps(value))

    yield start
    for server in servers:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
        server.stop()


def test_outage_at_cold_start_answers_fast_and_recovers_on_the_next_call(bring_back: Any) -> None:
    secrets = PartnerSecrets(["netcore", "paykun"], prefix=PREFIX, required=REQUIRED)

    started = time.monotonic()
    secrets.load()
    assert time.monotonic() - started < A_FEW_SECONDS

    assert not secrets.ready
    assert secrets.load_failures == 1, "the first unreachable fetch stops the cold-start loop"

    started = time.monotonic()
    with pytest.raises(KeysUnavailable, match=r"'netcore'.*EndpointConnectionError") as caught:
        secrets.current("netcore")
    assert time.monotonic() - started < A_FEW_SECONDS
    assert caught.value.code == "keys_unavailable"
    assert caught.value.http_status == 503
    assert secrets.load_failures == 2

    bring_back()

    assert dict(secrets.current("netcore")) == SECRETS["netcore"]
    assert not secrets.ready, "paykun has not been fetched yet"
    secrets.load()
    assert secrets.ready
    assert dict(secrets.current("paykun")) == SECRETS["paykun"]
    assert secrets.load_failures == 2


@pytest.mark.slow
def test_endpoint_that_never_answers_times_out_within_lambda_init(endpoint: str) -> None:
    port = int(endpoint.rsplit(":", 1)[1])
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", port))
        silent.listen(8)
        secrets = PartnerSecrets(["netcore", "paykun"], prefix=PREFIX, required=REQUIRED)

        started = time.monotonic()
        secrets.load()
        elapsed = time.monotonic() - started

    assert not secrets.ready
    assert secrets.load_failures == 1
    assert elapsed < 8.0, "two attempts of 3 s each: within Lambda's 10 s init phase"
