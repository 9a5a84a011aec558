"""scripts/revoke_rotate.py against moto: after it, the layer's own key loading (PartnerSecrets.try_each) refuses
what the old material made and accepts what the new material makes; the stages, the functions' configuration
and aliases are as the script says; nothing it prints or writes beside the partner's file holds a value.

Tokens are made with the layer's protection and checked by the layer; webhook signatures are made with dLocal's
documented formula (HMAC-SHA256 over login + date + body), not with our module.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import stat
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sealgate import aws_clients
from sealgate.errors import AuthenticationFailed
from sealgate.partner_keys import PartnerSecrets
from sealgate.partners import load_profiles

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "sealgate/dev/"
STACK = "sealgate-dev"
LOGICAL_IDS = ("EncryptFunction", "SignFunction", "ForwardFunction")
PROFILES = load_profiles()
X_DATE = "2025-11-22T08:41:11.482Z"
WEBHOOK_BODY = b'{"id":"D-4-be5e1d04","status":"PAID","amount":120.0}'


@pytest.fixture(scope="module")
def script() -> ModuleType:
    """scripts/revoke_rotate.py, imported as the command runs it."""
    spec = importlib.util.spec_from_file_location("revoke_rotate", ROOT / "scripts" / "revoke_rotate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["revoke_rotate"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Dummy credentials and region; no real profile, endpoint or secrets extension leaks in (nor a boto3
    client an earlier test in this process made against another endpoint)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", raising=False)
    aws_clients.reset()
    yield
    aws_clients.reset()


@pytest.fixture
def stack() -> Iterator[dict[str, str]]:
    """A stack on moto with the template's three functions (logical ids, prefix variable) and an alias on a
    published version of the forward function, as SnapStart deployments have. Yields logical id -> name."""
    template: dict[str, Any] = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                },
            }
        }
    }
    for logical_id in LOGICAL_IDS:
        template["Resources"][logical_id] = {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "app.lambda_handler",
                "Runtime": "python3.13",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"ZipFile": "def lambda_handler(event, context):\n    return event\n"},
                "Environment": {"Variables": {"SEALGATE_SECRET_PREFIX": PREFIX, "STAGE": "dev"}},
            },
        }
    with mock_aws():
        cloudformation = boto3.client("cloudformation")
        cloudformation.create_stack(
            StackName=STACK, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
        )
        names = {
            logical_id: cloudformation.describe_stack_resource(StackName=STACK, LogicalResourceId=logical_id)[
                "StackResourceDetail"
            ]["PhysicalResourceId"]
            for logical_id in LOGICAL_IDS
        }
        lambdas = boto3.client("lambda")
        version = lambdas.publish_version(FunctionName=names["ForwardFunction"])["Version"]
        lambdas.create_alias(FunctionName=names["ForwardFunction"], Name="live", FunctionVersion=version)
        yield names


def put(partner: str, value: Mapping[str, str]) -> str:
    """A new AWSCURRENT version of the partner's secret (created on first use), as an operator's rotation."""
    secrets = boto3.client("secretsmanager")
    try:
        return str(secrets.create_secret(Name=PREFIX + partner, SecretString=json.dumps(value))["VersionId"])
    except secrets.exceptions.ResourceExistsException:
        return str(
            secrets.put_secret_value(SecretId=PREFIX + partner, SecretString=json.dumps(value))["VersionId"]
        )


def stages() -> dict[str, dict[str, list[str]]]:
    secrets = boto3.client("secretsmanager")
    return {
        entry["Name"]: secrets.describe_secret(SecretId=entry["Name"])["VersionIdsToStages"]
        for entry in secrets.list_secrets()["SecretList"]
    }


def current(partner: str) -> dict[str, str]:
    text = boto3.client("secretsmanager").get_secret_value(SecretId=PREFIX + partner)["SecretString"]
    value: dict[str, str] = json.loads(text)
    return value


def layer_keys(partner: str) -> PartnerSecrets:
    """The layer's key loading as a function builds it, without cache (every call reads Secrets Manager)."""
    return PartnerSecrets(
        [partner],
        prefix=PREFIX,
        max_age=0,
        refetch_interval=0,
        required={partner: PROFILES[partner].secret_fields},
    )


def accepts(partner: str, attempt: Any) -> bool:
    try:
        layer_keys(partner).try_each(partner, attempt)
    except AuthenticationFailed:
        return False
    return True


def environment(name: str) -> dict[str, str]:
    configuration = boto3.client("lambda").get_function_configuration(FunctionName=name)
    variables: dict[str, str] = configuration["Environment"]["Variables"]
    return variables


