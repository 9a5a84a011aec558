"""Ready-to-paste ``curl`` commands for every route of a running :class:`~sealgate_local.stack.LocalStack`.

One command per route of ``template.yaml``, with sample data (no real personal data). Where a route needs
something only the stack can make, the stack makes it: the decrypt example carries a token the encrypt
route just produced, and the webhook example is signed with dLocal's throwaway secret (its ``X-Date`` is
accepted for 5 minutes, and the same notification once).
"""

from __future__ import annotations

import http.client
import json
import shlex
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sealgate_local.api_server import Route
from sealgate_local.stack import LocalStack

SAMPLE_BODIES: dict[tuple[str, str], tuple[str, Any]] = {
    ("POST", "/v1/encrypt/{partner}"): (
        "infosimples",
        {"payload": {"cpf": "52998224725", "birthdate": "1990-01-15"}},
    ),
    ("POST", "/v1/sign/{partner}"): (
        "dlocal",
        {"body": '{"amount":120.0,"currency":"BRL"}', "idempotency_key": "demo-1"},
    ),
    ("POST", "/v1/forward/{target}"): (
        "paykun",
        {"operation": "payment", "payload": {"order_id": "ORD-1", "amount": "499.00", "currency": "INR"}},
    ),
    ("POST", "/v1/forward/{partner}"): (
        "paykun",
        {"operation": "payment", "payload": {"order_id": "ORD-1", "amount": "499.00", "currency": "INR"}},
    ),
}


def curl_examples(stack: LocalStack) -> list[str]:
    """One ``curl`` command (with a comment line above it) per route."""
    examples: list[str] = []
    for route in stack.routes:
        auth = (
            "public: the partner's signature authenticates it"
            if route.public
            else "IAM, stood in for locally"
        )
        examples.append(f"# {route.method} {route.path} ({auth})")
        if route.method == "GET" and route.function == "forward":
            examples.append("# replace <id> with the id a POST /v1/forward answered")
        examples.append(_example(stack, route))
    return examples


def _example(stack: LocalStack, route: Route) -> str:
    sample = SAMPLE_BODIES.get((route.method, route.path))
    if route.path.startswith("/v1/decrypt/"):
        return _decrypt(stack, route)
    if route.path.startswith("/v1/webhooks/"):
        return _webhook(stack, route)
    if route.method == "GET" and route.function == "forward":
        path = route.fill("paykun", "<id>")
        return f"curl -s {shlex.quote(stack.base_url + path)}"
    if sample is None:
        return f"curl -s -X {route.method} {shlex.quote(stack.base_url + route.path)}"
    partner, body = sample
    return _post(stack.base_url + route.fill(partner), json.dumps(body, separators=(",", ":")))


def _decrypt(stack: LocalStack, route: Route) -> str:
    """Encrypt a sample for Netcore through the stack, and show how to decrypt it back."""
    token_payload: Any = {"encryptedRequest": "<the payload of a POST /v1/encrypt/netcore answer>"}
    url = urlsplit(stack.base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.request(
            "POST",
            url.path + "/v1/encrypt/netcore",
            body=json.dumps({"payload": {"event": "demo"}}),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        answer = json.loads(response.read() or b"{}")
        if response.status == 200 and isinstance(answer, dict) and "payload" in answer:
            token_payload = answer["payload"]
    except (OSError, ValueError):
        pass  # the placeholder stays
    finally:
        connection.close()
    body = json.dumps({"payload": token_payload}, separators=(",", ":"))
    return _post(stack.base_url + route.fill("netcore"), body)


def _webhook(stack: LocalStack, route: Route) -> str:
    """A dLocal notification signed with the throwaway secret, as dLocal would send it."""
    from sealgate.schemes import dlocal_v2

    secret = stack.resources.secrets["dlocal"].value
    body = json.dumps({"id": f"D-4-{uuid.uuid4()}", "status": "PAID", "amount": 120.0}, separators=(",", ":"))
    date = dlocal_v2.format_x_date(datetime.now(UTC))
    login = secret["x_login"]
    authorization = dlocal_v2.authorization(secret["secret_key"], login, date, body.encode("utf-8"))
    headers = {"X-Date": date, "X-Login": login, "Authorization": authorization}
    return _post(stack.base_url + route.fill("dlocal"), body, headers)


def _post(url: str, body: str, headers: dict[str, str] | None = None) -> str:
    parts = ["curl -s -X POST", shlex.quote(url), "-H 'Content-Type: application/json'"]
    parts += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in (headers or {}).items()]
    parts.append(f"-d {shlex.quote(body)}")
    return " \\\n  ".join(parts)
