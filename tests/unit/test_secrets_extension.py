"""PartnerSecrets through the AWS Parameters and Secrets Lambda Extension's protocol, served by the local stack's
server (:mod:`sealgate_local.secrets_extension`) in front of moto: what the functions do when the template
attaches the extension, and the boto3 fallback when it is configured but absent.

Every secret value here is a throwaway test key. What reached Secrets Manager is counted at the botocore
client (the extension's own, in this process) and at the extension (its ``requests``).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from moto import mock_aws

from sealgate import aws_clients, runtime
from sealgate.errors import KeysUnavailable
from sealgate.partner_keys import TOKEN_HEADER, PartnerSecrets
from sealgate.settings import Settings
from sealgate_local.secrets_extension import SecretsExtension

PREFIX = "sealgate/test/"
SECRETS: dict[str, dict[str, str]] = {  # throwaway test keys
    "netcore": {"key": "THROWAWAY-netcore-key", "iv": "THROWAWAY-netcore-iv"},
    "paykun": {"encryption_key": "THROWAWAY-paykun-key"},
    "dlocal": {"secret_key": "THROWAWAY-dlocal-K1"},
}
REQUIRED = {"netcore": ("key", "iv"), "paykun": ("encryption_key",), "dlocal": ("secret_key",)}
TOKEN = "THROWAWAY-session-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """Dummy credentials, the extension's token as the session token; no endpoint or profile from the shell."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    aws_clients.reset()
    yield
    aws_clients.reset()


@pytest.fixture
def sm() -> Iterator[Any]:
    """Secrets Manager on moto (this process), with every partner's secret created."""
    with mock_aws():
        client = boto3.client("secretsmanager")
        for partner, value in SECRETS.items():
            client.create_secret(Name=PREFIX + partner, SecretString=json.dumps(value))
        yield client


