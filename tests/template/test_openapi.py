"""openapi.json: generated from the functions' routes, it matches template.yaml's API events and the route
decorators of every ``app.py``, describes each request body, and holds every refusal to ``{"code", "message"}``.

The routes are read three independent ways: the decorators in each ``functions/*/app.py`` (its syntax tree, not
Powertools), the template's ``Api`` events, and the committed document.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sealgate_local import openapi
from sealgate_local.aws_stack import load_template
from sealgate_local.openapi import OPENAPI

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return dict(json.loads(OPENAPI.read_text(encoding="utf-8")))


def decorated_routes() -> dict[tuple[str, str], str]:
    """(method, path) -> function, from the ``@app.<method>("<rule>")`` decorators of each app.py."""
    found: dict[tuple[str, str], str] = {}
    for app in sorted(FUNCTIONS.glob("*/app.py")):
        for node in ast.walk(ast.parse(app.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and isinstance(decorator.func.value, ast.Name)
                    and decorator.func.value.id == "app"
                    and decorator.func.attr in ("get", "post", "put", "patch", "delete")
                ):
                    rule = decorator.args[0]
                    assert isinstance(rule, ast.Constant)
                    path = re.sub(r"<(\w+)>", r"{\1}", str(rule.value))
                    found[(decorator.func.attr, path)] = app.parent.name
    return found


def template_routes() -> dict[tuple[str, str], tuple[str, bool]]:
    """(method, path) -> (function, public), from template.yaml's ``Api`` events."""
    template = load_template()
    global_auth = ((template.get("Globals") or {}).get("Api") or {}).get("Auth") or {}
    found: dict[tuple[str, str], tuple[str, bool]] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        function = Path(resource["Properties"]["CodeUri"]).name
        for event in (resource["Properties"].get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            properties = event["Properties"]
            api = properties.get("RestApiId")
            api_auth = global_auth
            if isinstance(api, dict) and "Ref" in api:
                api_auth = template["Resources"][api["Ref"]]["Properties"].get("Auth") or api_auth
            authorizer = (properties.get("Auth") or {}).get("Authorizer", api_auth.get("DefaultAuthorizer"))
            found[(str(properties["Method"]).lower(), properties["Path"])] = (
                function,
                authorizer in (None, "NONE"),
            )
    return found


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def test_the_document_has_exactly_the_routes_of_the_decorators_and_the_template(
    document: dict[str, Any],
) -> None:
    decorated = decorated_routes()
    routed = template_routes()
    described = operations(document)

    assert set(described) == set(decorated) == set(routed)
    assert len(described) == 6
    for route, operation in described.items():
        function, public = routed[route]
        assert operation["x-sealgate-function"] == decorated[route] == function
        assert operation["security"] == ([] if public else [{"sigv4": []}]), route
    assert [route for route, (_, public) in routed.items() if public] == [("post", "/v1/webhooks/{partner}")]


def test_every_refusal_is_the_error_contract(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "message"]
    assert set(error["properties"]) == {"code", "message"}
    assert error["additionalProperties"] is False
    for route, operation in operations(document).items():
        statuses = {int(status) for status in operation["responses"]}
        assert {403, 429, 500, 502, 504} <= statuses, route  # what API Gateway answers on any route
        for status, answer in operation["responses"].items():
            schema = answer["content"]["application/json"]["schema"]
            if int(status) >= 300:
                assert schema == {"$ref": "#/components/schemas/Error"}, (route, status)
            else:
                assert schema.get("type") == "object", (route, status)


def test_every_post_describes_its_json_body_and_the_limits_are_documented(document: dict[str, Any]) -> None:
    for (method, path), operation in operations(document).items():
        if method != "post":
            assert "requestBody" not in operation
            continue
        body = operation["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"]["type"] == "object", path
        assert operation["summary"], path
        assert operation["description"], path
        assert 413 in {int(status) for status in operation["responses"]}, path
    decrypt = document["paths"]["/v1/decrypt/{partner}"]["post"]
    assert "max_fields" in decrypt["description"]
    assert "max_derivations" in decrypt["description"]
    assert "too_many_fields" in decrypt["responses"]["413"]["description"]


def test_schemathesis_reads_every_operation(document: dict[str, Any]) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(document)
    loaded = sorted((result.ok().method, result.ok().path) for result in schema.get_all_operations())
    assert loaded == sorted(operations(document))


def test_the_committed_document_is_what_the_routes_generate() -> None:
    assert OPENAPI.read_text(encoding="utf-8") == openapi.text(openapi.generated()), (
        "openapi.json is stale: run `make generate`"
    )


def test_a_route_the_template_does_not_route_is_refused() -> None:
    template = load_template()
    resolvers = json.loads(openapi._documents_of_the_checkout())
    events = template["Resources"]["EncryptFunction"]["Properties"]["Events"]
    decrypt = next(
        name for name, event in events.items() if event["Properties"]["Path"] == "/v1/decrypt/{partner}"
    )
    del events[decrypt]
    with pytest.raises(openapi.OpenApiError, match=r"POST /v1/decrypt/\{partner\} .*has no Api event"):
        openapi.merged(resolvers, template)


def test_the_functions_cold_start_imports_no_pydantic() -> None:
    """Registering the documented routes costs nothing at cold start: pydantic is for the generator only."""
    child = (
        "import importlib.util, sys\n"
        "from moto import mock_aws\n"
        "with mock_aws():\n"
        f"    for name in {openapi.FUNCTIONS!r}:\n"
        f"        spec = importlib.util.spec_from_file_location('app_' + name, {str(FUNCTIONS)!r} + '/' + name + '/app.py')\n"
        "        module = importlib.util.module_from_spec(spec)\n"
        "        spec.loader.exec_module(module)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child],
        env=openapi._child_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
