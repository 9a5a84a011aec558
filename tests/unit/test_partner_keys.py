"""PartnerSecrets against moto's Secrets Manager: cold start, served partners only, rotation, malformed secrets.

Every secret value here is a throwaway test key. GetSecretValue calls are counted at the botocore client, so
the tests see exactly which secret and which version stage each fetch asked for.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from sealgate.errors import BadToken, KeysUnavailable, SignatureMismatch, UnknownPartner
from sealgate.partner_keys import PartnerSecrets
from sealgate.schemes import dlocal_v2
from sealgate.settings import Settings

PREFIX = "sealgate/test/"
SECRETS: dict[str, dict[str, str]] = {  # throwaway test keys
    "infosimples": {"encryption_key": "THROWAWAY-infosimples-encryption-key"},
    "netcore": {
        "key": "THROWAWAY" + "ab" * 12,
        "iv": "THROWAWAY-iv-0001",
        "api_key": "THROWAWAY-netcore-api",
        "asset_id": "THROWAWAY-asset",
    },
    "paykun": {
        "encryption_key": "THROWAWAY-paykun-encryption-key",
        "merchant_id": "THROWAWAY-merchant",
        "access_token": "THROWAWAY-paykun-token",
    },
    "dlocal": {
        "x_login": "THROWAWAY-login",
        "x_trans_key": "THROWAWAY-trans-key",
        "secret_key": "THROWAWAY-dlocal-secret-K1",
        "jwe_public_key": "THROWAWAY-not-a-real-pem",
    },
}
REQUIRED = {
    "infosimples": ("encryption_key",),
    "netcore": ("key", "iv", "api_key", "asset_id"),
    "paykun": ("encryption_key", "merchant_id", "access_token"),
    "dlocal": ("x_login", "x_trans_key", "secret_key"),
}
X_DATE = "2024-05-01T12:00:00.000Z"
BODY = b'{"id":"notification-1"}'


class Clock:
    """Injected monotonic clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Dummy credentials and region; no real profile, endpoint or Powertools cache setting leaks in."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("POWERTOOLS_PARAMETERS_MAX_AGE", raising=False)


