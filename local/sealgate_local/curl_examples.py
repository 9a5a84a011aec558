"""Ready-to-paste ``curl`` commands for every route of a running :class:`~sealgate_local.stack.LocalStack`.

One command per route of ``template.yaml``, for the first partner profile (in name order) the route applies
to, with that profile's ``example`` as the sample data (obviously fake values only, see
``profile.schema.json``). Where a route needs something only the stack can make, the stack makes it: the
decrypt and sign examples carry the example as the encrypt route just protected it (a symmetric partner's for
decrypt: only the partner can open a public-key scheme), and the webhook example is the profile's example
notification signed with the throwaway secret (its ``X-Date`` is accepted for 5 minutes, and the same
notification once).

When the stack checks SigV4 (``iam_auth``, as ``make run`` starts it), the commands for IAM routes sign with
curl's own ``--aws-sigv4 "aws:amz:<region>:execute-api" --user "$KEY:$SECRET"`` (the throwaway credentials
``make run`` prints; curl 7.75 or later), and :func:`python_example` is the same call through
``scripts/call_sealgate.py`` (botocore's signer).
"""

from __future__ import annotations

import http.client
import json
import shlex
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sealgate_local.api_server import Route
from sealgate_local.demo import PartnerExample, partner_examples
from sealgate_local.sigv4 import SERVICE, sign
from sealgate_local.stack import LocalStack


def curl_examples(stack: LocalStack) -> list[str]:
    """One ``curl`` command (with a comment line above it) per route."""
    partners = partner_examples(stack)
    examples: list[str] = []
    for route in stack.routes:
        if route.public:
            auth = "public: the partner's signature authenticates it"
        elif stack.iam_auth:
            auth = "IAM: SigV4 with the throwaway credentials"
        else:
            auth = "IAM, stood in for locally"
        examples.append(f"# {route.method} {route.path} ({auth})")
        if route.method == "GET" and route.function == "forward":
            examples.append("# replace <id> with the id a POST /v1/forward answered")
        examples.append(_example(stack, route, partners))
    return examples


def _example(stack: LocalStack, route: Route, partners: list[PartnerExample]) -> str:
    """The route's example for the first partner it applies to (a bare ``curl`` if none)."""
    found = _EXAMPLES.get((route.method, route.path.strip("/").split("/")[1]))
    if found is None:
        return _bare(stack, route)
    applies, make = found
    partner = next((p for p in partners if applies(p)), None)
    return _bare(stack, route) if partner is None else make(stack, route, partner)


def python_example(stack: LocalStack) -> str | None:
    """The encrypt example of the first partner as ``scripts/call_sealgate.py`` sends it, signed with the
    throwaway credentials from ``$KEY`` and ``$SECRET`` (None if the stack has no encrypt route)."""
    route = next((r for r in stack.routes if (r.method, r.function) == ("POST", "encrypt")), None)
    partners = partner_examples(stack)
    if route is None or not partners:
        return None
    body = _compact({"payload": partners[0].example.payload})
    url = stack.base_url + route.fill(partners[0].name)
    return (
        'AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" '
        f"python scripts/call_sealgate.py --region {stack.region} POST {shlex.quote(url)} {shlex.quote(body)}"
    )


def _sigv4(stack: LocalStack, route: Route) -> list[str]:
    """curl's own SigV4 signing for an IAM route when the stack checks it."""
    if route.public or not stack.iam_auth:
        return []
    return [f"--aws-sigv4 'aws:amz:{stack.region}:{SERVICE}'", '--user "$KEY:$SECRET"']


def _bare(stack: LocalStack, route: Route) -> str:
    url = stack.base_url + route.path
    return " ".join([f"curl -s -X {route.method}", *_sigv4(stack, route), shlex.quote(url)])


def _encrypt(stack: LocalStack, route: Route, partner: PartnerExample) -> str:
    body = _compact({"payload": partner.example.payload})
    return _post(stack, route, stack.base_url + route.fill(partner.name), body)


def _forward(stack: LocalStack, route: Route, partner: PartnerExample) -> str:
    body = {
        "operation": partner.example.operation,
        "payload": partner.example.payload,
        "idempotency_key": str(uuid.uuid4()),
    }
    return _post(stack, route, stack.base_url + route.fill(partner.name), _compact(body))


