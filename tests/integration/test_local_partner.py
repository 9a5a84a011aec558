"""A partner that is only a profile: written to a temporary folder, served by the whole local stack.

Two throwaway partners on existing schemes, in combinations no shipped partner uses: ``acme`` (the whole body
as AES-256-GCM in ``{"payload": token}``, Netcore-style bearer authentication) and ``acme_cards`` (a card's
number and CVV as JWE under ``payment_card``, static credential headers, its own idempotency header, and
dLocal-style signed webhooks). ``LocalStack(profiles_dir=...)`` gives each a throwaway secret, a forward target
and a sandbox made from the profile; the flows go through the local API, the queue and the poller to that
sandbox, whose independent checks open what was sent. Nothing but the profiles is written: no code changes.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sealgate_local.stack import ROOT, LocalStack

pytestmark = pytest.mark.slow

WAIT_SECONDS = 20.0
FINAL = {"delivered", "rejected", "dead_lettered"}
# Throwaway test values: a public test PAN; assertions never print them.
NUMBER = "4111111111111111"
CVV = "737"

ACME: dict[str, Any] = {
    "name": "acme",
    "description": "A throwaway partner: the whole body as AES-256-GCM, bearer API key, asset and x-eCode",
    "base_url": "https://api.acme.example/",
    "secret_fields": ["events_key", "api_key", "asset_id"],
    "protection": {"scheme": "aes-gcm", "layout": "wrap", "key": "events_key", "wrap_field": "payload"},
    "signing": {"scheme": "netcore-bearer", "token": "api_key", "asset": "asset_id"},
    "body_format": "json",
    "operations": {"events": {"method": "POST", "path": "v1/events"}},
    "example": {"payload": [{"event": "signup", "identity": "9999911111"}]},
}
ACME_CARDS: dict[str, Any] = {
    "name": "acme_cards",
    "description": "A throwaway card acquirer: card data as JWE, static credential headers, signed webhooks",
    "base_url": "https://cards.acme.example/api/",
    "secret_fields": ["card_public_key", "client_id", "client_secret", "webhook_secret", "merchant_login"],
    "protection": {
        "scheme": "jwe",
        "layout": "card",
        "key": "card_public_key",
        "alg": "RSA-OAEP",
        "card_field": "payment_card",
    },
    "signing": {
        "scheme": "static-headers",
        "headers": {"X-Client-Id": "client_id", "X-Client-Secret": "client_secret"},
    },
    "webhook": {"scheme": "dlocal-v2", "secret": "webhook_secret", "login": "merchant_login"},
    "idempotency_header": "X-Request-Id",
    "operations": {"charges": {"method": "POST", "path": "v1/charges"}},
    "example": {
        "payload": {
            "amount": 10,
            "currency": "USD",
            "payment_card": {"number": NUMBER, "cvv": CVV, "expiration_month": 10, "expiration_year": 2040},
        },
        "webhook": {
            "headers": {
                "X-Date": "2025-11-22T08:41:11.482Z",
                "X-Login": "login",
                "Authorization": "placeholder",
            },
            "body": {"id": "CH-1", "status": "PAID"},
        },
    },
}
PROFILES = {"acme": ACME, "acme_cards": ACME_CARDS}

#: The gateway's code and deployment, and the local tooling: none of it may name a partner that is a profile.
CODE = ("layers", "functions", "local", "template.yaml", "events")
#: Where a partner would otherwise be written: the shipped profiles, and what ``make generate`` makes of them.
GENERATED = ("layers/crypto/sealgate/partners", "events")


def code_files(tops: tuple[str, ...]) -> list[Path]:
    """Every source, profile, template and event file under ``tops`` (bytecode caches aside)."""
    found: list[Path] = []
    for top in tops:
        root = ROOT / top
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.suffix in (".py", ".json", ".yaml") and "__pycache__" not in path.parts:
                found.append(path)
    return found


def code_digest() -> dict[str, str]:
    """SHA-256 of every file of :data:`GENERATED`, by path."""
    return {
        str(path.relative_to(ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in code_files(GENERATED)
    }


@pytest.fixture(scope="module")
def profiles_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("partner-profiles")
    for name, document in PROFILES.items():
        (folder / f"{name}.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def code_before() -> dict[str, str]:
    return code_digest()


@pytest.fixture(scope="module")
def stack(profiles_dir: Path, code_before: dict[str, str]) -> Iterator[LocalStack]:
    with LocalStack(profiles_dir=profiles_dir, pool_size=2) as running:
        yield running


def call(stack: LocalStack, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """One request to the local API (``path`` without the stage); the status and the JSON answer."""
    url = urlsplit(stack.base_url)
    data = None if body is None else json.dumps(body).encode("utf-8")
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=WAIT_SECONDS)
    try:
        connection.request(method, url.path + path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    answer = json.loads(raw) if raw else {}
    return response.status, answer if isinstance(answer, dict) else {}


def forward(stack: LocalStack, partner: str, operation: str, payload: Any, key: str) -> dict[str, Any]:
    """``POST /v1/forward/{partner}``, then the outcome once it is final."""
    status, answer = call(
        stack,
        "POST",
        f"/v1/forward/{partner}",
        {"operation": operation, "payload": payload, "idempotency_key": key},
    )
    assert status == 202, answer
    route = next(r for r in stack.routes if r.function == "forward" and r.method == "GET")
    path = route.fill(partner, str(answer["id"]))
    deadline = time.monotonic() + WAIT_SECONDS
    outcome: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, outcome = call(stack, "GET", path)
        if status == 200 and outcome.get("status") in FINAL:
            return outcome
        time.sleep(0.05)
    pytest.fail(f"the outcome never became final; last: {outcome.get('status')}")


def test_each_added_partner_has_its_sandbox_and_forward_target(stack: LocalStack) -> None:
    assert {"acme", "acme_cards"} <= set(stack.resources.profiles)
    assert set(stack.sandboxes.urls) == set(stack.resources.profiles)  # shipped and added alike
    environment = stack.pools["forward"].spec.environment
    for partner in PROFILES:
        assert environment[f"SEALGATE_BASE_URL_{partner.upper()}"] == stack.sandboxes[partner].url
    assert stack.sandboxes["acme_cards"].sends_webhooks
    assert not stack.sandboxes["acme"].sends_webhooks


def test_acme_wrap_aes_gcm_is_delivered_and_opened_by_its_sandbox(stack: LocalStack) -> None:
    key = str(uuid.uuid4())
    events = [{"event": "signup", "identity": "9999911111", "params": {"plan": "annual"}}]
    outcome = forward(stack, "acme", "events", events, key)

    assert outcome["status"] == "delivered", outcome
    [verification] = [v for v in stack.sandboxes["acme"].verifications if v.idempotency_key == key]
    assert verification.ok, verification.reason
    assert (verification.partner, verification.path, verification.fields) == (
        "acme",
        "/v1/events",
        ("<body>",),
    )
    [received] = [r for r in stack.sandboxes["acme"].requests if r.header("Idempotency-Key") == key]
    assert received.header("x-eCode") == "11258"  # what Netcore registers for AES-GCM
    assert "signup" not in received.body.decode("utf-8")  # the body travelled as a token only


def test_acme_cards_card_jwe_is_delivered_and_opened_by_its_sandbox(stack: LocalStack) -> None:
    key = str(uuid.uuid4())
    charge = {
        "amount": 10,
        "currency": "USD",
        "payment_card": {"number": NUMBER, "cvv": CVV, "expiration_month": 10, "expiration_year": 2040},
    }
    outcome = forward(stack, "acme_cards", "charges", charge, key)

    assert outcome["status"] == "delivered", outcome
    sandbox = stack.sandboxes["acme_cards"]
    [verification] = [v for v in sandbox.verifications if v.idempotency_key == key]  # its X-Request-Id
    assert verification.ok, verification.reason
    assert verification.fields == ("payment_card.number", "payment_card.cvv")
    [received] = [r for r in sandbox.requests if r.header("X-Request-Id") == key]
    assert NUMBER not in received.body.decode("utf-8")


def test_acme_cards_sandbox_sends_notifications_the_gateway_verifies(stack: LocalStack) -> None:
    sandbox = stack.sandboxes["acme_cards"]
    url = stack.base_url + "/v1/webhooks/acme_cards"
    notification = {"id": f"CH-{uuid.uuid4()}", "status": "PAID", "amount": 10}

    status, _ = sandbox.notify(url, notification)
    forged, _ = sandbox.notify(url, {**notification, "id": f"CH-{uuid.uuid4()}"}, secret="forged")

    assert (status, forged) == (200, 401)


def test_nothing_but_the_profiles_was_written(
    stack: LocalStack, profiles_dir: Path, code_before: dict[str, str]
) -> None:
    assert not profiles_dir.resolve().is_relative_to(ROOT)
    assert sorted(p.name for p in profiles_dir.iterdir()) == ["acme.json", "acme_cards.json"]
    assert code_digest() == code_before  # no profile, policy or event was written into the project
    # No code of the gateway, its template or the local tooling names the partners: the profiles are all there is.
    for path in code_files(CODE):
        assert "acme" not in path.read_text(encoding="utf-8", errors="replace"), path