@pytest.fixture
def sm() -> Iterator[Any]:
    """A Secrets Manager client on moto, with every partner's secret created."""
    with mock_aws():
        client = boto3.client("secretsmanager")
        for partner, value in SECRETS.items():
            client.create_secret(Name=PREFIX + partner, SecretString=json.dumps(value))
        yield client


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(SecretId, VersionStage) of every GetSecretValue call made from now on."""
    seen: list[tuple[str, str]] = []
    original = BaseClient._make_api_call

    def counting(self: BaseClient, operation: str, params: Mapping[str, Any]) -> Any:
        if operation == "GetSecretValue":
            seen.append((params["SecretId"], params.get("VersionStage", "AWSCURRENT")))
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return seen


def make(partners: list[str], **options: Any) -> PartnerSecrets:
    return PartnerSecrets(partners, prefix=PREFIX, required=REQUIRED, **options)


def partner_signs(secret_key: str) -> str:
    """An Authorization header as dLocal computes it (their documented formula, not our module)."""
    message = SECRETS["dlocal"]["x_login"].encode() + X_DATE.encode() + BODY
    return "V2-HMAC-SHA256, Signature: " + hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def verifier(presented: str) -> Callable[[Mapping[str, str]], str]:
    def attempt(fields: Mapping[str, str]) -> str:
        dlocal_v2.verify(fields["secret_key"], fields["x_login"], X_DATE, BODY, presented)
        return fields["secret_key"]

    return attempt


def rotate(sm: Any, partner: str, **changes: str) -> None:
    """Put a new AWSCURRENT; the old one becomes AWSPREVIOUS."""
    sm.put_secret_value(SecretId=PREFIX + partner, SecretString=json.dumps({**SECRETS[partner], **changes}))


def chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def assert_no_secret_in(text: str) -> None:
    assert "THROWAWAY" not in text


# --- cold start and served partners ------------------------------------------------------------------------


def test_load_fetches_awscurrent_of_each_served_partner_once(sm: Any, fetches: list[tuple[str, str]]) -> None:
    secrets = make(["infosimples", "netcore", "paykun"])
    assert not secrets.ready

    secrets.load()

    assert secrets.ready
    assert secrets.load_failures == 0
    assert sorted(fetches) == [
        (PREFIX + "infosimples", "AWSCURRENT"),
        (PREFIX + "netcore", "AWSCURRENT"),
        (PREFIX + "paykun", "AWSCURRENT"),
    ]
    for partner in ("infosimples", "netcore", "paykun"):
        assert dict(secrets.current(partner)) == SECRETS[partner]
    assert len(fetches) == 3, "current() after load() is served from the cache"


def test_partner_not_served_is_refused_without_fetching_its_secret(
    sm: Any, fetches: list[tuple[str, str]]
) -> None:
    secrets = make(["netcore"])
    secrets.load()

    with pytest.raises(UnknownPartner):
        secrets.current("dlocal")
    with pytest.raises(UnknownPartner):
        secrets.try_each("dlocal", verifier(partner_signs(SECRETS["dlocal"]["secret_key"])))
    with pytest.raises(UnknownPartner):
        secrets.current("../dlocal")

    assert {secret_id for secret_id, _ in fetches} == {PREFIX + "netcore"}


def test_secret_name_carries_the_prefix() -> None:
    assert make(["paykun"]).secret_name("paykun") == "sealgate/test/paykun"


def test_secret_returned_is_read_only(sm: Any) -> None:
    fields = make(["paykun"]).current("paykun")
    with pytest.raises(TypeError):
        fields["merchant_id"] = "other"  # type: ignore[index]


def test_missing_secret_is_recorded_then_retried_on_the_next_call(sm: Any, fetches: list[Any]) -> None:
    sm.delete_secret(SecretId=PREFIX + "paykun", ForceDeleteWithoutRecovery=True)
    secrets = make(["netcore", "paykun"])

    secrets.load()

    assert not secrets.ready
    assert secrets.load_failures == 1
    with pytest.raises(KeysUnavailable, match=r"'paykun'.*ResourceNotFoundException"):
        secrets.current("paykun")
    assert secrets.load_failures == 2
    assert dict(secrets.current("netcore")) == SECRETS["netcore"]

    sm.create_secret(Name=PREFIX + "paykun", SecretString=json.dumps(SECRETS["paykun"]))
    assert dict(secrets.current("paykun")) == SECRETS["paykun"]
    assert secrets.ready
    secrets.load()
    assert fetches.count((PREFIX + "netcore", "AWSCURRENT")) == 1, "load() again fetches only what is missing"


# --- rotation ----------------------------------------------------------------------------------------------


def test_current_returns_the_rotated_value_once_max_age_has_passed(sm: Any) -> None:
    secrets = make(["dlocal"], max_age=1)
    assert secrets.current("dlocal")["secret_key"] == SECRETS["dlocal"]["secret_key"]

    rotate(sm, "dlocal", secret_key="THROWAWAY-dlocal-secret-K2")
    assert secrets.current("dlocal")["secret_key"] == SECRETS["dlocal"]["secret_key"], "still cached"

    time.sleep(1.1)
    assert secrets.current("dlocal")["secret_key"] == "THROWAWAY-dlocal-secret-K2"


def test_token_under_the_previous_key_is_accepted_without_refetch(sm: Any, fetches: list[Any]) -> None:
    rotate(sm, "dlocal", secret_key="THROWAWAY-dlocal-secret-K2")
    secrets = make(["dlocal"])

    accepted_with = secrets.try_each("dlocal", verifier(partner_signs(SECRETS["dlocal"]["secret_key"])))

    assert accepted_with == SECRETS["dlocal"]["secret_key"]
    assert fetches == [(PREFIX + "dlocal", "AWSCURRENT"), (PREFIX + "dlocal", "AWSPREVIOUS")]
    assert secrets.current("dlocal")["secret_key"] == "THROWAWAY-dlocal-secret-K2", (
        "outbound keeps AWSCURRENT"
    )


def test_token_under_a_key_rotated_after_cold_start_is_accepted_after_one_refetch(
    sm: Any, fetches: list[Any]
) -> None:
    secrets = make(["dlocal"])
    secrets.load()
    rotate(sm, "dlocal", secret_key="THROWAWAY-dlocal-secret-K2")

    accepted_with = secrets.try_each("dlocal", verifier(partner_signs("THROWAWAY-dlocal-secret-K2")))

    assert accepted_with == "THROWAWAY-dlocal-secret-K2"
    assert fetches == [
        (PREFIX + "dlocal", "AWSCURRENT"),  # load
        (PREFIX + "dlocal", "AWSPREVIOUS"),  # K1 again: not attempted twice
        (PREFIX + "dlocal", "AWSCURRENT"),  # forced refetch: K2 authenticates, AWSPREVIOUS not needed
    ]
    assert secrets.current("dlocal")["secret_key"] == "THROWAWAY-dlocal-secret-K2", "refetch serves outbound"


def test_token_under_no_known_key_is_refused_with_the_last_failure_and_refetch_is_rate_limited(
    sm: Any, fetches: list[Any]
) -> None:
    rotate(sm, "dlocal", secret_key="THROWAWAY-dlocal-secret-K2")
    clock = Clock()
    secrets = make(["dlocal"], refetch_interval=30.0, clock=clock)
    forged = verifier(partner_signs("THROWAWAY-never-issued"))

    with pytest.raises(SignatureMismatch):
        secrets.try_each("dlocal", forged)
    assert len(fetches) == 4, "AWSCURRENT, AWSPREVIOUS, then both refetched once"

    clock.now += 29.0
    with pytest.raises(SignatureMismatch):
        secrets.try_each("dlocal", forged)
    assert len(fetches) == 4, "within refetch_interval: cached versions only"

    clock.now += 1.0
    with pytest.raises(SignatureMismatch):
        secrets.try_each("dlocal", forged)
    assert fetches[4:] == [(PREFIX + "dlocal", "AWSCURRENT"), (PREFIX + "dlocal", "AWSPREVIOUS")]


def test_before_the_first_rotation_absent_awsprevious_is_remembered(sm: Any, fetches: list[Any]) -> None:
    clock = Clock()
    secrets = make(["dlocal"], clock=clock)
    forged = verifier(partner_signs("THROWAWAY-never-issued"))

    with pytest.raises(SignatureMismatch):
        secrets.try_each("dlocal", forged)
    with pytest.raises(SignatureMismatch):
        secrets.try_each("dlocal", forged)

    previous = [f for f in fetches if f[1] == "AWSPREVIOUS"]
    assert len(previous) == 2, "asked once, then once more by the forced refetch; not on the second token"
    assert secrets.load_failures == 0, "no AWSPREVIOUS before the first rotation is normal, not a failure"
    assert secrets.ready


def test_non_authentication_error_propagates_at_once(sm: Any, fetches: list[Any]) -> None:
    secrets = make(["dlocal"])

    with pytest.raises(BadToken):
        secrets.try_each("dlocal", verifier("Bearer something-else"))

    assert fetches == [(PREFIX + "dlocal", "AWSCURRENT")]


def test_awsprevious_that_cannot_be_fetched_is_unavailable_not_a_verdict(sm: Any) -> None:
    secrets = make(["dlocal"])
    secrets.load()
    sm.delete_secret(SecretId=PREFIX + "dlocal", RecoveryWindowInDays=7)

    with pytest.raises(KeysUnavailable, match="'dlocal'"):
        secrets.try_each("dlocal", verifier(partner_signs("THROWAWAY-never-issued")))


# --- malformed secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("THROWAWAY not json", "is not a JSON object"),
        ('["THROWAWAY-in-a-list"]', "is not a JSON object"),
        ('"THROWAWAY-bare-string"', "is not a JSON object"),
        ('{"key": 12345, "iv": "THROWAWAY-iv"}', "field 'key' is not a string"),
        ('{"THROWAWAY-stray": 1}', "a field is not a string"),
        ('{"key": "THROWAWAY-k", "iv": ""}', "lacks field(s) 'api_key', 'asset_id', 'iv'"),
        ("{}", "lacks field(s) 'api_key', 'asset_id', 'iv', 'key'"),
    ],
)
def test_malformed_secret_is_unavailable_naming_partner_and_field_only(
    sm: Any, stored: str, expected: str
) -> None:
    sm.put_secret_value(SecretId=PREFIX + "netcore", SecretString=stored)
    secrets = make(["netcore"])

    secrets.load()
    assert not secrets.ready
    with pytest.raises(KeysUnavailable) as caught:
        secrets.current("netcore")

    assert "'netcore'" in caught.value.message
    assert expected in caught.value.message
    for exc in chain(caught.value):
        assert_no_secret_in(f"{exc!s} {exc!r} {exc.args!r}")


def test_secret_binary_that_is_not_utf8_is_unavailable(sm: Any) -> None:
    sm.put_secret_value(SecretId=PREFIX + "netcore", SecretBinary=b"\xffTHROWAWAY\xfe")
    secrets = make(["netcore"])

    with pytest.raises(KeysUnavailable, match="not a JSON object") as caught:
        secrets.current("netcore")

    assert list(chain(caught.value)) == [caught.value], "no decoder error holding the bytes is chained"


def test_malformed_value_served_from_cache_is_counted_once(sm: Any) -> None:
    sm.put_secret_value(SecretId=PREFIX + "netcore", SecretString='{"key": "THROWAWAY-only-key"}')
    secrets = make(["netcore"])

    secrets.load()
    for _ in range(3):
        with pytest.raises(KeysUnavailable):
            secrets.current("netcore")

    assert secrets.load_failures == 1


def test_reprs_name_fields_never_values(sm: Any) -> None:
    secrets = make(["netcore", "dlocal"])
    secrets.load()
    fields = secrets.current("netcore")

    for text in (repr(fields), str(fields), repr(secrets), str(secrets)):
        assert_no_secret_in(text)
    assert (
        repr(fields)
        == f"SecretFields(fields=['api_key', 'asset_id', 'iv', 'key'], version_id={fields.version_id!r})"
    )
    assert fields.version_id  # Secrets Manager's VersionId: names a version, holds no value
    with pytest.raises(SignatureMismatch) as caught:
        secrets.try_each("dlocal", verifier(partner_signs("THROWAWAY-never-issued")))
    for exc in chain(caught.value):
        assert_no_secret_in(f"{exc!s} {exc!r}")


FIELD_NAMES = st.sampled_from(["key", "iv", "api_key", "asset_id", "other"])
MARKED = st.text(max_size=8).map(lambda s: "THROWAWAY" + s)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | MARKED,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELD_NAMES, inner, max_size=3),
    max_leaves=6,
)
STORED = st.dictionaries(FIELD_NAMES, MARKED | st.just(""), max_size=5) | JSON_VALUES
_names = itertools.count()


@pytest.fixture
def many(sm: Any) -> PartnerSecrets:
    """One instance (one client) serving enough partners for one secret per hypothesis example."""
    partners = [f"p{i}" for i in range(1000)]
    return PartnerSecrets(partners, prefix=PREFIX, required=dict.fromkeys(partners, ("key", "iv")))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=STORED)
def test_any_stored_json_is_served_exactly_or_refused_without_its_values(
    sm: Any, many: PartnerSecrets, stored: object
) -> None:
    partner = f"p{next(_names) % 1000}"
    sm.create_secret(Name=PREFIX + partner, SecretString=json.dumps(stored))

    usable = (
        isinstance(stored, dict)
        and all(isinstance(v, str) for v in stored.values())
        and all(stored.get(field) for field in ("key", "iv"))
    )
    if usable:
        assert dict(many.current(partner)) == stored
        return
    with pytest.raises(KeysUnavailable) as caught:
        many.current(partner)
    for exc in chain(caught.value):
        assert_no_secret_in(f"{exc!s} {exc!r} {exc.args!r}")


# --- configuration -----------------------------------------------------------------------------------------


def test_from_settings_reads_prefix_and_max_age(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALGATE_SECRET_PREFIX", "sealgate/dev/")
    monkeypatch.setenv("SEALGATE_SECRETS_MAX_AGE", "60")

    secrets = PartnerSecrets.from_settings(Settings.from_environment(), ["netcore", "paykun"], REQUIRED)

    assert secrets.partners == frozenset({"netcore", "paykun"})
    assert secrets.secret_name("netcore") == "sealgate/dev/netcore"
    assert secrets.max_age == 60


def test_from_settings_defaults_max_age(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALGATE_SECRET_PREFIX", "sealgate/dev/")
    monkeypatch.delenv("SEALGATE_SECRETS_MAX_AGE", raising=False)

    assert PartnerSecrets.from_settings(Settings.from_environment(), ["netcore"]).max_age == 300


@pytest.mark.parametrize(
    ("prefix", "max_age", "message"),
    [
        ("", "60", "SEALGATE_SECRET_PREFIX"),
        ("sealgate/dev/", "-1", "SEALGATE_SECRETS_MAX_AGE"),
        ("sealgate/dev/", "five", "SEALGATE_SECRETS_MAX_AGE"),
    ],
)
def test_from_settings_refuses_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, prefix: str, max_age: str, message: str
) -> None:
    monkeypatch.setenv("SEALGATE_SECRET_PREFIX", prefix)
    monkeypatch.setenv("SEALGATE_SECRETS_MAX_AGE", max_age)

    with pytest.raises(KeysUnavailable, match=message):
        PartnerSecrets.from_settings(Settings.from_environment(), ["netcore"])


@pytest.mark.parametrize("partners", [[""], [" netcore"]])
def test_blank_partner_names_are_refused(partners: list[str]) -> None:
    with pytest.raises(ValueError, match="partner names"):
        PartnerSecrets(partners, prefix=PREFIX)