def _status(stack: LocalStack, route: Route, partner: PartnerExample) -> str:
    url = stack.base_url + route.fill(partner.name, "<id>")
    return " ".join(["curl -s", *_sigv4(stack, route), shlex.quote(url)])


def _decrypt(stack: LocalStack, route: Route, partner: PartnerExample) -> str:
    """The partner's example encrypted through the stack, and how to decrypt it back."""
    protected = _protected(stack, partner)
    if protected is None:
        protected = f"<the payload of a POST /v1/encrypt/{partner.name} answer>"
    return _post(stack, route, stack.base_url + route.fill(partner.name), _compact({"payload": protected}))


def _sign(stack: LocalStack, route: Route, partner: PartnerExample) -> str:
    """The signature headers for the exact body the partner's example would be sent as (protected)."""
    protected = _protected(stack, partner)
    text = (
        f"<the payload of a POST /v1/encrypt/{partner.name} answer, as sent>"
        if protected is None
        else _compact(protected)
    )
    body = {"body": text, "idempotency_key": str(uuid.uuid4())}
    return _post(stack, route, stack.base_url + route.fill(partner.name), _compact(body))


def _protected(stack: LocalStack, partner: PartnerExample) -> Any:
    """The partner's example as ``POST /v1/encrypt`` protects it (None if the stack did not answer)."""
    url = urlsplit(stack.base_url)
    body = _compact({"payload": partner.example.payload}).encode("utf-8")
    headers = sign(
        "POST",
        f"{stack.base_url}/v1/encrypt/{partner.name}",
        body=body,
        headers={"Content-Type": "application/json"},
        credentials=stack.credentials,
        region=stack.region,
    )
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.request("POST", url.path + f"/v1/encrypt/{partner.name}", body=body, headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read() or b"{}")
    except (OSError, ValueError):
        return None
    finally:
        connection.close()
    if response.status == 200 and isinstance(answer, dict) and "payload" in answer:
        return answer["payload"]
    return None


def _webhook(stack: LocalStack, route: Route, partner: PartnerExample) -> str:
    """The profile's example notification with its placeholder signature headers; dLocal's (``dlocal-v2``)
    signed with the throwaway secret, as dLocal would send it."""
    from sealgate.schemes import dlocal_v2

    body = _compact(partner.example.webhook_body)
    headers = dict(partner.example.webhook_headers or {})
    webhook = partner.profile.webhook
    if webhook is not None and webhook.verifier.name == dlocal_v2.VERIFIER.name:
        fields = partner.document["webhook"]
        secret = stack.resources.secrets[partner.name].value
        date = dlocal_v2.format_x_date(datetime.now(UTC))
        login = secret[fields["login"]]
        authorization = dlocal_v2.authorization(secret[fields["secret"]], login, date, body.encode("utf-8"))
        headers.update({"X-Date": date, "X-Login": login, "Authorization": authorization})
    return _post(stack, route, stack.base_url + route.fill(partner.name), body, headers)


def _any(partner: PartnerExample) -> bool:
    return True


MakeExample = Callable[[LocalStack, Route, PartnerExample], str]

#: (method, action) -> (which partners the example can use, how it is made)
_EXAMPLES: dict[tuple[str, str], tuple[Callable[[PartnerExample], bool], MakeExample]] = {
    ("POST", "encrypt"): (_any, _encrypt),
    ("POST", "decrypt"): (lambda p: p.profile.protection.symmetric, _decrypt),
    ("POST", "sign"): (lambda p: p.profile.signing is not None, _sign),
    ("POST", "webhooks"): (lambda p: p.profile.webhook is not None, _webhook),
    ("POST", "forward"): (_any, _forward),
    ("GET", "forward"): (_any, _status),
}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _post(stack: LocalStack, route: Route, url: str, body: str, headers: dict[str, str] | None = None) -> str:
    parts = [
        "curl -s -X POST",
        *_sigv4(stack, route),
        shlex.quote(url),
        "-H 'Content-Type: application/json'",
    ]
    parts += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in (headers or {}).items()]
    parts.append(f"-d {shlex.quote(body)}")
    return " \\\n  ".join(parts)
