"""``python -m sealgate_local generate [--check]`` (``make generate``): what follows from the partner profiles.

Which partners each function serves follows from the profiles (:func:`sealgate.partners.served_by`). From them
this writes:

- in ``template.yaml``, between ``# BEGIN generated from partner profiles (<function>): make generate`` and
  ``# END generated``, one ``AWSSecretsManagerGetSecretValuePolicy`` per partner the function serves, so that its
  role reads those partners' secrets and no others. CloudFormation cannot map over a list to build ARNs, hence
  text: the lines between the markers are replaced, everything else stays byte for byte.
- ``events/*.json``: API Gateway (REST proxy) and SQS events as Lambda receives them (``sam local invoke -e``,
  the tests), from each profile's ``example`` (see ``profile.schema.json``): ``encrypt-``, ``decrypt-`` and
  ``forward-enqueue-<partner>`` for every partner, ``sign-<partner>`` for the partners the sign function serves,
  ``webhook-<partner>`` for those with a webhook, one ``forward-status`` and one ``sqs-forward-batch``. An event
  file no profile accounts for any more is removed.
- ``openapi.json``: the API's OpenAPI document, from the functions' routes and the template's API events
  (:mod:`sealgate_local.openapi`; it does not depend on the profiles).
- ``sealgate/partners/profile_check.py``: the check of ``profile.schema.json`` as Python source
  (:func:`sealgate.partners.schema.check_module_text`), so that no cold start compiles the schema.

Everything in an event is fixed or a digest of its route and partner (ids, trace ids, fake SigV4 signatures),
except the tokens of the decrypt and sign events: they protect the example under a throwaway key that is thrown
away at once, so they only show the shape. A token is kept as long as the shape around it (the layout, every
value that is not a token) is unchanged: regenerating changes nothing unless a profile did.

``--check`` writes nothing and exits 1, listing what is stale. Extra profiles come from ``--profiles-dir`` or
``SEALGATE_PROFILES_DIR``, as the functions and the local stack read them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import typing
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sealgate.errors import SealgateError
from sealgate.partners import Function, Profile, load_profiles, schema, served_by
from sealgate_local import openapi
from sealgate_local.aws_stack import PROFILES_DIR_VARIABLE, throwaway_keys

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
PROFILE_CHECK = ROOT / "layers" / "crypto" / "sealgate" / "partners" / schema.CHECK_MODULE
FUNCTIONS: tuple[Function, ...] = typing.get_args(Function)

BEGIN = re.compile(
    r"(?P<indent> *)# BEGIN generated from partner profiles \((?P<function>\w+)\): make generate\n?"
)
END = "# END generated"
GET_VALUE_POLICY = (
    "{indent}- AWSSecretsManagerGetSecretValuePolicy:\n"
    "{indent}    SecretArn: !Sub arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}"
    ":secret:sealgate/${{Stage}}/{partner}-??????\n"
)

# --- what every event shares: one API, one caller, one moment (all fictitious) ---------------------------------

ACCOUNT = "123456789012"
REGION = "us-east-1"
STAGE = "dev"
API_ID = "a1b2c3d4e5"
HOST = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
WHEN = datetime(2025, 11, 22, 8, 41, 12, tzinfo=UTC)
CALLER_IP = "10.20.31.47"
CALLER_AGENT = "Boto3/1.35.90 md/Botocore#1.35.90 ua/2.0 os/linux lang/python#3.13.0"
CALLER_ROLE_ID = "AROA3EXAMPLEROLEID7Q:orders-service"
CALLER_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/orders-service-role/orders-service"
CALLER_ACCESS_KEY = "ASIA3EXAMPLEKEY7QXYZ"
SECURITY_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampletokenEXAMPLE=="  # noqa: S105 - fictitious, shaped like an STS session token
PARTNER_IP = "198.51.100.23"  # TEST-NET-2
OUTBOUND_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:sealgate-{STAGE}-OutboundQueue-Xq3e9LmT0aBc"
FORWARD_SENDER = "AROA3EXAMPLEROLEID7Q:sealgate-dev-ForwardFunction-k2J8sQ0xYw1Z"
MAX_BATCH = 10  # SQS hands Lambda at most 10 records (the template's BatchSize)
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://sealgate.invalid/events")


class GenerateError(ValueError):
    """The template's markers or a profile's example do not allow generating (the message says where)."""


@dataclass(frozen=True)
class Change:
    """A file whose content no longer follows from the profiles: ``text`` is what it should be (None: remove it)."""

    path: Path
    text: str | None

    def describe(self, root: Path, *, done: bool) -> str:
        name = self.path.relative_to(root) if self.path.is_relative_to(root) else self.path
        if self.text is None:
            return f"{name}: {'removed' if done else 'stale'} (no profile accounts for it)"
        return f"{name}: {'written' if done else 'stale'}"


# --- template.yaml --------------------------------------------------------------------------------------------


def template_text(current: str, profiles: Mapping[str, Profile]) -> str:
    """``current`` (template.yaml's text) with every marked block holding the secret policies of the partners its
    function serves; every line outside the markers as it was."""
    lines = current.splitlines(keepends=True)
    out: list[str] = []
    seen: set[str] = set()
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        begin = BEGIN.fullmatch(line)
        if begin is None:
            if line.strip() == END:
                raise GenerateError(f"template.yaml line {index + 1}: {END!r} without a BEGIN line")
            index += 1
            continue
        function = begin["function"]
        if function not in FUNCTIONS:
            raise GenerateError(
                f"template.yaml line {index + 1}: unknown function {function!r} (one of {', '.join(FUNCTIONS)})"
            )
        if function in seen:
            raise GenerateError(f"template.yaml line {index + 1}: a second block for {function!r}")
        seen.add(function)
        end = index + 1
        while end < len(lines) and lines[end].strip() != END:
            if BEGIN.fullmatch(lines[end]):
                raise GenerateError(
                    f"template.yaml line {end + 1}: BEGIN inside the block of line {index + 1}"
                )
            end += 1
        if end == len(lines):
            raise GenerateError(f"template.yaml line {index + 1}: no {END!r} line after it")
        served = served_by(typing.cast("Function", function), profiles)
        out.extend(GET_VALUE_POLICY.format(indent=begin["indent"], partner=partner) for partner in served)
        out.append(lines[end])
        index = end + 1
    missing = [function for function in FUNCTIONS if function not in seen]
    if missing:
        raise GenerateError(f"template.yaml has no generated block for {', '.join(missing)}")
    return "".join(out)


# --- events/ ----------------------------------------------------------------------------------------------------


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\n".join(("sealgate-events", *parts)).encode("utf-8")).digest()


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _identity(*, iam: bool, agent: str, source_ip: str) -> dict[str, Any]:
    return {
        "cognitoIdentityPoolId": None,
        "accountId": ACCOUNT if iam else None,
        "cognitoIdentityId": None,
        "caller": CALLER_ROLE_ID if iam else None,
        "sourceIp": source_ip,
        "principalOrgId": "o-exampleorgid" if iam else None,
        "accessKey": CALLER_ACCESS_KEY if iam else None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": CALLER_ARN if iam else None,
        "userAgent": agent,
        "user": CALLER_ROLE_ID if iam else None,
    }


def api_event(
    method: str,
    resource: str,
    parameters: Mapping[str, str],
    body: str | None,
    *,
    partner_headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event for ``resource`` with ``parameters`` (its path variables).

    Without ``partner_headers`` the caller is an internal service signing with SigV4 (the IAM routes); with them,
    a partner calling the public webhook route with its own headers (``User-Agent`` and ``Content-Type``
    among them, if it sends them).
    """
    path = resource
    for name, value in parameters.items():
        path = path.replace(f"{{{name}}}", value)
    seed = _digest(method, path)
    iam = partner_headers is None
    extra = dict(partner_headers or {})
    agent = CALLER_AGENT if iam else extra.pop("User-Agent", "partner-webhook/1.0")
    content_type = extra.pop("Content-Type", "application/json")
    headers = {
        "Host": HOST,
        "X-Amzn-Trace-Id": f"Root=1-{int(WHEN.timestamp()):08x}-{seed[:12].hex()}",
        "X-Forwarded-For": CALLER_IP if iam else PARTNER_IP,
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        "User-Agent": agent,
    }
    if body is not None:
        headers["Content-Type"] = content_type
    if iam:
        signed = ("content-type;" if body is not None else "") + "host;x-amz-date;x-amz-security-token"
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={CALLER_ACCESS_KEY}/{WHEN:%Y%m%d}/{REGION}/execute-api/aws4_request, "
            f"SignedHeaders={signed}, Signature={hashlib.sha256(seed).hexdigest()}"
        )
        headers["X-Amz-Date"] = f"{WHEN:%Y%m%dT%H%M%SZ}"
        headers["X-Amz-Security-Token"] = SECURITY_TOKEN
    headers.update(extra)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": dict(parameters),
        "stageVariables": None,
        "requestContext": {
            "resourceId": _digest(resource)[:3].hex(),
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": base64.b64encode(seed[12:24]).decode("ascii"),
            "requestTime": f"{WHEN:%d/%b/%Y:%H:%M:%S %z}",
            "path": f"/{STAGE}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": API_ID,
            "requestTimeEpoch": int(WHEN.timestamp()) * 1000,
            "requestId": _uuid("request", method, path),
            "identity": _identity(iam=iam, agent=agent, source_ip=CALLER_IP if iam else PARTNER_IP),
            "domainName": HOST,
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _sqs_record(index: int, body: str) -> dict[str, Any]:
    seed = _digest("sqs", str(index), body)
    sent = int(WHEN.timestamp()) * 1000 + 37 * index
    return {
        "messageId": _uuid("message", str(index), body),
        "receiptHandle": "AQEB" + base64.b64encode(seed * 3).decode("ascii"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(sent),
            "SenderId": FORWARD_SENDER,
            "ApproximateFirstReceiveTimestamp": str(sent + 150),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": OUTBOUND_QUEUE_ARN,
        "awsRegion": REGION,
    }


@dataclass(frozen=True)
class Example:
    """A profile's ``example``, checked against the profile."""

    payload: Any
    operation: str
    webhook_headers: Mapping[str, str] | None
    webhook_body: Any

    @classmethod
    def of(cls, profile: Profile, document: Mapping[str, Any]) -> Example:
        where = f"profile {profile.name}"
        example = document.get("example")
        if not isinstance(example, Mapping):
            raise GenerateError(
                f'{where} has no "example": events/ are made from it (see profile.schema.json)'
            )
        operation = example.get("operation", next(iter(profile.operations)))
        if operation not in profile.operations:
            raise GenerateError(f"{where}: example operation {operation!r} is not one of its operations")
        webhook = example.get("webhook")
        if profile.webhook is not None and not isinstance(webhook, Mapping):
            raise GenerateError(f'{where} has a webhook: its example needs "webhook" (headers and body)')
        return cls(
            payload=example["payload"],
            operation=str(operation),
            webhook_headers=dict(webhook["headers"]) if isinstance(webhook, Mapping) else None,
            webhook_body=webhook["body"] if isinstance(webhook, Mapping) else None,
        )


def profile_documents(
    names: Iterable[str], extra_dirs: Sequence[str | Path] = ()
) -> dict[str, dict[str, Any]]:
    """The JSON document of each named profile, from ``extra_dirs`` or the layer's own profiles (where
    :func:`sealgate.partners.load_profiles` found it: names are unique across both)."""
    shipped = resources.files("sealgate.partners").joinpath("profiles")
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        candidates = [Path(folder) / f"{name}.json" for folder in extra_dirs]
        text = next((c.read_text(encoding="utf-8") for c in candidates if c.is_file()), None)
        if text is None:
            text = shipped.joinpath(f"{name}.json").read_text(encoding="utf-8")
        found[name] = json.loads(text)
    return found


def _same_shape(previous: Any, one: Any, two: Any) -> bool:
    """Whether ``previous`` matches ``one`` everywhere except where ``one`` and ``two`` hold different strings
    (the tokens of two protections under different keys), where it holds a string too."""
    if isinstance(one, str) and isinstance(two, str) and one != two:
        return isinstance(previous, str)
    if isinstance(one, dict) and isinstance(two, dict):
        return (
            isinstance(previous, dict)
            and set(previous) == set(one) == set(two)
            and all(_same_shape(previous[key], one[key], two[key]) for key in one)
        )
    if isinstance(one, list) and isinstance(two, list):
        return (
            isinstance(previous, list)
            and len(previous) == len(one) == len(two)
            and all(_same_shape(p, o, t) for p, o, t in zip(previous, one, two, strict=True))
        )
    return bool(previous == one and type(previous) is type(one))


def protected_example(profile: Profile, payload: Any, previous: Any = None) -> Any:
    """``payload`` protected the partner's way under a throwaway key (thrown away); ``previous`` instead when it
    has the same shape (see :func:`_same_shape`)."""
    try:
        one, two = (profile.protection.protect(payload, throwaway_keys(profile)[0]).payload for _ in range(2))
    except (SealgateError, ValueError, TypeError, KeyError) as error:
        raise GenerateError(
            f"profile {profile.name}: its example payload cannot be protected ({error})"
        ) from None
    return previous if previous is not None and _same_shape(previous, one, two) else one


def _exact_body(profile: Profile, protected: Any) -> str:
    """The body the forward function would send for ``protected`` (what a caller asks the sign route to sign)."""
    if profile.body_format == "form" and isinstance(protected, dict):
        return urlencode({key: str(value) for key, value in protected.items()})
    return _compact(protected)


def _previous_payload(events_dir: Path, name: str) -> Any:
    """The protected payload of an existing decrypt event, if there is one that parses."""
    try:
        event = json.loads((events_dir / name).read_text(encoding="utf-8"))
        return json.loads(event["body"])["payload"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def event_files(
    profiles: Mapping[str, Profile], documents: Mapping[str, Mapping[str, Any]], events_dir: Path = EVENTS
) -> dict[str, str]:
    """File name -> text of every event the profiles call for (``events_dir`` only lends existing tokens)."""
    examples = {name: Example.of(profile, documents[name]) for name, profile in profiles.items()}
    files: dict[str, Any] = {}
    keys = {name: _uuid("idempotency", name) for name in profiles}
    protected = {
        name: protected_example(
            profile, examples[name].payload, _previous_payload(events_dir, f"decrypt-{name}.json")
        )
        for name, profile in profiles.items()
    }
    for name in served_by("encrypt", profiles):
        files[f"encrypt-{name}.json"] = api_event(
            "POST", "/v1/encrypt/{partner}", {"partner": name}, _compact({"payload": examples[name].payload})
        )
        files[f"decrypt-{name}.json"] = api_event(
            "POST", "/v1/decrypt/{partner}", {"partner": name}, _compact({"payload": protected[name]})
        )
    for name, profile in served_by("sign", profiles).items():
        request = {"body": _exact_body(profile, protected[name]), "idempotency_key": keys[name]}
        files[f"sign-{name}.json"] = api_event(
            "POST", "/v1/sign/{partner}", {"partner": name}, _compact(request)
        )
        example = examples[name]
        if profile.webhook is not None and example.webhook_headers is not None:
            raw = example.webhook_body
            files[f"webhook-{name}.json"] = api_event(
                "POST",
                "/v1/webhooks/{partner}",
                {"partner": name},
                raw if isinstance(raw, str) else _compact(raw),
                partner_headers=example.webhook_headers,
            )
    forwarded = served_by("forward", profiles)
    messages = {
        name: {
            "operation": examples[name].operation,
            "payload": examples[name].payload,
            "idempotency_key": keys[name],
        }
        for name in forwarded
    }
    for name, message in messages.items():
        files[f"forward-enqueue-{name}.json"] = api_event(
            "POST", "/v1/forward/{target}", {"target": name}, _compact(message)
        )
    if messages:
        # Any outcome id reads the same way: 32 hex digits, as the enqueue route answers them.
        outcome_id = _digest("outcome")[:16].hex()
        files["forward-status.json"] = api_event("GET", "/v1/forward/{target}", {"target": outcome_id}, None)
        batch = [_compact({"partner": name, **message}) for name, message in messages.items()][:MAX_BATCH]
        files["sqs-forward-batch.json"] = {"Records": [_sqs_record(i, body) for i, body in enumerate(batch)]}
    return {name: json.dumps(event, indent=2) + "\n" for name, event in sorted(files.items())}


# --- plan, write, check ---------------------------------------------------------------------------------------


def plan(
    extra_dirs: Sequence[str | Path] = (),
    *,
    template: Path = TEMPLATE,
    events_dir: Path = EVENTS,
    openapi_path: Path = openapi.OPENAPI,
) -> list[Change]:
    """Every file that does not follow from the profiles (shipped ones plus ``extra_dirs``) or the routes as it
    should."""
    profiles = load_profiles(extra_dirs)
    documents = profile_documents(profiles, extra_dirs)
    changes: list[Change] = []
    current = template.read_text(encoding="utf-8")
    wanted = template_text(current, profiles)
    if wanted != current:
        changes.append(Change(template, wanted))
    files = event_files(profiles, documents, events_dir)
    for name, text in files.items():
        path = events_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            changes.append(Change(path, text))
    changes.extend(Change(path, None) for path in sorted(events_dir.glob("*.json")) if path.name not in files)
    try:
        document = openapi.text(openapi.generated(template))
    except openapi.OpenApiError as error:
        raise GenerateError(str(error)) from None
    if not openapi_path.is_file() or openapi_path.read_text(encoding="utf-8") != document:
        changes.append(Change(openapi_path, document))
    validator = schema.check_module_text()
    if not PROFILE_CHECK.is_file() or PROFILE_CHECK.read_text(encoding="utf-8") != validator:
        changes.append(Change(PROFILE_CHECK, validator))
    return changes


def apply(changes: Iterable[Change]) -> None:
    for change in changes:
        if change.text is None:
            change.path.unlink()
        else:
            change.path.parent.mkdir(parents=True, exist_ok=True)
            change.path.write_text(change.text, encoding="utf-8")


def main(*, check: bool, profiles_dir: str | None = None) -> int:
    """Write what follows from the profiles (or, with ``check``, list what is stale and exit 1)."""
    folder = profiles_dir or os.environ.get(PROFILES_DIR_VARIABLE) or None
    extra_dirs = (folder,) if folder else ()
    try:
        changes = plan(extra_dirs)
    except GenerateError as error:
        print(f"generate: {error}", file=sys.stderr)
        return 2
    if folder:
        print(f"with the profiles in {folder} ({PROFILES_DIR_VARIABLE})", file=sys.stderr)
    if not check:
        apply(changes)
    for change in changes:
        print(change.describe(ROOT, done=not check))
    if not changes:
        print(
            "template.yaml, events/, openapi.json and the profile check follow from the profiles, the routes and the schema"
        )
    elif check:
        print("run `make generate` to update them", file=sys.stderr)
    return 1 if check and changes else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 listing what is stale")
    parser.add_argument(
        "--profiles-dir", help=f"a folder of extra partner profiles (default: ${PROFILES_DIR_VARIABLE})"
    )
