"""A bounded run of ``scripts/fuzz.py`` against the local stack: every route of ``openapi.json`` fuzzed by
schemathesis, and every category of hand-written hostile input, with no 5xx, no answer outside
``{"code", "message"}``, no tampered token or notification accepted, no request sent where a payload chose, and
no header smuggled into an answer.

The full run (``scripts/fuzz.py``, two minutes) gives the README's figures; this one keeps to about 40 s.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sealgate_local.api_server import ApiServer, Route
from sealgate_local.openapi import OPENAPI
from sealgate_local.stack import LocalStack
from sealgate_local.worker import Invocation

ROOT = Path(__file__).resolve().parents[2]
CATEGORIES = {
    "malformed JSON",
    "duplicate keys",
    "wrong types",
    "huge bodies",
    "deep bodies",
    "invalid UTF-8",
    "tampered tokens",
    "tampered notifications",
    "path tricks",
    "header injection",
    "URL picking",
    "bounded work",
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("sealgate_fuzz_script", ROOT / "scripts" / "fuzz.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def profiles_dir(fuzz: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fuzz script's extra partner (raw-key AES-GCM): its cipher reaches the API too."""
    written: Path = fuzz.write_extra_profiles(tmp_path_factory.mktemp("fuzz-profiles"))
    return written


@pytest.fixture(scope="module")
def stack(profiles_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(pool_size=2, profiles_dir=profiles_dir) as running:
        yield running


def _never_invoked(function: str, event: Any, request_id: str) -> Invocation:
    raise AssertionError("no function is invoked for what the local API refuses itself")


@pytest.fixture
def api() -> Iterator[ApiServer]:
    route = Route("encrypt", "POST", "/v1/encrypt/{partner}", public=False)
    with ApiServer([route], _never_invoked, stage="dev", account_id="123456789012") as server:
        yield server


def test_the_local_api_serves_the_document(fuzz: ModuleType, api: ApiServer) -> None:
    client = fuzz.Client(api.base_url)
    served = client.send("GET", "/openapi.json", content_type=False)
    assert served.status == 200
    assert served.body == OPENAPI.read_bytes()
    assert ("Content-Type", "application/json") in served.headers
    assert client.send("POST", "/openapi.json").status == 404  # a document, not a route


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("TRACE", (), 404),  # no such route, as API Gateway answers it (http.server: 501 and an HTML page)
        ("PROPFIND", (), 404),
        ("POST", ((b"X-Long", b"a" * 70_000),), 431),
        ("POST", tuple((f"X-Header-{i}".encode(), b"a") for i in range(120)), 431),
        ("BAD REQUEST LINE", (), 400),
    ],
)
def test_what_http_server_refuses_itself_is_in_the_contract(
    fuzz: ModuleType, api: ApiServer, method: str, headers: tuple[tuple[bytes, bytes], ...], status: int
) -> None:
    answer = fuzz.Client(api.base_url).send(method, "/v1/encrypt/infosimples", b"{}", headers)
    assert answer.status == status
    assert fuzz.contract_problem(answer) is None, answer.body


def test_the_contract_counter_sees_what_it_must(fuzz: ModuleType) -> None:
    """The figures' own judge: a refusal outside the contract, a 5xx and a forgery accepted are each counted."""
    json_type = [("Content-Type", "application/json")]
    tally = fuzz.Tally()
    tally.see("hostile", "fine", fuzz.Answer(400, json_type, b'{"code":"bad_json","message":"m"}'))
    tally.see("hostile", "html", fuzz.Answer(404, [("Content-Type", "text/html")], b"<html>"))
    tally.see("hostile", "extra key", fuzz.Answer(400, json_type, b'{"code":"x","message":"m","detail":1}'))
    tally.see(
        "hostile", "duplicate key", fuzz.Answer(400, json_type, b'{"code":"x","code":"y","message":"m"}')
    )
    tally.see("hostile", "500", fuzz.Answer(500, json_type, b'{"code":"internal_error","message":"m"}'))
    tally.see("hostile", "head", fuzz.Answer(404, json_type, b""), method="HEAD")
    tally.see("hostile", "ok", fuzz.Answer(200, json_type, b"[]"))

    assert tally.requests == 7
    assert [name.split(":")[0] for name in tally.contract_violations] == [
        "html",
        "extra key",
        "duplicate key",
    ]
    assert tally.server_errors == ["500: 500"]
    assert tally.missed() == ["server_errors", "contract_violations"]
    tally.tampered_accepted.append("forged")
    tally.url_picked = 1
    assert tally.missed() == ["server_errors", "contract_violations", "tampered_accepted", "url_picked"]


def test_a_bounded_fuzz_run_meets_every_target(
    fuzz: ModuleType, stack: LocalStack, profiles_dir: Path
) -> None:
    assert stack.aws is not None
    secrets = {name: dict(secret.value) for name, secret in stack.aws.secrets.items()}

    tally = fuzz.fuzz(stack.base_url, secrets, seconds=40, examples=6, seed=0, profiles_dir=profiles_dir)
    figures: dict[str, Any] = tally.figures()

    examples = figures["examples"]
    assert figures["server_errors"] == 0, examples["server_errors"]
    assert figures["contract_violations"] == 0, examples["contract_violations"]
    assert figures["tampered_accepted"] == 0, examples["tampered_accepted"]
    assert figures["url_picked"] == 0
    assert figures["headers_injected"] == 0, examples["headers_injected"]
    assert figures["expectations_missed"] == 0, examples["expectations_missed"]
    assert figures["targets_missed"] == []
    # It went deep: every category was tried, schemathesis reached every route, and the refusals are the ones
    # the hostile input calls for (bad JSON, forged notifications, tokens that do not open, bodies too large).
    assert set(figures["hostile_cases_by_category"]) == CATEGORIES
    assert figures["requests_by_source"]["schemathesis"] >= 6 * 2
    assert figures["requests"] >= 400
    assert {"400", "401", "404", "413", "422"} <= set(figures["statuses"])
    assert figures["forwards_with_chosen_urls"].get("delivered", 0) >= 1  # the payloads naming a URL went out