@pytest.fixture
def extension(sm: Any) -> Iterator[SecretsExtension]:
    with SecretsExtension(lambda: sm, token=TOKEN) as served:
        yield served


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(SecretId, VersionStage or VersionId) of every GetSecretValue reaching moto from now on."""
    seen: list[tuple[str, str]] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(self: BaseClient, operation: str, params: Mapping[str, Any]) -> Any:
        if operation == "GetSecretValue":
            seen.append(
                (params["SecretId"], params.get("VersionId") or params.get("VersionStage", "AWSCURRENT"))
            )
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return seen


def make(port: int, partners: list[str] | None = None, **options: Any) -> PartnerSecrets:
    return PartnerSecrets(
        partners or sorted(SECRETS), prefix=PREFIX, required=REQUIRED, extension_port=port, **options
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rotate(sm: Any, partner: str, **fields: str) -> str:
    answer = sm.put_secret_value(
        SecretId=PREFIX + partner, SecretString=json.dumps({**SECRETS[partner], **fields})
    )
    return str(answer["VersionId"])


# --- the extension path --------------------------------------------------------------------------------------


def test_cold_start_fetches_every_served_partner_once_through_the_extension_without_boto3(
    extension: SecretsExtension, fetches: list[tuple[str, str]]
) -> None:
    secrets = make(extension.port)

    secrets.load()

    assert secrets.ready
    assert secrets.via_extension
    assert extension.requests == 3
    assert sorted(fetches) == sorted((PREFIX + partner, "AWSCURRENT") for partner in SECRETS)
    for partner, value in SECRETS.items():
        assert dict(secrets.current(partner)) == value
    assert extension.requests == 3, "served from the cache afterwards"
    assert aws_clients._made.cache_info().currsize == 0, "the function made no boto3 client"


def test_previous_stage_and_a_version_by_id_go_through_the_extension(
    sm: Any, extension: SecretsExtension, fetches: list[tuple[str, str]]
) -> None:
    first = sm.describe_secret(SecretId=PREFIX + "dlocal")
    old_version = next(v for v, stages in first["VersionIdsToStages"].items() if "AWSCURRENT" in stages)
    new_version = rotate(sm, "dlocal", secret_key="THROWAWAY-dlocal-K2")
    secrets = make(extension.port, ["dlocal"])

    accepted = secrets.try_each("dlocal", lambda fields: _accept_only(fields, "THROWAWAY-dlocal-K1"))
    old = secrets.by_version("dlocal", old_version)

    assert accepted == "THROWAWAY-dlocal-K1"
    assert old is not None
    assert old["secret_key"] == "THROWAWAY-dlocal-K1"
    assert old.version_id == old_version
    assert secrets.current("dlocal").version_id == new_version
    assert fetches == [
        (PREFIX + "dlocal", "AWSCURRENT"),
        (PREFIX + "dlocal", "AWSPREVIOUS"),
        (PREFIX + "dlocal", old_version),
    ]
    assert extension.requests == 3
    assert secrets.by_version("dlocal", "f" * 36) is None, "a version Secrets Manager never had"
    assert secrets.by_version("dlocal", "short") is None, "not a VersionId at all: never asked"


def _accept_only(fields: Mapping[str, str], key: str) -> str:
    from sealgate.errors import SignatureMismatch

    if fields["secret_key"] != key:
        raise SignatureMismatch
    return fields["secret_key"]


def test_missing_secret_is_keys_unavailable_and_retried_on_the_next_call(
    sm: Any, extension: SecretsExtension
) -> None:
    sm.delete_secret(SecretId=PREFIX + "paykun", ForceDeleteWithoutRecovery=True)
    secrets = make(extension.port)

    secrets.load()

    assert not secrets.ready
    assert secrets.load_failures == 1
    with pytest.raises(KeysUnavailable, match=r"'paykun'.*ResourceNotFoundException") as caught:
        secrets.current("paykun")
    assert caught.value.http_status == 503
    assert caught.value.code == "keys_unavailable"
    sm.create_secret(Name=PREFIX + "paykun", SecretString=json.dumps(SECRETS["paykun"]))
    assert dict(secrets.current("paykun")) == SECRETS["paykun"]
    assert secrets.ready


def test_max_age_bounds_how_long_a_value_is_served_without_asking_again(
    sm: Any, extension: SecretsExtension
) -> None:
    clock = Clock()
    secrets = make(extension.port, ["netcore"], max_age=60, clock=clock)
    secrets.load()
    rotate(sm, "netcore", key="THROWAWAY-netcore-key-2")

    clock.now += 59
    assert secrets.current("netcore")["key"] == SECRETS["netcore"]["key"]
    assert extension.requests == 1
    clock.now += 1
    assert secrets.current("netcore")["key"] == "THROWAWAY-netcore-key-2"
    assert extension.requests == 2


def test_a_caller_without_the_session_token_is_refused_and_nothing_is_fetched(
    extension: SecretsExtension, monkeypatch: pytest.MonkeyPatch, fetches: list[tuple[str, str]]
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "THROWAWAY-someone-else")
    secrets = make(extension.port, ["netcore"])

    with pytest.raises(KeysUnavailable, match="'netcore'") as caught:
        secrets.current("netcore")

    assert extension.refused == 1
    assert fetches == []
    assert "THROWAWAY" not in str(caught.value)
    assert secrets.via_extension, "a refusal is not an absent extension: no fallback to boto3"


# --- fallback and outages --------------------------------------------------------------------------------------


def test_extension_configured_but_absent_falls_back_to_boto3_for_good(
    sm: Any, fetches: list[tuple[str, str]]
) -> None:
    secrets = make(free_port())  # nothing listens there: the layer is not attached

    secrets.load()

    assert secrets.ready
    assert not secrets.via_extension
    assert sorted(fetches) == sorted((PREFIX + partner, "AWSCURRENT") for partner in SECRETS)
    assert dict(secrets.current("netcore")) == SECRETS["netcore"]


def test_secrets_manager_out_of_reach_behind_the_extension_counts_once_and_recovers(
    sm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import EndpointConnectionError

    down = threading.Event()
    down.set()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def maybe_down(self: BaseClient, operation: str, params: Mapping[str, Any]) -> Any:
        if down.is_set():
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.invalid")
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", maybe_down)
    with SecretsExtension(lambda: sm, token=TOKEN) as extension:
        secrets = make(extension.port)

        secrets.load()
        assert not secrets.ready
        assert secrets.load_failures == 1, "three partners failed together: one outage"
        with pytest.raises(KeysUnavailable, match="'netcore'"):
            secrets.current("netcore")

        down.clear()
        assert dict(secrets.current("netcore")) == SECRETS["netcore"]
        secrets.load()
        assert secrets.ready


def test_an_extension_that_never_answers_times_out() -> None:
    class Silent(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(5)

        def log_message(self, format: str, *args: Any) -> None:
            return

    release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        secrets = make(int(server.server_address[1]), ["netcore"])
        assert secrets.extension is not None
        secrets.extension.timeout = 0.3  # the template bounds it at 4 s
        with pytest.raises(KeysUnavailable, match="extension TimeoutError"):
            secrets.current("netcore")
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_the_extension_server_answers_like_getsecretvalue_and_checks_its_token(
    extension: SecretsExtension,
) -> None:
    import http.client

    def get(path: str, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection("127.0.0.1", extension.port, timeout=5)
        connection.request("GET", path, headers={TOKEN_HEADER: token} if token else {})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())

    status, body = get(f"/secretsmanager/get?secretId={PREFIX}netcore")
    assert status == 200
    assert json.loads(body["SecretString"]) == SECRETS["netcore"]
    assert body["VersionStages"] == ["AWSCURRENT"]
    assert {"ARN", "Name", "VersionId", "CreatedDate"} <= set(body)
    assert get(f"/secretsmanager/get?secretId={PREFIX}netcore", token=None)[0] == 401
    assert get(f"/secretsmanager/get?secretId={PREFIX}nobody")[1]["__type"] == "ResourceNotFoundException"
    assert get("/secretsmanager/get")[0] == 400
    assert get("/systemsmanager/parameters/get?name=x")[0] == 404


# --- settings and SnapStart -----------------------------------------------------------------------------------


def test_settings_read_the_extension_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALGATE_SECRET_PREFIX", PREFIX)
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2773")
    assert PartnerSecrets.from_settings(Settings.from_environment(), ["netcore"]).via_extension
    monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
    assert not PartnerSecrets.from_settings(Settings.from_environment(), ["netcore"]).via_extension
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "port")
    with pytest.raises(KeysUnavailable, match="PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"):
        Settings.from_environment()


def test_snapstart_hooks_keep_no_key_in_the_snapshot_and_fetch_afresh_after_restore(
    sm: Any, extension: SecretsExtension
) -> None:
    from sealgate.schemes import aesbridge_kdf

    started = runtime.Runtime("encrypt", Settings(secret_prefix=PREFIX), {}, make(extension.port))
    started.secrets.load()
    served = sorted(started.secrets.partners)
    salt, _ = aesbridge_kdf.DEFAULT_ENCRYPTION_KEYS.take(b"THROWAWAY-passphrase", 32)
    before = extension.requests

    runtime.before_snapshot(started)
    assert not started.secrets.ready
    assert started.secrets._cache == {}, "no key value in the snapshot"
    assert aesbridge_kdf.DEFAULT_ENCRYPTION_KEYS.take(b"THROWAWAY-passphrase", 32)[0] != salt

    rotate(sm, "netcore", key="THROWAWAY-netcore-key-restored")
    runtime.after_restore(started)
    assert extension.requests == before + len(served), "every served partner fetched again, once"
    assert started.secrets.current("netcore")["key"] == "THROWAWAY-netcore-key-restored"
    assert runtime.register_snapstart_hooks(started) is False, "no snapshot_restore_py outside Lambda"