def run(script: ModuleType, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = script.main(list(argv), session=boto3.Session())
    captured = capsys.readouterr()
    return status, captured.out + captured.err


# --- infosimples: the key is generated through the registry; an authenticated cipher ---------------------------


def infosimples_token(secret: Mapping[str, str]) -> Any:
    return PROFILES["infosimples"].protection.protect({"cpf": "52998224725"}, secret).payload


def opens(token: Any) -> Any:
    def attempt(fields: Mapping[str, str]) -> Any:
        return PROFILES["infosimples"].protection.reveal(token, fields)

    return attempt


def test_after_the_script_the_old_keys_no_longer_open_and_the_new_key_does(
    script: ModuleType, stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    first = {"encryption_key": "first-passphrase-0123456789abcdef"}
    second = {"encryption_key": "second-passphrase-0123456789abcde"}
    v1 = put("infosimples", first)
    v2 = put("infosimples", second)
    old, older = infosimples_token(second), infosimples_token(first)
    # Without the script, a rotation leaves the previous key accepted: the fallback the script must end.
    assert stages()[PREFIX + "infosimples"] == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    assert accepts("infosimples", opens(older))
    before = {name: environment(name) for name in stack.values()}

    status, output = run(script, capsys, "infosimples", "--stack", STACK)

    assert status == 0, output
    new_secret = current("infosimples")
    assert set(new_secret) == {"encryption_key"}
    assert new_secret["encryption_key"] not in {first["encryption_key"], second["encryption_key"]}
    (v3,) = set(stages()[PREFIX + "infosimples"]) - {v1, v2}
    assert stages()[PREFIX + "infosimples"] == {v1: [], v2: [], v3: ["AWSCURRENT"]}
    assert not accepts("infosimples", opens(old))
    assert not accepts("infosimples", opens(older))
    assert accepts("infosimples", opens(infosimples_token(new_secret)))
    # The functions serving infosimples restart with the rest of their configuration intact; sign does not
    # serve it and is left alone.
    for logical_id in ("EncryptFunction", "ForwardFunction"):
        after = environment(stack[logical_id])
        assert after.pop(script.REVOKED_AT).endswith(v3)
        assert after == before[stack[logical_id]]
    assert environment(stack["SignFunction"]) == before[stack["SignFunction"]]
    (alias,) = boto3.client("lambda").list_aliases(FunctionName=stack["ForwardFunction"])["Aliases"]
    assert alias["FunctionVersion"] == "2"
    published = boto3.client("lambda").get_function_configuration(
        FunctionName=stack["ForwardFunction"], Qualifier="2"
    )
    assert script.REVOKED_AT in published["Environment"]["Variables"]
    # The operator learns where the new key is and what to hand over, never a key.
    assert f"--version-id {v3}" in output
    assert "hand to infosimples: encryption_key" in output
    for value in (*first.values(), *second.values(), *new_secret.values()):
        assert value not in output


# --- dLocal: a public-key cipher and partner-issued signing credentials -----------------------------------------

DLOCAL_OLD = {"x_login": "login-0001", "x_trans_key": "trans-old-9f1c", "secret_key": "secret-old-41aa77c0"}


def dlocal_signs(secret: Mapping[str, str]) -> str:
    """The Authorization header as dLocal computes it (their documented formula)."""
    message = secret["x_login"].encode() + X_DATE.encode() + WEBHOOK_BODY
    return (
        "V2-HMAC-SHA256, Signature: "
        + hmac.new(secret["secret_key"].encode(), message, hashlib.sha256).hexdigest()
    )


def verifies(authorization: str, x_login: str) -> Any:
    headers = {
        "x-date": X_DATE,
        "x-login": x_login,
        "authorization": authorization,
        "content-type": "application/json",
    }
    when = datetime(2025, 11, 22, 8, 41, 30, tzinfo=UTC)

    def attempt(fields: Mapping[str, str]) -> Any:
        webhook = PROFILES["dlocal"].webhook
        assert webhook is not None
        return webhook.verify(fields, headers, WEBHOOK_BODY, now=when)

    return attempt


@pytest.fixture
def dlocal_secret() -> dict[str, str]:
    from sealgate.schemes import lookup

    jwe = lookup("cipher", "jwe")
    public = jwe.keygen(PROFILES["dlocal"].protection.cipher_options)["public_key"]
    return {**DLOCAL_OLD, "jwe_public_key": public}


def test_a_partners_new_credentials_come_from_a_file_and_old_signatures_are_refused(
    script: ModuleType,
    stack: dict[str, str],
    dlocal_secret: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put("dlocal", dlocal_secret)
    values = tmp_path / "dlocal-new.json"
    values.write_text(json.dumps({"x_trans_key": "trans-new-77e2", "secret_key": "secret-new-c0ffee11"}))
    handover = tmp_path / "dlocal-private.json"
    old_signature = dlocal_signs(DLOCAL_OLD)
    assert accepts("dlocal", verifies(old_signature, DLOCAL_OLD["x_login"]))

    status, output = run(
        script,
        capsys,
        *("dlocal", "--stack", STACK, "--values-file", str(values), "--keep", "x_login"),
        *("--partner-keys-out", str(handover)),
    )

    assert status == 0, output
    new_secret = current("dlocal")
    assert new_secret["x_login"] == DLOCAL_OLD["x_login"]
    assert (new_secret["x_trans_key"], new_secret["secret_key"]) == ("trans-new-77e2", "secret-new-c0ffee11")
    assert new_secret["jwe_public_key"] != dlocal_secret["jwe_public_key"]
    assert not accepts("dlocal", verifies(old_signature, DLOCAL_OLD["x_login"]))
    assert accepts("dlocal", verifies(dlocal_signs(new_secret), new_secret["x_login"]))
    # dLocal serves all three functions (it signs and sends webhooks).
    for name in stack.values():
        assert script.REVOKED_AT in environment(name)
    # The private half only the partner keeps is in the new file, readable by its owner only; the secret keeps
    # the public half, which it matches.
    assert stat.S_IMODE(handover.stat().st_mode) == 0o600
    (private,) = json.loads(handover.read_text()).values()
    from jwcrypto import jwk

    assert (
        jwk.JWK.from_pem(private.encode()).export_public()
        == jwk.JWK.from_pem(new_secret["jwe_public_key"].encode()).export_public()
    )
    assert str(handover) in output
    for value in (*dlocal_secret.values(), *new_secret.values(), private):
        assert value not in output


# --- refusals change nothing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "values", "reason"),
    [
        ((), None, "no new value for x_login, x_trans_key, secret_key"),
        (
            ("--keep", "x_login"),
            {"x_trans_key": "t", "secret_key": "s", "card": "4111111111111111"},
            "'card' is not a field",
        ),
        (
            ("--keep", "x_login", "--keep", "secret_key"),
            {"x_trans_key": "t", "secret_key": "s"},
            "both supplied and kept",
        ),
        (
            ("--keep", "x_login"),
            {"x_trans_key": "t", "secret_key": "secret-old-41aa77c0"},
            "equals the current one",
        ),
        (("--keep", "x_login"), {"x_trans_key": "t", "secret_key": "s"}, "pass --partner-keys-out"),
    ],
)
def test_a_refused_request_changes_nothing(
    script: ModuleType,
    stack: dict[str, str],
    dlocal_secret: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    values: dict[str, str] | None,
    reason: str,
) -> None:
    put("dlocal", dlocal_secret)
    before = (stages(), {name: environment(name) for name in stack.values()})
    argv = ["dlocal", "--stack", STACK, *extra]
    if values is not None:
        (tmp_path / "values.json").write_text(json.dumps(values))
        argv += ["--values-file", str(tmp_path / "values.json")]

    status, output = run(script, capsys, *argv)

    assert status == 2
    assert "refused, nothing changed" in output
    assert reason in output
    assert (stages(), {name: environment(name) for name in stack.values()}) == before
    for value in dlocal_secret.values():
        assert value not in output
    assert "4111111111111111" not in output


def test_an_unknown_partner_is_refused(
    script: ModuleType, stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, output = run(script, capsys, "acme", "--stack", STACK)
    assert status == 2
    assert "no partner 'acme'" in output


def test_a_dry_run_says_what_would_change_and_changes_nothing(
    script: ModuleType, stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    old = {"key": "k" * 32, "iv": "i" * 16, "api_key": "api-old", "asset_id": "asset-1"}
    put("netcore", old)
    before = (stages(), {name: environment(name) for name in stack.values()})

    status, output = run(
        script,
        capsys,
        "netcore",
        "--stack",
        STACK,
        "--keep",
        "asset_id",
        "--keep",
        "api_key",
        "--dry-run",
        "--json",
    )

    assert status == 0, output
    report = json.loads(output)
    assert report["dry_run"] is True
    # Netcore's key and IV are generated (the customer registers them with Netcore); the rest as asked.
    assert (sorted(report["generated"]), sorted(report["kept"])) == (["iv", "key"], ["api_key", "asset_id"])
    assert sorted(report["functions"]) == sorted(stack.values())
    assert (stages(), {name: environment(name) for name in stack.values()}) == before
    for value in old.values():
        assert value not in output
